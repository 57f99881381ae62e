"""Each alert rule on facts made by hand: when it fires, what it says, what it leaves
unjudged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from convsync.config.alerts import (
    AlertRules,
    BacklogAgeRule,
    DestinationFailingRule,
    MatchRateDropRule,
    RejectedShareRule,
    SourceSilentRule,
    VolumeDropRule,
)
from convsync.config.models import AppConfig
from convsync.service.alerts import rules
from convsync.service.alerts.facts import Backlog, Facts, GoalVolume, MatchVerdicts, RunFacts

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)  # a Tuesday, 14:00 in Moscow
GOOGLE_DOWN = "auth_unreachable: Google OAuth at oauth2.googleapis.com: host name not found (DNS)"


def run(
    n: int,
    destinations: dict[str, dict[str, Any]] | None = None,
    sources: dict[str, dict[str, Any]] | None = None,
) -> RunFacts:
    return RunFacts(f"run-{n}", NOW - timedelta(minutes=15 * n), destinations or {}, sources or {})


def stopped(reason: str = GOOGLE_DOWN) -> dict[str, Any]:
    return {"requests": 0, "batches": 0, "pending": 0, "stopped": reason}


def delivered(n: int) -> dict[str, Any]:
    return {"requests": 1, "batches": 1, "delivered": n}


# --- destination failing ---


def test_a_destination_stopped_for_n_runs_fires_naming_it_and_the_reason() -> None:
    history = [run(i, {"google": stopped(), "vk": delivered(5)}) for i in range(3)]
    by_subject = {
        c.subject: c for c in rules.destination_failing(DestinationFailingRule(), history)
    }
    google = by_subject["google"]
    assert google.firing and google.rule == rules.DESTINATION_FAILING
    assert google.message == f"google stopped for 3 runs in a row: {GOOGLE_DOWN}"
    assert google.details["runs"] == 3
    assert not by_subject["vk"].firing


def test_one_stopped_run_is_not_enough_and_a_good_run_ends_the_streak() -> None:
    rule = DestinationFailingRule()
    (once,) = rules.destination_failing(rule, [run(0, {"google": stopped()})])
    assert not once.firing
    history = [
        run(0, {"google": delivered(7)}),
        run(1, {"google": stopped()}),
        run(2, {"google": stopped()}),
    ]
    (again,) = rules.destination_failing(rule, history)
    assert not again.firing
    assert again.message == "google works again: its last run delivered 7 rows without stopping"


def test_runs_that_did_not_reach_a_destination_are_passed_over() -> None:
    # a --validate run (no destinations) between two stopped runs
    history = [run(0, {"google": stopped()}), run(1), run(2, {"google": stopped()})]
    (google,) = rules.destination_failing(DestinationFailingRule(runs=2), history)
    assert google.firing and google.details["runs"] == 2


def test_an_unexpected_error_counts_as_failing() -> None:
    error = {"requests": 1, "error": "RuntimeError: the platform answered nonsense"}
    (google,) = rules.destination_failing(DestinationFailingRule(), [run(0, {"google": error})] * 2)
    assert google.firing
    assert (
        google.message
        == "google failed for 2 runs in a row: RuntimeError: the platform answered nonsense"
    )


# --- rejected share ---


def test_a_run_that_rejected_more_than_the_limit_fires_with_the_counts() -> None:
    last = run(
        0,
        {"google": {"delivered": 60, "rejected": 20, "rejected_by_code": {"bad_click_id": 20}}},
        {"shop": {"pulled": 100, "rejected": 20}},
    )
    (condition,) = rules.rejected_share(RejectedShareRule(), [last, run(1)])
    assert condition.firing and condition.subject == rules.RUNS
    # 40 rejected of 180 handled (100 records pulled, 80 deliveries with an outcome)
    assert condition.message == (
        "the last run rejected 22 % of its rows: 40 of 180 (20 deliveries, 20 source records); "
        "google: bad_click_id 20; the limit is 20 % (convsync failures lists them)"
    )


def test_a_small_run_is_not_judged_and_a_clean_one_does_not_fire() -> None:
    rule = RejectedShareRule(min_rows=20)
    small = run(0, {}, {"shop": {"pulled": 10, "rejected": 9}})
    assert rules.rejected_share(rule, [small]) == []
    clean = run(0, {"vk": delivered(50)}, {"shop": {"pulled": 50, "rejected": 1}})
    (condition,) = rules.rejected_share(rule, [clean])
    assert not condition.firing
    assert (
        condition.message
        == "the last run rejected 1 % of its rows (1 of 100), within the 20 % limit"
    )


# --- volume drop ---


def volume(today: int, before: tuple[int, ...], goal: str = "purchase") -> GoalVolume:
    return GoalVolume(goal, NOW.astimezone(MSK), today, before)


def test_a_goal_far_below_its_weekday_median_fires() -> None:
    (condition,) = rules.volume_drop(VolumeDropRule(), [volume(12, (61, 58, 64, 70))])
    # the median of 58, 61, 64, 70 is 62.5
    assert condition.firing
    assert (
        condition.message
        == "purchase: 12 conversions today by 14:00, usually 62.5 on a Tuesday (−81 %)"
    )
    (usual,) = rules.volume_drop(VolumeDropRule(), [volume(12, (61, 61, 10, 70))])
    assert (
        usual.message == "purchase: 12 conversions today by 14:00, usually 61 on a Tuesday (−80 %)"
    )


def test_a_goal_usually_small_never_pages_and_half_is_within_the_limit() -> None:
    rule = VolumeDropRule(min_usual=20)
    assert rules.volume_drop(rule, [volume(0, (19, 19, 18, 30))]) == []
    (half,) = rules.volume_drop(rule, [volume(30, (60, 60, 60, 60))])
    assert not half.firing


# --- match rate drop ---


def test_a_match_rate_far_below_the_trailing_median_fires() -> None:
    verdicts = MatchVerdicts("metrica", (30, 70), ((80, 20),) * 14)
    (condition,) = rules.match_rate_drop(MatchRateDropRule(), [verdicts])
    assert condition.firing
    assert condition.message == (
        "metrica: 30 % of the deliveries settled today matched (30 of 100), usually 80 % (−50 points)"
    )


def test_a_match_rate_without_enough_rows_today_or_before_is_not_judged() -> None:
    rule = MatchRateDropRule(min_rows=50)
    few_today = MatchVerdicts("metrica", (1, 9), ((80, 20),) * 14)
    no_history = MatchVerdicts("metrica", (30, 70), ((8, 2),) * 14)  # days of 10 rows only
    assert rules.match_rate_drop(rule, [few_today, no_history]) == []
    (close,) = rules.match_rate_drop(rule, [MatchVerdicts("metrica", (70, 30), ((80, 20),) * 3)])
    assert not close.firing


# --- backlog age ---


def test_a_backlog_older_than_the_limit_fires() -> None:
    oldest = NOW - timedelta(hours=7, minutes=3)
    backlogs = [Backlog("metrica", 1240, oldest), Backlog("vk", 0, None)]
    metrica, vk = rules.backlog_age(BacklogAgeRule(), backlogs, NOW, MSK)
    assert metrica.firing and not vk.firing
    assert metrica.message == (
        "metrica: 1,240 deliveries waiting, the oldest for 7 h 3 min "
        "(since 2026-11-24 06:57 Europe/Moscow); the limit is 6h"
    )
    (young,) = rules.backlog_age(
        BacklogAgeRule(), [Backlog("vk", 3, NOW - timedelta(hours=1))], NOW, MSK
    )
    assert not young.firing


# --- source silent ---


def test_a_source_without_records_for_longer_than_the_limit_fires() -> None:
    last = {"shop": NOW - timedelta(days=2, hours=4), "crm": NOW - timedelta(hours=1)}
    crm, shop = rules.source_silent(SourceSilentRule(), last, NOW, MSK)
    assert shop.firing and not crm.firing
    assert shop.message == (
        "shop: no new records for 2 d 4 h (the last recorded 2026-11-22 10:00 Europe/Moscow); "
        "the limit is 2d"
    )


# --- all together ---


def test_evaluate_runs_only_enabled_rules_and_subjects_follow_the_config() -> None:
    app = AppConfig.model_validate(
        {
            "sources": {"shop": {"type": "csv", "path": "o/*.csv", "id": "id", "time": "t"}},
            "destinations": {"vk": {"type": "vk_ads", "pixel_id": 1}},
            "goals": {"purchase": {"source": "shop", "send": {"vk": {"goal": "p"}}}},
        }
    )
    only_backlog = AlertRules.model_validate(
        {name: {"enabled": name == "backlog_age"} for name in AlertRules.model_fields}
    )
    facts = Facts(
        NOW,
        MSK,
        runs=[run(0, {"vk": stopped()})] * 3,
        volumes=[volume(0, (100,) * 4)],
        backlogs=[Backlog("vk", 5, NOW - timedelta(days=1))],
    )
    assert [(c.rule, c.subject, c.firing) for c in rules.evaluate(only_backlog, facts)] == [
        (rules.BACKLOG_AGE, "vk", True)
    ]
    assert rules.subjects(only_backlog, app) == {rules.BACKLOG_AGE: frozenset({"vk"})}
    everything = rules.subjects(AlertRules(), app)
    assert everything[rules.VOLUME_DROP] == {"purchase"}
    assert everything[rules.SOURCE_SILENT] == {"shop"}
    assert everything[rules.REJECTED_SHARE] == {rules.RUNS}
