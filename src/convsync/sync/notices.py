"""Notices: risky defaults a run met, counted per source, and the lines that tell the
user what happened and what to set.

A notice code is ``<kind>:<source>``; its count is rows. The ``csv`` and ``sql`` row
loops count the times they read without a UTC offset into the pull's
:data:`~convsync.core.parsing.NAIVE_TIMES`, a context variable that
:func:`pull_with_notices` sets and empties into each chunk: the Source interface stays
as it is, and no source hands a counter from its context down to its row loop and back
into its chunks. The goal mapper counts the phones it drops for want of a country code
(:class:`convsync.sync.goals.GoalMapper`). Chunks carry the counts (``PulledChunk.notices``,
``MappedChunk.notices``) as plain counters, also out of the mapping process, and a run
sums them in ``RunSummary.notices``. :func:`render_notices` turns them into the lines
the run log (``risky default``), the run summary and ``convsync validate`` show.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from convsync.config.models import AppConfig, LoadedConfig
from convsync.core.model import SourceState
from convsync.core.parsing import NAIVE_TIMES, NaiveTimes
from convsync.sources.base import PulledChunk, Source

#: rows whose time had no UTC offset, read as UTC because no time zone is configured
NAIVE_TIME = "naive_time"
#: rows whose phone had no country code, dropped because no phone_region is configured
PHONE_WITHOUT_REGION = "phone_without_region"


def notice_code(kind: str, source: str) -> str:
    return f"{kind}:{source}"


def timezone_unset(app: AppConfig, source: str) -> bool:
    """Neither the config nor the source names a time zone: times without a UTC offset
    are read as UTC, the default."""
    own = getattr(app.sources[source], "timezone", None)
    return not own and "timezone" not in app.model_fields_set


def pull_with_notices(
    source: Source[Any], app: AppConfig, state: SourceState
) -> Iterator[PulledChunk]:
    """``source.pull(state)``; where the time zone is unset, each chunk counts the times
    read without a UTC offset (``naive_time``) since the chunk before."""
    naive = NaiveTimes() if timezone_unset(app, source.name) else None
    code = notice_code(NAIVE_TIME, source.name)
    # the sources' row loops run inside source.pull(), in this context: set for each
    # pull, so that one left unfinished (a run stopped) never counts into the next
    NAIVE_TIMES.set(naive)
    try:
        for chunk in source.pull(state):
            if naive is not None and naive.count:
                chunk.notices[code] += naive.take()
            yield chunk
    finally:
        NAIVE_TIMES.set(None)


def render_notices(notices: Mapping[str, int], config: LoadedConfig | AppConfig) -> list[str]:
    """One line per notice: the source, how many rows (``1,240``), what convsync did and
    what to set; by source."""
    app = config.app if isinstance(config, LoadedConfig) else config
    found = []
    for code, count in notices.items():
        kind, _, source = code.partition(":")
        found.append((source, kind, count))
    return [_line(kind, source, count, app) for source, kind, count in sorted(found) if count]


def _line(kind: str, source: str, count: int, app: AppConfig) -> str:
    rows = f"{count:,} row has" if count == 1 else f"{count:,} rows have"
    config = app.sources.get(source)
    if kind == NAIVE_TIME:
        column = _column(getattr(config, "time", None))
        return (
            f"sources.{source}: {rows} times without a UTC offset{column} and were read as "
            "UTC; set timezone at the top of the config (e.g. timezone: Europe/Moscow) "
            "if they are local times"
        )
    if kind == PHONE_WITHOUT_REGION:
        fields = getattr(config, "fields", None)
        column = _column(fields.get("phone") if isinstance(fields, dict) else None)
        return (
            f"sources.{source}: {rows} phones without a country code{column}, which were "
            "dropped; set phone_region at the top of the config (e.g. phone_region: RU) "
            "to read them"
        )
    return f"sources.{source}: {kind}: {count:,} rows"


def _column(name: object) -> str:
    return f" (column {name!r})" if isinstance(name, str) else ""
