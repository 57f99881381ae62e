"""The status page as HTML: ``PageData`` turned into rows of words and numbers in the
page's language, and the template (``templates/status.html``, autoescaped) filled with
them.

Every text that comes from the ledger goes through ``shown``: registered secrets and
e-mail addresses are masked, and so is anything written like an international phone
number — the page never shows a customer's contact or a credential, even one a platform
echoed back in a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from typing import Any

import jinja2

from convsync.config.ui import Language
from convsync.core.logging import scrub_text
from convsync.service.statuspage import charts, words
from convsync.service.statuspage.data import PageData, VolumeDay
from convsync.store.funnel import CONVERSION, FunnelRow
from convsync.store.reports import FailureRow
from convsync.store.runs import RunRow

#: the stages of a funnel row, in the order of its columns
STAGES = ("pulled", "conversions", "planned", "sent", "accepted", "matched")
AFTER_RATE = ("waiting", "rejected", "skipped")
REASONS = ("rejected", "deferred", "uncertain", "skipped")
PHONE_MARK = "<phone>"
_PHONE = re.compile(r"\+\d[\d\s().-]{7,}\d")


def shown(text: str | None) -> str:
    """A ledger's text as the page may show it."""
    if not text:
        return ""
    return _PHONE.sub(PHONE_MARK, scrub_text(text))


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("convsync.service.statuspage", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    value: int | float | None = None


def render(data: PageData, lang: Language) -> str:
    """The whole page."""

    def say(key: str) -> str:
        return words.say(key, lang)

    def number(value: float) -> str:
        return words.number(value, lang)

    health = data.health
    other: Language = "ru" if lang == "en" else "en"
    context: dict[str, Any] = {
        "lang": lang,
        "say": say,
        "status": str(health.get("status", "starting")),
        "now": words.moment(data.now, data.zone),
        "zone": data.zone.key,
        "last_run": _last_run(health.get("last_run"), data, lang),
        "next_run": _iso_moment(health.get("next_run"), data),
        "other_language": {"code": other, "query": f"?lang={other}"},
        "alerts": [
            {
                "rule": a.rule,
                "subject": a.subject,
                "message": shown(a.message),
                "since": words.moment(a.since, data.zone),
            }
            for a in data.alerts
        ],
        "destinations": [
            _destination(name, d, data.platforms.get(name, ""), lang)
            for name, d in sorted(health.get("destinations", {}).items())
        ],
        "sources": [
            {"name": name, "reason": shown(str(s.get("reason", "")))}
            for name, s in sorted(health.get("sources", {}).items())
        ],
        "periods": [
            {
                "key": p.key,
                "since": p.since.isoformat(),
                "since_shown": words.moment(p.since, data.zone),
                "rows": [_funnel_row(r, lang) for r in p.funnel],
            }
            for p in data.periods
        ],
        "columns": [*STAGES, "match_rate", *AFTER_RATE],
        "volumes": [
            {
                "goal": goal,
                "chart": charts.volume_chart(goal, days, say, number),
                "anomalies": [_anomaly(d, lang) for d in days if d.anomaly],
                "total": sum(d.count for d in days),
            }
            for goal, days in data.volumes.items()
        ],
        "rates": [
            {"destination": name, "chart": charts.rate_chart(name, days, say)}
            for name, days in data.rates.items()
        ],
        "runs": [_run(r, data, lang) for r in data.runs],
        "failures": [_failure(f, data, lang) for f in data.failures],
    }
    return _environment().get_template("status.html").render(context)


def _anomaly(d: VolumeDay, lang: Language) -> str:
    """``2026-11-24 (Tuesday): 4, usually 20 (−80 %)``."""
    weekday = words.weekday(d.day, lang)
    usual = words.number(d.usual or 0, lang)
    return (
        f"{d.day:%Y-%m-%d} ({weekday}): {words.number(d.count, lang)}, "
        f"{words.say('usually', lang)} {usual} (−{d.drop:.0f} %)"
    )


def _iso_moment(text: Any, data: PageData) -> str:
    if not isinstance(text, str):
        return ""
    return words.moment(datetime.fromisoformat(text), data.zone)


def _last_run(run: Any, data: PageData, lang: Language) -> Mapping[str, str] | None:
    if not isinstance(run, Mapping):
        return None
    return {
        "run_id": str(run.get("run_id", "")),
        "status": str(run.get("status", "")),
        "finished": _iso_moment(run.get("finished_at"), data),
        "warnings": "; ".join(shown(str(w)) for w in run.get("warnings", [])),
    }


def _destination(
    name: str, d: Mapping[str, Any], platform: str, lang: Language
) -> Mapping[str, Any]:
    age = d.get("oldest_due_age_s")
    delivered = d.get("delivered")
    return {
        "name": name,
        "platform": platform,
        "status": str(d.get("status", "")),
        "reason": shown(d.get("reason")),
        "delivered": Cell(
            words.number(delivered, lang) if delivered is not None else "", delivered
        ),
        "oldest": Cell(words.duration(age, lang), age),
    }


def _funnel_row(r: FunnelRow, lang: Language) -> Mapping[str, Any]:
    cells: dict[str, Cell] = {}
    for stage in (*STAGES, *AFTER_RATE):
        value = getattr(r, stage)
        if stage == "matched" and r.platform_successful is not None and not r.matched + r.unmatched:
            # Google Ads API: no verdict per row, its upload summaries' successful events
            cells[stage] = Cell(f"{words.number(r.platform_successful, lang)}*", value)
        elif stage == "matched" and not r.reports_matching:
            cells[stage] = Cell("—")
        elif value is None:
            cells[stage] = Cell("")
        else:
            cells[stage] = Cell(words.number(value, lang), value)
    rate = r.match_rate
    cells["match_rate"] = Cell(words.percent(rate, lang), rate)
    reasons = [
        f"{words.say(what, lang)}: "
        + ", ".join(f"{shown(code)} {words.number(n, lang)}" for code, n in sorted(counts.items()))
        for what in REASONS
        if (counts := getattr(r, f"{what}_by_code"))
    ]
    if not r.reports_matching:
        reasons.append(f"—: {words.say('not_reported', lang)}")
    if r.platform_successful is not None:
        reasons.append(_summaries(r, lang))
    return {
        "goal": r.goal,
        "kind": r.kind if r.kind != CONVERSION else "",
        "destination": r.destination,
        "cells": cells,
        "reasons": "; ".join(reasons),
    }


def _summaries(r: FunnelRow, lang: Language) -> str:
    """``*Google Ads upload summaries: 412 successful, 30 failed, 5 pending; alerts of
    2026-12-04: CLICK_NOT_FOUND 20.0 %``."""
    n = partial(words.number, lang=lang)
    text = (
        f"*{words.say('upload_summaries', lang)}: {n(r.platform_successful or 0)} "
        f"{words.say('successful', lang)}, {n(r.platform_failed or 0)} "
        f"{words.say('failed_events', lang)}, {n(r.platform_pending or 0)} "
        f"{words.say('pending_events', lang)}"
    )
    if r.platform_alerts:
        shown_alerts = ", ".join(
            f"{shown(code)} {words.percent(share, lang)}"
            for code, share in list(r.platform_alerts.items())[:3]
        )
        text += f"; {words.say('alerts_of', lang)} {r.platform_alerts_on}: {shown_alerts}"
    return text


def _run(r: RunRow, data: PageData, lang: Language) -> Mapping[str, Any]:
    took = (r.finished_at - r.started_at) if r.finished_at is not None else None
    return {
        "run_id": r.run_id,
        "started": words.moment(r.started_at, data.zone),
        "took": words.duration(took, lang),
        "status": r.status,
        "trigger": r.trigger,
    }


def _failure(f: FailureRow, data: PageData, lang: Language) -> Mapping[str, str]:
    say = words.say
    if f.kind == "record":
        what = f"{say('record_of', lang)} {f.source}"
        column = f", {f.column}" if f.column else ""
        where = f"{f.origin or ''}{column}"
    elif f.kind == "upload":
        what = f"{say('upload_of', lang)} {f.rows} {say('rows', lang)}"
        where = f"{f.destination}, {f.upload}"
    else:
        what = say(f.state.value, lang) if f.state is not None else ""
        adjustment = f" ({f.adjustment})" if f.adjustment else ""
        where = f"{f.goal} → {f.destination}, {say('order', lang)} {f.order_id}{adjustment}"
    why = f.message or ""
    if f.retry_at is not None:
        why += f" ({say('next_try', lang)} {words.moment(f.retry_at, data.zone)})"
    return {
        "when": words.moment(f.at, data.zone),
        "what": shown(what),
        "where": shown(where),
        "code": shown(f.code),
        "why": shown(why),
    }
