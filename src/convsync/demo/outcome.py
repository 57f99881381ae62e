"""What ``convsync demo`` is meant to show, and how a dry run differs from it. The
demo's samples hold two bad rows on purpose, so its run is ``degraded``: the demo's own
verdict comes from comparing the counts the summary shows with these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from convsync.sync.summary import RunSummary

#: the counts of a source the summary shows and the demo checks
SOURCE_COUNTS = ("pulled", "rejected", "new")
#: what can become of a planned delivery, in the order the summary shows them
PLAN_KINDS = ("send", "deferred", "rejected", "skipped")


@dataclass(frozen=True)
class DemoOutcome:
    #: per source: rows read, rows rejected, conversions found (``SOURCE_COUNTS``)
    sources: Mapping[str, Mapping[str, int]]
    #: per (destination, goal): deliveries planned (``send``) and held back, by kind
    plan: Mapping[tuple[str, str], Mapping[str, int]]

    @property
    def planned(self) -> int:
        return sum(counts.get("send", 0) for counts in self.plan.values())

    @property
    def rejected_rows(self) -> int:
        return sum(counts.get("rejected", 0) for counts in self.sources.values())


MEANT = DemoOutcome(
    sources={
        # A-1002 (new) and A-1005 (cancelled) are no purchase; A-1007's amount is "oops"
        "shop": {"pulled": 8, "rejected": 1, "new": 5},
        # D-502 is still in progress; D-504 closed on the 32nd
        "crm": {"pulled": 4, "rejected": 1, "new": 2},
    },
    plan={
        # skipped: no identifier this platform can match. A purchase reaches Google by its
        # gclid (A-1001, A-1004), Metrica by its client id (A-1001, A-1003), VK by its
        # rb_clickid (A-1004, A-1006); a won deal reaches Google by gclid or, enhanced
        # for leads, by e-mail or phone (D-501, D-503), Metrica by its ClientID (D-503).
        ("google", "purchase"): {"send": 2, "skipped": 3},
        ("google", "deal_won"): {"send": 2},
        ("metrica", "purchase"): {"send": 2, "skipped": 3},
        ("metrica", "deal_won"): {"send": 1, "skipped": 1},
        ("vk", "purchase"): {"send": 2, "skipped": 3},
    },
)


def differences(summary: RunSummary, meant: DemoOutcome = MEANT) -> list[str]:
    """How the dry run's summary differs from what the demo is meant to show; empty
    when it does not."""
    found = [*summary.user_errors, *(f"warning: {warning}" for warning in summary.warnings)]
    for name in sorted(meant.sources.keys() | summary.sources.keys()):
        had = _source_counts(summary.sources.get(name, {}))
        wanted = _source_counts(meant.sources.get(name, {}))
        if had != wanted:
            found.append(f"source {name}: meant {_listed(wanted)}; the run had {_listed(had)}")
    for destination, goal in sorted(meant.plan.keys() | summary.plan.keys()):
        has = _nonzero(summary.plan.get((destination, goal), {}))
        wanted = _nonzero(meant.plan.get((destination, goal), {}))
        if has != wanted:
            found.append(
                f"plan {destination} / {goal}: meant {_listed(wanted)}; the plan has {_listed(has)}"
            )
    return found


def verdict(meant: DemoOutcome = MEANT) -> str:
    return (
        f"The demo did what it is meant to: {meant.planned} deliveries planned, "
        f"{meant.rejected_rows} bad rows rejected as shown."
    )


def _source_counts(counts: Mapping[str, int]) -> dict[str, int]:
    return {key: counts.get(key, 0) for key in SOURCE_COUNTS}


def _nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    """The kinds that occur, known ones first in their order, then any other."""
    kinds = [*(k for k in PLAN_KINDS if k in counts), *sorted(set(counts) - set(PLAN_KINDS))]
    return {kind: counts[kind] for kind in kinds if counts[kind]}


def _listed(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "nothing"
