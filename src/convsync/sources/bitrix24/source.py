"""The ``bitrix24`` source: deals that reached a won stage, pulled incrementally.

The change cursor is the deal stage history (``crm.stagehistory.list``, entity type 2):
each move of a deal into a stage whose semantics is success (``STAGE_SEMANTIC_ID = S``)
is one row with an increasing ``ID`` and the moment of the move (``CREATED_TIME``).
Rows are read with the platform's fast keyset paging (``start=-1``, ``>ID``, 50 rows a
page, a short page is the last). The won deals' fields then come in one ``batch`` of
``crm.deal.list`` commands (50 ids each, up to 50 commands: 2,500 deals a request), and
their primary contacts' e-mails and phones — only when mapped — in one more.

The cursor is ``{history_id, time}``: the last history row handed over and the latest
win seen (never later than the moment the pull started). With a ``lookback`` the next
pull starts again ``lookback`` before that time, so a row committed late with an
earlier time is not lost; the ledger absorbs the overlap (the record id is the deal id,
so a deal won twice is one record). Without one it follows the history id alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from convsync.core.errors import UserError
from convsync.core.model import RawRecord, RecordRejection, SourceState
from convsync.core.parsing import ParseError, parse_timestamp
from convsync.sources.base import PulledChunk, Source
from convsync.sources.bitrix24.client import MAX_BATCH, PAGE, Bitrix24Client, chunks_of
from convsync.sources.bitrix24.config import CONTACT_PREFIX, DEFAULT_FIELDS, Bitrix24SourceConfig

DEAL = 2  # entityTypeId of deals
#: won deals whose details are read per group: one batch of 50 × 50
_GROUP = MAX_BATCH * PAGE
_HISTORY_SELECT = ["ID", "OWNER_ID", "CREATED_TIME", "STAGE_ID", "CATEGORY_ID"]
_DEAL_BASE = ["ID", "CONTACT_ID", "CATEGORY_ID", "STAGE_ID"]


class Bitrix24Source(Source[Bitrix24SourceConfig]):
    """Won deals of one Bitrix24 portal, with their contact's e-mail and phone."""

    type: ClassVar[str] = "bitrix24"
    #: the wall clock (tests and benchmarks replace it)
    clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))
    #: how the source waits (rate limit, backoff); tests replace it
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    @property
    def _key(self) -> str:
        return f"sources.{self.name}"

    @property
    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone) if self.config.timezone else self.context.timezone

    def _fields(self) -> dict[str, str]:
        """Canonical field → Bitrix24 field, the defaults under the user's mapping."""
        mapping = {**DEFAULT_FIELDS, **self.config.fields}
        return {
            canonical: CONTACT_PREFIX + name[len(CONTACT_PREFIX) :].upper()
            if name.startswith(CONTACT_PREFIX)
            else name.upper()
            for canonical, name in mapping.items()
        }

    def client(self) -> Bitrix24Client:
        return Bitrix24Client(
            self.config.webhook_url.get_secret_value(),
            config_key=f"{self._key}.webhook_url",
            per_second=self.config.rate_limit.per_second,
            burst=self.config.rate_limit.burst,
            retries=self.config.retries,
            timeout=self.config.timeout,
            sleep=self.sleep,
        )

    # --- pull -----------------------------------------------------------------------

    def pull(self, state: SourceState) -> Iterator[PulledChunk]:
        started = self.clock()
        client = self.client()
        try:
            if self.config.category_id is not None:
                self._check_category(client)
            cursor = state.cursor or {}
            last_time = _cursor_time(cursor.get("time"))
            mark = _Mark(int(cursor.get("history_id") or 0), last_time)
            history_filter: dict[str, Any] = {"STAGE_SEMANTIC_ID": "S"}
            if self.config.category_id is not None:
                history_filter["CATEGORY_ID"] = self.config.category_id
            if self.config.stage_ids:
                history_filter["STAGE_ID"] = list(self.config.stage_ids)
            after_id = 0
            since = self._start_date()
            if cursor and self.config.lookback > timedelta(0) and last_time is not None:
                again = last_time - self.config.lookback
                since = max(since, again) if since is not None else again
            elif cursor:
                after_id = mark.history_id
            if since is not None:
                history_filter[">=CREATED_TIME"] = since.isoformat()
            limit = max(1, min(self.context.chunk_size, _GROUP))
            group: list[Mapping[str, Any]] = []
            for row in self._history(client, history_filter, after_id):
                group.append(row)
                if len(group) >= limit:
                    chunk, mark = self._chunk(client, group, started, mark)
                    yield chunk
                    group = []
            if group:
                chunk, mark = self._chunk(client, group, started, mark)
                yield chunk
        finally:
            client.close()

    def _start_date(self) -> datetime | None:
        start = self.config.start_date
        if start is None:
            return None
        if not isinstance(start, datetime):
            start = datetime.combine(start, datetime.min.time())
        return start if start.tzinfo is not None else start.replace(tzinfo=self._tz)

    def _history(
        self, client: Bitrix24Client, history_filter: Mapping[str, Any], after_id: int
    ) -> Iterator[Mapping[str, Any]]:
        """Won-stage rows in ``ID`` order, page by page (keyset, no count)."""
        while True:
            result = client.call(
                "crm.stagehistory.list",
                {
                    "entityTypeId": DEAL,
                    "order": {"ID": "ASC"},
                    "filter": {**history_filter, ">ID": after_id},
                    "select": _HISTORY_SELECT,
                    "start": -1,
                },
            )
            items = result.get("items", []) if isinstance(result, Mapping) else []
            yield from items
            if len(items) < PAGE:
                return
            try:
                after_id = int(items[-1]["ID"])
            except (KeyError, TypeError, ValueError):
                raise UserError(
                    f"{self._key}: Bitrix24 answered a stage history row without a usable ID"
                ) from None

    def _chunk(
        self,
        client: Bitrix24Client,
        rows: Sequence[Mapping[str, Any]],
        started: datetime,
        mark: _Mark,
    ) -> tuple[PulledChunk, _Mark]:
        chunk = PulledChunk()
        last_time = mark.time
        wins: dict[str, datetime] = {}  # deal id → its first win in this chunk
        origins: dict[str, str] = {}
        for row in rows:
            deal_id = str(row.get("OWNER_ID") or "").strip()
            origin = f"bitrix24 stage history {row.get('ID')}"
            if not deal_id:
                chunk.rejections.append(
                    self._reject(origin, "OWNER_ID", "missing_id", "the row names no deal")
                )
                continue
            origin = f"bitrix24 deal {deal_id}"
            try:
                moment = parse_timestamp(str(row.get("CREATED_TIME") or ""), self._tz)
            except ParseError as exc:
                chunk.rejections.append(
                    self._reject(
                        origin,
                        "CREATED_TIME",
                        "bad_time",
                        f"the win has no usable time: {exc}",
                        deal_id,
                    )
                )
                continue
            if deal_id not in wins:
                wins[deal_id] = moment
                origins[deal_id] = origin
            last_time = moment if last_time is None else max(last_time, moment)
        deals = self._deals(client, list(wins))
        contacts = self._contacts(client, deals.values())
        fields = self._fields()
        columns = {"status": "STAGE_SEMANTIC_ID", **fields}
        for deal_id, moment in wins.items():
            deal = deals.get(deal_id)
            if deal is None:
                chunk.rejections.append(
                    self._reject(
                        origins[deal_id],
                        "ID",
                        "deal_not_found",
                        "the deal was won but Bitrix24 no longer returns it (deleted?)",
                        deal_id,
                    )
                )
                continue
            contact = contacts.get(str(deal.get("CONTACT_ID") or ""), {})
            values: dict[str, str] = {"status": "won"}
            for canonical, name in fields.items():
                if name.startswith(CONTACT_PREFIX):
                    text = _text(contact.get(name[len(CONTACT_PREFIX) :]))
                else:
                    text = _text(deal.get(name))
                if text:
                    values[canonical] = text
            chunk.records.append(
                RawRecord(self.name, deal_id, moment, values, origins[deal_id], columns)
            )
        # both parts only grow: a lookback re-read of older rows never moves them back
        mark = _Mark(max(mark.history_id, _int(rows[-1].get("ID"))), last_time)
        capped = min(last_time, started) if last_time is not None else None
        chunk.cursor = {
            "history_id": mark.history_id,
            "time": capped.isoformat() if capped is not None else None,
        }
        return chunk, mark

    def _reject(
        self, origin: str, column: str, code: str, reason: str, deal_id: str | None = None
    ) -> RecordRejection:
        return RecordRejection(self.name, origin, column, code, reason, record_id=deal_id)

    def _deals(self, client: Bitrix24Client, ids: list[str]) -> dict[str, Mapping[str, Any]]:
        if not ids:
            return {}
        wanted = [n for n in self._fields().values() if not n.startswith(CONTACT_PREFIX)]
        select = list(dict.fromkeys([*_DEAL_BASE, *wanted]))
        found: dict[str, Mapping[str, Any]] = {}
        for group in chunks_of(ids, MAX_BATCH * PAGE):
            commands = {
                f"d{i}": (
                    "crm.deal.list",
                    {"filter": {"@ID": list(part)}, "select": select, "start": -1},
                )
                for i, part in enumerate(chunks_of(group, PAGE))
            }
            for result in client.batch(commands).values():
                for deal in result or []:
                    found[str(deal.get("ID"))] = deal
        return found

    def _contacts(
        self, client: Bitrix24Client, deals: Iterable[Mapping[str, Any]]
    ) -> dict[str, Mapping[str, Any]]:
        wanted = [
            n[len(CONTACT_PREFIX) :]
            for n in self._fields().values()
            if n.startswith(CONTACT_PREFIX)
        ]
        if not wanted:
            return {}
        ids = sorted({str(d.get("CONTACT_ID")) for d in deals if d.get("CONTACT_ID")})
        found: dict[str, Mapping[str, Any]] = {}
        select = list(dict.fromkeys(["ID", *wanted]))
        for group in chunks_of(ids, MAX_BATCH * PAGE):
            commands = {
                f"c{i}": (
                    "crm.contact.list",
                    {"filter": {"@ID": list(part)}, "select": select, "start": -1},
                )
                for i, part in enumerate(chunks_of(group, PAGE))
            }
            for result in client.batch(commands).values():
                for contact in result or []:
                    found[str(contact.get("ID"))] = contact
        return found

    def _check_category(self, client: Bitrix24Client) -> None:
        result = client.call("crm.category.list", {"entityTypeId": DEAL})
        categories = result.get("categories", []) if isinstance(result, Mapping) else []
        known = {int(c["id"]): str(c.get("name", "")) for c in categories if "id" in c}
        if self.config.category_id not in known:
            listed = ", ".join(f"{i} ({n})" for i, n in sorted(known.items())) or "none"
            raise UserError(
                f"{self._key}.category_id: the portal has no deal pipeline "
                f"{self.config.category_id}; its pipelines are: {listed}"
            )

    # --- validate --------------------------------------------------------------------

    def check(self) -> tuple[list[str], list[str]]:
        """Nothing is requested: ``convsync validate`` must work offline and must not
        spend the portal's request budget."""
        notes = []
        if "email" not in self.config.fields and "phone" not in self.config.fields:
            notes.append(
                f"{self._key}.fields: no contact e-mail or phone mapped "
                "(contact.EMAIL, contact.PHONE): only click ids can match conversions"
            )
        return [], notes


@dataclass(frozen=True, slots=True)
class _Mark:
    """How far the history has been handed over: the highest row id, the latest win."""

    history_id: int
    time: datetime | None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _text(value: Any) -> str:
    """A field's value as text: the first value of a multiple field or a multifield
    (``[{"VALUE": …}]``), ``""`` for none."""
    if value is None or value is False:
        return ""
    if isinstance(value, list):
        for item in value:
            text = _text(item)
            if text:
                return text
        return ""
    if isinstance(value, Mapping):
        return _text(value.get("VALUE"))
    if value is True:
        return "Y"
    return str(value).strip()


def _cursor_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
