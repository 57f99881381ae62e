"""The ``metrica_logs`` source: the configured goals reached in a counter's visits.

A pull reads whole days in the counter's time zone, from the day after the saved cursor
minus ``lookback_days`` (visits stay mutable for about 3 days) to yesterday — never
today, which the Logs API refuses. The days are split into log requests of at most
``max_days_per_request`` days (fewer when ``evaluate`` says so); each is created,
polled until processed, its parts read row by row as they stream in, and cleaned.
Each goal reach of a configured goal becomes one record whose id (visit, goal, time)
is the same on every re-read, so the ledger keeps the first and ignores the rest.

The cursor, ``{"date": last day read, "pulled_at": when}``, is handed over only with the
last chunk of a request (the rows of a request come in no date order), so a crash in
the middle of a request means that request is read again. When no new day is complete
and the lookback was read less than ``reread_every`` ago, a pull sends nothing at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from convsync.core.errors import UserError
from convsync.core.logging import get_logger, register_secret
from convsync.core.model import RawRecord, SourceState
from convsync.sources.base import PulledChunk, Source, SourceContext
from convsync.sources.metrica_logs.client import MetricaLogsClient
from convsync.sources.metrica_logs.config import MetricaLogsSourceConfig
from convsync.sources.metrica_logs.logrequest import LogRequests, Span
from convsync.sources.metrica_logs.visits import FIELDS, VisitReader, Zones

log = get_logger(__name__)

#: the first pull without ``start_date`` reads this many days up to yesterday
DEFAULT_DAYS = 30


class MetricaLogsSource(Source[MetricaLogsSourceConfig]):
    """Goal reaches in the visits of one Metrica counter, through the Logs API."""

    type: ClassVar[str] = "metrica_logs"
    #: test seams: the clock, how retries and polls wait, and a request rate above the
    #: API's (tests that do not measure the pacing lift it)
    clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    rate_override: float | None = None

    def __init__(self, name: str, config: MetricaLogsSourceConfig, context: SourceContext) -> None:
        super().__init__(name, config, context)
        register_secret(config.token)
        self.key = f"sources.{name}"
        self.goal_ids = set(config.goal_ids)
        #: HTTP requests of the last pull by kind (the bench and tests read them)
        self.requests: dict[str, int] = {}
        #: goal reaches of the last pull timed before their visit started
        self.early_goals = 0

    def client(self) -> MetricaLogsClient:
        return MetricaLogsClient(
            base_url=self.config.api_base_url,
            token=self.config.token.get_secret_value(),
            counter_id=self.config.counter_id,
            key=self.key,
            per_second=self.rate_override or self.config.requests_per_second,
            sleep=self.sleep,
        )

    def check(self) -> tuple[list[str], list[str]]:
        """One read of the counter: the token works, the goals exist (nothing pulled)."""
        client = self.client()
        try:
            counter = client.counter()
        except UserError as exc:
            return [str(exc)], []
        finally:
            client.close()
        known = {int(g["id"]) for g in counter.get("goals") or [] if str(g.get("id", "")).isdigit()}
        missing = sorted(self.goal_ids - known)
        if missing and known:
            return [
                f"{self.key}.goal_ids: counter {self.config.counter_id} has no goal "
                f"{', '.join(map(str, missing))} (its goals: {', '.join(map(str, sorted(known)))})"
            ], []
        return [], []

    def pull(self, state: SourceState) -> Iterator[PulledChunk]:
        now = self.clock()
        saved = self._saved(state)
        client = self.client()
        try:
            yield from self._pull(client, state, saved, now)
        finally:
            self.requests = dict(client.requests)
            client.close()

    def _pull(
        self, client: MetricaLogsClient, state: SourceState, saved: _Saved | None, now: datetime
    ) -> Iterator[PulledChunk]:
        cfg = self.config
        fresh = (
            saved is not None
            and saved.pulled_at is not None
            and (now - saved.pulled_at < cfg.reread_every)
        )
        known_tz = cfg.timezone or (saved.timezone if saved else None)
        # nothing new is complete before the counter's midnight: no request at all
        if saved and fresh and known_tz and saved.day >= _yesterday(now, ZoneInfo(known_tz)):
            yield PulledChunk(cursor=state.cursor)
            return
        zones = self._zones(client)
        yesterday = _yesterday(now, zones.counter)
        floor = saved.day if saved else None
        spans = _spans(self._first_day(saved, yesterday), yesterday, cfg.max_days_per_request)
        if saved is not None and fresh and saved.day >= yesterday:
            # read recently and nothing new is complete: remember the zone for next time
            yield PulledChunk(cursor={**(state.cursor or {}), "timezone": str(zones.counter)})
            return
        if not spans:  # no lookback and yesterday already read, or a start in the future
            yield PulledChunk(cursor=self._cursor(floor, zones, now) if floor else None)
            return
        requests = LogRequests(
            client, key=self.key, fields=FIELDS, attribution=cfg.attribution,
            poll_interval=cfg.poll_interval, timeout=cfg.processing_timeout, sleep=self.sleep,
        )  # fmt: skip
        reusable = requests.tidy(set(spans))
        self.early_goals = 0
        day = spans[0][0]
        while day <= yesterday:
            span: Span = (day, min(day + timedelta(days=cfg.max_days_per_request - 1), yesterday))
            if span not in reusable:
                span = requests.fit(span)
            chunk = yield from self._read(
                client, requests.processed(span, reusable.get(span)), zones
            )
            end = span[1] if floor is None else max(span[1], floor)
            last = span[1] >= yesterday
            chunk.cursor = self._cursor(end, zones, now) if last else {"date": end.isoformat()}
            yield chunk
            day = span[1] + timedelta(days=1)
        if self.early_goals:
            log.warning(
                "goal times before their visit's start: goals_timezone may be wrong",
                source=self.name, goal_reaches=self.early_goals, goals_timezone=cfg.goals_timezone,
            )  # fmt: skip

    def _read(
        self,
        client: MetricaLogsClient,
        request: AbstractContextManager[dict[str, Any]],
        zones: Zones,
    ) -> Generator[PulledChunk, None, PulledChunk]:
        """Every part of a processed request, row by row: full chunks are yielded, the
        rest is returned after the request is cleaned (the caller adds the cursor)."""
        chunk = PulledChunk()
        with request as info:
            request_id = int(info["request_id"])
            for part in sorted(int(p["part_number"]) for p in info.get("parts") or []):
                where = f"metrica log request {request_id} part {part}"
                reader: VisitReader | None = None
                for number, line in enumerate(client.download(request_id, part), start=1):
                    if reader is None:
                        reader = self._reader(line, zones, where)
                        continue
                    for item in reader.read(line, number):
                        if isinstance(item, RawRecord):
                            chunk.records.append(item)
                        else:
                            chunk.rejections.append(item)
                    if len(chunk.records) + len(chunk.rejections) >= self.context.chunk_size:
                        yield chunk
                        chunk = PulledChunk()
                self.early_goals += reader.early_goals if reader else 0
        return chunk

    @staticmethod
    def _cursor(day: date, zones: Zones, now: datetime) -> dict[str, str]:
        """The cursor after reading up to ``day``; ``pulled_at`` and the counter's time
        zone let the next pull tell, without a request, that nothing new is complete."""
        return {
            "date": day.isoformat(),
            "pulled_at": now.isoformat(),
            "timezone": str(zones.counter),
        }

    # --- pieces ------------------------------------------------------------------------

    def _reader(self, header: str, zones: Zones, where: str) -> VisitReader:
        return VisitReader(
            header, source=self.name, key=self.key, goal_ids=self.goal_ids, zones=zones,
            price_scale=self.config.goal_price_scale, where=where,
        )  # fmt: skip

    def _zones(self, client: MetricaLogsClient) -> Zones:
        name = self.config.timezone
        if name is None:
            name = str(client.counter().get("time_zone_name") or "")
            try:
                counter = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise UserError(
                    f"{self.key}: counter {self.config.counter_id} reports the time zone "
                    f"{name!r}, which is not known here; set {self.key}.timezone"
                ) from None
        else:
            counter = ZoneInfo(name)
        goals_tz = self.config.goals_timezone
        return Zones(counter, counter if goals_tz == "counter" else ZoneInfo(goals_tz))

    def _first_day(self, saved: _Saved | None, yesterday: date) -> date:
        start = self.config.start_date
        if saved is None:
            return start or yesterday - timedelta(days=DEFAULT_DAYS - 1)
        first = saved.day + timedelta(days=1 - self.config.lookback_days)
        return max(first, start) if start is not None else first

    def _saved(self, state: SourceState) -> _Saved | None:
        cursor: Mapping[str, Any] = state.cursor or {}
        if not cursor.get("date"):
            return None
        try:
            day = date.fromisoformat(str(cursor["date"]))
            pulled = cursor.get("pulled_at")
            pulled_at = datetime.fromisoformat(str(pulled)) if pulled else None
        except ValueError:
            raise UserError(
                f"{self.key}: the saved cursor {dict(cursor)!r} is not a date; reset the "
                "source's cursor"
            ) from None
        zone = str(cursor.get("timezone") or "")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ""
        return _Saved(day, pulled_at, zone or None)


@dataclass(frozen=True, slots=True)
class _Saved:
    """The saved cursor: the last day read, when the last pull ended, the counter's
    time zone then."""

    day: date
    pulled_at: datetime | None
    timezone: str | None


def _yesterday(now: datetime, tz: tzinfo) -> date:
    """The last complete day in the counter's time zone (the Logs API refuses today)."""
    return now.astimezone(tz).date() - timedelta(days=1)


def _spans(first: date, last: date, size: int) -> list[Span]:
    spans: list[Span] = []
    day = first
    while day <= last:
        end = min(day + timedelta(days=size - 1), last)
        spans.append((day, end))
        day = end + timedelta(days=1)
    return spans
