"""The ``hubspot`` source: won deals found through the CRM search API, oldest change first.

A pull searches the deals whose ``hs_lastmodifieddate`` lies between the saved cursor
minus ``lookback`` and the moment the pull started, that are won (``hs_is_closed_won``
or the configured stages) and, optionally, in one pipeline, sorted ascending, 200 a
page. HubSpot serves at most 10,000 results of one search, so before a window reaches
that cap a new search starts at the last modification time seen; the deals already
seen at that very millisecond are skipped. Each 1,000 deals (the associations API's
batch) get their contacts in one associations request and one contacts request per
100 contacts, only if a contact property is mapped.

A chunk's cursor is the last modification time it holds (never less than the saved
cursor); the last chunk's is the moment the pull started, so a run that saw nothing
still moves on, and the next run's lookback covers HubSpot's indexing lag.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from convsync.core.errors import UserError
from convsync.core.logging import register_secret
from convsync.core.model import RawRecord, RecordRejection, SourceState
from convsync.core.parsing import ParseError, describe_value, parse_timestamp
from convsync.sources.base import PulledChunk, Source, SourceContext
from convsync.sources.hubspot.client import (
    ASSOCIATIONS_BATCH,
    SEARCH_CAP,
    SEARCH_PAGE,
    HubSpotClient,
)
from convsync.sources.hubspot.config import CONTACT_PREFIX, STATUS_FIELD, HubSpotSourceConfig

MODIFIED = "hs_lastmodifieddate"
CLOSED = "closedate"
#: the first pull without ``start_date`` reaches back this far (Google takes clicks of
#: the last 90 days)
DEFAULT_START = timedelta(days=90)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _modified_ms(deal: Mapping[str, Any]) -> int | None:
    text = (deal.get("properties") or {}).get(MODIFIED)
    if not text:
        return None
    try:
        return _ms(parse_timestamp(str(text), ZoneInfo("UTC")))
    except ParseError:
        return None


class HubSpotSource(Source[HubSpotSourceConfig]):
    """Won deals of one HubSpot account, with their first contact's details."""

    type: ClassVar[str] = "hubspot"
    #: test seams: the page size and the window cap (the API's maxima), the clock, and
    #: how retries wait
    page_size: int = SEARCH_PAGE
    window_cap: int = SEARCH_CAP
    clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(self, name: str, config: HubSpotSourceConfig, context: SourceContext) -> None:
        super().__init__(name, config, context)
        register_secret(config.token)
        self.key = f"sources.{name}"
        self.tz = ZoneInfo(config.timezone) if config.timezone else context.timezone
        self.mapping = config.mapping()
        self.deal_properties = sorted(
            {MODIFIED, CLOSED, "dealstage", "pipeline", "hs_is_closed_won"}
            | {p for p in self.mapping.values() if not p.startswith(CONTACT_PREFIX)}
        )
        self.contact_properties = sorted(
            {
                p.removeprefix(CONTACT_PREFIX)
                for p in self.mapping.values()
                if p.startswith(CONTACT_PREFIX)
            }
        )
        self.status_column = "dealstage" if config.won_stages else "hs_is_closed_won"
        #: the requests of the last pull (the bench reads it)
        self.requests = 0

    def client(self) -> HubSpotClient:
        return HubSpotClient(
            base_url=self.config.api_base_url,
            token=self.config.token.get_secret_value(),
            key=self.key,
            search_per_second=self.config.search_requests_per_second,
            per_second=self.config.requests_per_second,
            sleep=self.sleep,
        )

    def check(self) -> tuple[list[str], list[str]]:
        """Only with a pipeline or stages configured: one read of the deal pipelines, which
        proves the token and resolves the names (nothing is pulled)."""
        if not (self.config.pipeline or self.config.won_stages):
            return [], []
        client = self.client()
        try:
            self._won_filters(client)
        except UserError as exc:
            return [str(exc)], []
        finally:
            client.close()
        return [], []

    def pull(self, state: SourceState) -> Iterator[PulledChunk]:
        started = _ms(self.clock())
        saved = self._saved_cursor(state)
        since = saved - int(self.config.lookback.total_seconds() * 1000) if saved else None
        if since is None:
            since = self._start_ms(started)
        client = self.client()
        try:
            yield from self._pull(client, since, started, saved or 0)
        finally:
            self.requests = client.requests
            client.close()

    def _pull(
        self, client: HubSpotClient, since: int, upper: int, floor: int
    ) -> Iterator[PulledChunk]:
        filters = [
            {"propertyName": MODIFIED, "operator": "GTE", "value": str(since)},
            {"propertyName": MODIFIED, "operator": "LTE", "value": str(upper)},
            *self._won_filters(client),
        ]
        limit = max(1, self.context.chunk_size)
        chunk = PulledChunk()
        last = floor
        group: list[dict[str, Any]] = []

        def drain() -> Iterator[PulledChunk]:
            nonlocal chunk, last
            contacts = self._contacts(client, group)
            for deal in group:
                item = self._record(deal, contacts)
                if isinstance(item, RawRecord):
                    chunk.records.append(item)
                else:
                    chunk.rejections.append(item)
                last = max(last, _modified_ms(deal) or last)
                if len(chunk.records) + len(chunk.rejections) >= limit:
                    chunk.cursor = {"modified": _iso(last)}
                    yield chunk
                    chunk = PulledChunk()
            group.clear()

        for deal in self._deals(client, filters, since):
            group.append(deal)
            if len(group) >= ASSOCIATIONS_BATCH:
                yield from drain()
        yield from drain()
        chunk.cursor = {"modified": _iso(max(upper, floor))}
        yield chunk

    # --- the search windows -----------------------------------------------------------

    def _deals(
        self, client: HubSpotClient, filters: list[dict[str, Any]], since: int
    ) -> Iterator[dict[str, Any]]:
        """Every matching deal once, oldest change first, across restarted windows."""
        start = since
        skip: set[str] = set()  # seen at ``start`` in the window before
        after: str | None = None
        count = 0
        last_ts: int | None = None
        at_last: set[str] = set()
        while True:
            window = [dict(filters[0], value=str(start)), *filters[1:]]
            body: dict[str, Any] = {
                "filterGroups": [{"filters": window}],
                "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
                "properties": self.deal_properties,
                "limit": self.page_size,
            }
            if after is not None:
                body["after"] = after
            data = client.search_deals(body)
            results = data.get("results") or []
            for deal in results:
                deal_id = str(deal.get("id", ""))
                ts = _modified_ms(deal)
                if ts is not None:
                    if ts != last_ts:
                        last_ts, at_last = ts, set()
                    at_last.add(deal_id)
                if ts == start and deal_id in skip:
                    continue
                yield deal
            count += len(results)
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after or not results:
                return
            if count + self.page_size > self.window_cap:
                if last_ts is None or last_ts <= start:
                    raise UserError(
                        f"{self.key}: more than {self.window_cap} won deals carry the same "
                        f"modification time ({_iso(start)}); HubSpot's search cannot page "
                        "past them — narrow the source (pipeline, won_stages)"
                    )
                start, skip, after, count = last_ts, set(at_last), None, 0

    def _won_filters(self, client: HubSpotClient) -> list[dict[str, Any]]:
        cfg = self.config
        if not (cfg.pipeline or cfg.won_stages):
            return [{"propertyName": "hs_is_closed_won", "operator": "EQ", "value": "true"}]
        pipelines = client.pipelines()
        filters: list[dict[str, Any]] = []
        if cfg.pipeline:
            wanted = cfg.pipeline.strip()
            chosen = [
                p
                for p in pipelines
                if str(p.get("id")) == wanted
                or str(p.get("label", "")).casefold() == wanted.casefold()
            ]
            if not chosen:
                known = ", ".join(f"{p.get('id')} ({p.get('label')})" for p in pipelines)
                raise UserError(
                    f"{self.key}.pipeline: this HubSpot account has no deal pipeline "
                    f"{wanted!r}; its pipelines (id (label)): {known or 'none'}"
                )
            pipelines = chosen[:1]
            filters.append(
                {"propertyName": "pipeline", "operator": "EQ", "value": str(chosen[0]["id"])}
            )
        if not cfg.won_stages:
            filters.append({"propertyName": "hs_is_closed_won", "operator": "EQ", "value": "true"})
            return filters
        stages = [s for p in pipelines for s in p.get("stages") or []]
        ids: list[str] = []
        for wanted in cfg.won_stages:
            matched = [
                str(s.get("id"))
                for s in stages
                if str(s.get("id")) == wanted.strip()
                or str(s.get("label", "")).casefold() == wanted.strip().casefold()
            ]
            if not matched:
                known = ", ".join(f"{s.get('id')} ({s.get('label')})" for s in stages)
                raise UserError(
                    f"{self.key}.won_stages: no deal stage {wanted!r} in "
                    f"{'the pipeline' if cfg.pipeline else 'any pipeline'}; its stages "
                    f"(id (label)): {known or 'none'}"
                )
            ids += [i for i in matched if i not in ids]
        filters.append({"propertyName": "dealstage", "operator": "IN", "values": ids})
        return filters

    # --- records ----------------------------------------------------------------------

    def _contacts(
        self, client: HubSpotClient, deals: list[dict[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        """Deal id → its contacts' properties, in association order."""
        if not self.contact_properties or not deals:
            return {}
        links = client.deal_contacts([str(d.get("id")) for d in deals])
        ids = list(dict.fromkeys(i for linked in links.values() for i in linked))
        props = client.contacts(ids, self.contact_properties) if ids else {}
        return {deal: [props[i] for i in linked if i in props] for deal, linked in links.items()}

    def _record(
        self, deal: Mapping[str, Any], contacts: Mapping[str, list[dict[str, Any]]]
    ) -> RawRecord | RecordRejection:
        deal_id = str(deal.get("id", "")).strip()
        props: Mapping[str, Any] = deal.get("properties") or {}
        origin = f"hubspot deal {deal_id}"
        closed = str(props.get(CLOSED) or "").strip()
        if not closed:
            return RecordRejection(
                self.name, origin, CLOSED, "missing_time",
                "the won deal has no close date (closedate)", deal_id,
            )  # fmt: skip
        try:
            occurred = parse_timestamp(closed, self.tz)
        except ParseError:
            return RecordRejection(
                self.name, origin, CLOSED, "bad_time",
                f"the close date {describe_value(closed)} is not a date and time", deal_id,
            )  # fmt: skip
        fields = {STATUS_FIELD: "won"}
        columns = {STATUS_FIELD: self.status_column}
        people = contacts.get(deal_id, [])
        for name, prop in self.mapping.items():
            columns[name] = prop
            if prop.startswith(CONTACT_PREFIX):
                key = prop.removeprefix(CONTACT_PREFIX)
                values = (str(c.get(key) or "").strip() for c in people)
                value = next((v for v in values if v), "")
            else:
                value = str(props.get(prop) or "").strip()
            if value:
                fields[name] = value
        return RawRecord(self.name, deal_id, occurred, fields, origin, columns)

    # --- where a pull starts ----------------------------------------------------------

    def _saved_cursor(self, state: SourceState) -> int | None:
        text = (state.cursor or {}).get("modified")
        if not text:
            return None
        try:
            return _ms(datetime.fromisoformat(str(text)))
        except ValueError:
            raise UserError(
                f"{self.key}: the saved cursor {text!r} is not a time; reset the source's cursor"
            ) from None

    def _start_ms(self, started: int) -> int:
        start = self.config.start_date
        if start is None:
            return started - int(DEFAULT_START.total_seconds() * 1000)
        if not isinstance(start, datetime):
            start = datetime.combine(start, datetime.min.time())
        if start.tzinfo is None:
            start = start.replace(tzinfo=self.tz)
        return _ms(start)
