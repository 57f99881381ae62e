"""The ``amocrm`` source: leads that reached the won status of a pipeline.

A pull reads, for the window from the cursor (less ``lookback``) to the moment it
started:

1. the ``lead_status_changed`` events into the won status of the configured pipeline
   (``/api/v4/events``, 100 a page) — all of them first, as amoCRM lists events newest
   first and a cursor must only move forward over what is done;
2. then, in ascending (created_at, id) order, a chunk at a time: the leads of the
   chunk's events (``/api/v4/leads?filter[id][]=…&with=contacts``, 250 a request) and,
   if a contact field is mapped, their main contacts (``/api/v4/contacts``, 250 a
   request). Each chunk carries the cursor of its last event, so a restart resumes
   after it and ties within one second are told apart by the event id.

One record per lead (``record_id`` = the lead id, stable across re-pulls, so a lead won
twice is one conversion); its time is the won event's (or the lead's ``closed_at``); its
fields are mapped in ``fields.py`` (``status``: ``won``, or ``moved_after_won`` when the
lead has left the won status since).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import structlog

from convsync.core.errors import UserError
from convsync.core.model import RawRecord, RecordRejection, SourceState
from convsync.sources.amocrm.auth import credentials_for
from convsync.sources.amocrm.client import AmoClient, AmoNotFound
from convsync.sources.amocrm.config import AmoCrmSourceConfig
from convsync.sources.amocrm.fields import FieldPlan, resolve_fields
from convsync.sources.base import PulledChunk, Source, SourceContext

log = structlog.get_logger("convsync.sources.amocrm")

EVENTS_PAGE = 100  # the events list's maximum
BATCH = 250  # leads / contacts per request: the lists' maximum
#: first run without ``start_date``: leads won this long before it
DEFAULT_START = timedelta(days=30)


@dataclass(frozen=True, slots=True, order=True)
class WonEvent:
    created_at: int
    id: str
    lead_id: int


def _key(cursor: Mapping[str, Any] | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    try:
        return int(cursor["created_at"]), str(cursor.get("id") or "")
    except (KeyError, TypeError, ValueError):
        return None  # a cursor of another shape: start as on the first run


class AmoCrmSource(Source[AmoCrmSourceConfig]):
    """Won leads of one pipeline of an amoCRM / Kommo account."""

    type: ClassVar[str] = "amocrm"

    def __init__(self, name: str, config: AmoCrmSourceConfig, context: SourceContext) -> None:
        super().__init__(name, config, context)
        self.clock: Callable[[], float] = time.time
        self.sleep: Callable[[float], None] = time.sleep
        self.requests = 0  # sent by the last pull (bench, log line)

    def check(self) -> tuple[list[str], list[str]]:
        # nothing is asked of amoCRM here: an OAuth check would spend a refresh token
        return [], []

    def pull(self, state: SourceState) -> Iterator[PulledChunk]:
        config = self.config
        tz = ZoneInfo(config.timezone) if config.timezone else self.context.timezone
        started = int(self.clock())
        client = AmoClient(
            self.name,
            config.base_url,
            credentials_for(self.name, config.auth, self.context.tokens),
            per_second=config.requests_per_second,
            sleep=self.sleep,
            # the key that sets the account's address: api_base_url, else the subdomain
            address_key=f"sources.{self.name}."
            + ("api_base_url" if config.api_base_url else "subdomain"),
        )
        try:
            yield from self._pull(client, state, started, tz)
        finally:
            self.requests = client.requests
            client.close()

    def _pull(
        self, client: AmoClient, state: SourceState, started: int, tz: ZoneInfo
    ) -> Iterator[PulledChunk]:
        self._check_pipeline(client)
        plan = resolve_fields(client, self.name, self.config)
        after = _key(state.cursor)
        since = self._window_start(after, started, tz)
        events, bad = self._won_events(client, since, started)
        if after is not None and not self.config.lookback:
            events = [e for e in events if (e.created_at, e.id) > after]
        final = max((started, ""), after or (0, ""))
        limit = max(1, self.context.chunk_size)
        seen: set[int] = set()
        groups = [events[i : i + limit] for i in range(0, len(events), limit)] or [[]]
        for n, group in enumerate(groups):
            # malformed events (rare) ride with the first chunk
            chunk = PulledChunk(rejections=bad if n == 0 else [])
            fresh = [e for e in group if e.lead_id not in seen]
            seen.update(e.lead_id for e in fresh)
            for item in self._records(client, plan, fresh, tz):
                if isinstance(item, RawRecord):
                    chunk.records.append(item)
                else:
                    chunk.rejections.append(item)
            last = (group[-1].created_at, group[-1].id) if group else final
            # the last chunk moves the cursor to the pull's start: the window is done
            chunk.cursor = _cursor(max(last, final) if n == len(groups) - 1 else last)
            yield chunk
        log.info(
            "amocrm pull",
            source=self.name,
            won_events=len(events),
            leads=len(seen),
            requests=client.requests,
        )

    def _window_start(self, after: tuple[int, str] | None, started: int, tz: ZoneInfo) -> int:
        if after is not None:
            return max(0, after[0] - int(self.config.lookback.total_seconds()))
        start = self.config.start_date
        if start is None:
            return started - int(DEFAULT_START.total_seconds())
        if not isinstance(start, datetime):
            start = datetime.combine(start, datetime.min.time())
        if start.tzinfo is None:
            start = start.replace(tzinfo=tz)
        return int(start.timestamp())

    def _check_pipeline(self, client: AmoClient) -> None:
        key = f"sources.{self.name}"
        pid = self.config.pipeline_id
        try:
            body = client.get(f"/api/v4/leads/pipelines/{pid}")
        except AmoNotFound:
            raise UserError(
                f"{key}.pipeline_id: the account has no pipeline {pid}; find the id in the "
                "pipeline's address in amoCRM (…/leads/pipeline/<id>) or in "
                "GET /api/v4/leads/pipelines"
            ) from None
        statuses = ((body or {}).get("_embedded") or {}).get("statuses") or []
        ids = {s.get("id") for s in statuses}
        if statuses and self.config.won_status_id not in ids:
            shown = ", ".join(f"{s.get('id')} {s.get('name')!r}" for s in statuses)
            raise UserError(
                f"{key}.won_status_id: pipeline {pid} has no status "
                f"{self.config.won_status_id}; its statuses: {shown}"
            )

    def _won_events(
        self, client: AmoClient, since: int, until: int
    ) -> tuple[list[WonEvent], list[RecordRejection]]:
        pid, sid = self.config.pipeline_id, self.config.won_status_id
        query: list[tuple[str, str | int]] = [
            ("filter[type]", "lead_status_changed"),
            ("filter[value_after][leads_statuses][0][pipeline_id]", pid),
            ("filter[value_after][leads_statuses][0][status_id]", sid),
            ("filter[created_at][from]", since),
            ("filter[created_at][to]", until),
            ("limit", EVENTS_PAGE),
        ]
        events: list[WonEvent] = []
        bad: list[RecordRejection] = []
        for page in client.pages("/api/v4/events", query, "events"):
            for raw in page:
                if not _is_won(raw, pid, sid):
                    continue  # a filter the account ignored: checked here as well
                try:
                    event = WonEvent(int(raw["created_at"]), str(raw["id"]), int(raw["entity_id"]))
                except (KeyError, TypeError, ValueError):
                    bad.append(
                        RecordRejection(
                            self.name, f"amocrm event {raw.get('id')}", None, "bad_event",
                            "the status change event has no lead id or no time",
                        )
                    )  # fmt: skip
                    continue
                if since <= event.created_at <= until:
                    events.append(event)
        events.sort()
        return events, bad

    def _records(
        self, client: AmoClient, plan: FieldPlan, events: Sequence[WonEvent], tz: ZoneInfo
    ) -> Iterator[RawRecord | RecordRejection]:
        if not events:
            return
        leads = self._by_id(client, "leads", [e.lead_id for e in events], with_contacts=True)
        contacts: dict[int, dict[str, Any]] = {}
        if plan.needs_contacts:
            wanted = [c for c in (_main_contact(lead) for lead in leads.values()) if c is not None]
            contacts = self._by_id(client, "contacts", wanted)
        for event in events:
            record_id = str(event.lead_id)
            origin = f"amocrm lead {record_id}"
            lead = leads.get(event.lead_id)
            if lead is None:
                yield RecordRejection(
                    self.name, origin, None, "lead_not_found",
                    "the lead was won but amoCRM no longer returns it (deleted?)",
                    record_id=record_id,
                )  # fmt: skip
                continue
            if self.config.time == "closed_at":
                try:
                    moment = int(lead["closed_at"])
                except (KeyError, TypeError, ValueError):
                    yield RecordRejection(
                        self.name, origin, "lead.closed_at", "bad_time",
                        "the lead has no closed_at although it was won",
                        record_id=record_id,
                    )  # fmt: skip
                    continue
            else:
                moment = event.created_at
            main = _main_contact(lead)
            contact = contacts.get(main) if main is not None else None
            fields: dict[str, str] = {}
            for canonical, _column, read in plan.getters:
                value = read(lead, contact)
                if value:
                    fields[canonical] = value
            occurred = datetime.fromtimestamp(moment, UTC).astimezone(tz)
            yield RawRecord(self.name, record_id, occurred, fields, origin, plan.columns)

    def _by_id(
        self, client: AmoClient, entity: str, ids: Iterable[int], *, with_contacts: bool = False
    ) -> dict[int, dict[str, Any]]:
        found: dict[int, dict[str, Any]] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), BATCH):
            batch = unique[start : start + BATCH]
            query: list[tuple[str, str | int]] = [("filter[id][]", i) for i in batch]
            query.append(("limit", BATCH))
            if with_contacts:
                query.append(("with", "contacts"))
            # one page: a batch is never longer than a page
            body = client.get(f"/api/v4/{entity}", query)
            for item in ((body or {}).get("_embedded") or {}).get(entity) or []:
                if isinstance(item, dict) and isinstance(item.get("id"), int):
                    found[item["id"]] = item
        return found


def _cursor(key: tuple[int, str]) -> dict[str, Any]:
    return {"created_at": key[0], "id": key[1]}


def _is_won(raw: Mapping[str, Any], pipeline_id: int, status_id: int) -> bool:
    if raw.get("type", "lead_status_changed") != "lead_status_changed":
        return False
    after = raw.get("value_after")
    if not isinstance(after, list):
        return True  # nothing to check against: trust the filter
    for item in after:
        status = item.get("lead_status") if isinstance(item, Mapping) else None
        if isinstance(status, Mapping):
            return status.get("id") == status_id and status.get("pipeline_id") == pipeline_id
    return True


def _main_contact(lead: Mapping[str, Any]) -> int | None:
    linked = (lead.get("_embedded") or {}).get("contacts") or []
    ids = [c for c in linked if isinstance(c, Mapping) and isinstance(c.get("id"), int)]
    for contact in ids:
        if contact.get("is_main"):
            return int(contact["id"])
    return int(ids[0]["id"]) if ids else None
