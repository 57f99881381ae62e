"""What the Metrica Logs source makes of visits: one record per configured goal reach,
its fields, click ids from the landing URL, time zones, and the days each pull reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import structlog

from convsync.core.errors import UserError
from convsync.core.identity import build_identifiers
from convsync.core.model import RawRecord, SourceState
from tests.metrica_logs_fake import FakeMetricaLogs, Visit, days_ago
from tests.unit.sources.contract import fold_state, pull_all, records_of, rejections_of

from .conftest import GOAL, OTHER_GOAL, build, goal_time, record_id, seed


def by_goal(records: list[RawRecord]) -> dict[str, list[RawRecord]]:
    found: dict[str, list[RawRecord]] = {}
    for record in records:
        found.setdefault(record.fields["metrica_goal_id"], []).append(record)
    return found


def test_a_configured_goal_reach_becomes_a_record_with_the_visit_fields(
    fake: FakeMetricaLogs,
) -> None:
    (visit,) = seed(fake.state, 1, goals=(OTHER_GOAL, GOAL))
    seed(fake.state, 1, start=2, goals=())  # a visit without goals
    (record,) = records_of(pull_all(build(fake)))
    assert record.record_id == record_id(visit, GOAL, index=1)
    assert record.fields == {
        "metrica_goal_id": "111",
        "metrica_visit_id": "10000001",
        "metrica_client_id": "1700000000000000001",
        "landing_url": visit.start_url,
        "yclid": "yc1",
        "gclid": "Cj0-1",
        "vk_click_id": "rb1",
        "purchase_id": "p-1",
        "order_id": "order-1",
        "value": "1500",
        "currency": "RUB",
        "utm_source": "yandex",
        "utm_medium": "cpc",
        "utm_campaign": "c1",
    }
    assert record.columns["metrica_goal_id"] == "ym:s:goalsID"
    assert record.columns["yclid"] == "ym:s:startURL"
    assert record.columns["utm_source"] == "ym:s:<attribution>UTMSource"
    assert record.origin == "metrica visit 10000001 goal 111"
    # the goal was reached 6 minutes into the visit (the second goal of it)
    start = visit.start.replace(tzinfo=ZoneInfo("Europe/Moscow"))
    assert record.occurred_at == start + timedelta(minutes=6)
    assert record.occurred_at.utcoffset() == timedelta(hours=3)


def test_only_configured_goals_and_each_reach_once(fake: FakeMetricaLogs) -> None:
    (visit,) = seed(fake.state, 1, goals=(GOAL, OTHER_GOAL, GOAL))
    # the same goal twice in the same second: one conversion
    visit.goals.append((GOAL, visit.goals[0][1], 0, "", ""))
    records = records_of(pull_all(build(fake, goal_ids=[GOAL, OTHER_GOAL])))
    goals = by_goal(records)
    assert len(goals["111"]) == 2 and len(goals["222"]) == 1
    assert len({r.record_id for r in records}) == 3
    assert len(records_of(pull_all(build(fake, goal_ids=[333])))) == 0


def test_goal_values_orders_and_currencies_are_per_reach(fake: FakeMetricaLogs) -> None:
    (visit,) = seed(fake.state, 1, goals=(GOAL, GOAL))
    visit.goals[0] = (GOAL, visit.goals[0][1], 1_234_567, "", "")
    visit.goals[1] = (GOAL, visit.goals[1][1], 0, "o'2\t", "USD")
    visit.purchases = []
    first, second = sorted(records_of(pull_all(build(fake))), key=lambda r: r.occurred_at)
    assert first.fields["value"] == "1234.567"
    assert "order_id" not in first.fields and "currency" not in first.fields
    assert "value" not in second.fields  # no goal value: the goal rule's default applies
    assert second.fields["order_id"] == "o'2" and second.fields["currency"] == "USD"
    assert "purchase_id" not in first.fields
    assert len(records_of(pull_all(build(fake, goal_price_scale=1)))) == 2
    scaled = records_of(pull_all(build(fake, goal_price_scale=1)))
    assert {r.fields.get("value") for r in scaled} == {"1234567", None}


def test_click_ids_come_from_the_landing_url(fake: FakeMetricaLogs) -> None:
    url = "https://shop.example/a?x=1&gbraid=GB1&wbraid=WB1#/route?rb_clickid=rb-frag"
    seed(fake.state, 1, url=url)
    (record,) = records_of(pull_all(build(fake)))
    assert record.fields["gbraid"] == "GB1" and record.fields["wbraid"] == "WB1"
    ids = build_identifiers(record.fields, None)
    assert (ids.gbraid, ids.wbraid, ids.vk_click_id) == ("GB1", "WB1", "rb-frag")
    assert ids.metrica_client_id == "1700000000000000001" and ids.purchase_id == "p-1"


def test_the_attribution_model_chooses_the_utm_fields(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 1)
    (record,) = records_of(pull_all(build(fake, attribution="FIRST")))
    assert fake.state.calls_of("create")[0].query["attribution"] == "FIRST"
    assert record.fields["utm_source"] == "google" and record.fields["utm_medium"] == "organic"
    assert "utm_campaign" not in record.fields


@pytest.mark.parametrize(
    ("zone", "now", "yesterday"),
    [
        # 22:30 UTC is already the next day at UTC+14
        ("Pacific/Kiritimati", datetime(2026, 11, 25, 22, 30, tzinfo=UTC), "2026-11-25"),
        # 02:00 UTC is still the day before in New York
        ("America/New_York", datetime(2026, 11, 26, 2, 0, tzinfo=UTC), "2026-11-24"),
        ("Europe/Moscow", datetime(2026, 11, 25, 21, 30, tzinfo=UTC), "2026-11-25"),
        ("UTC", datetime(2026, 11, 25, 23, 59, 59, tzinfo=UTC), "2026-11-24"),
    ],
)
def test_date2_is_the_counters_yesterday_never_its_today(
    fake: FakeMetricaLogs, zone: str, now: datetime, yesterday: str
) -> None:
    fake.state.time_zone_name = zone
    fake.state.clock = lambda: now
    visit = Visit(1, days_ago(fake.state, 1, "23:50:00"))
    visit.goals = [(GOAL, goal_time(fake.state, visit.start, 5), 0, "", "")]
    fake.state.visits.append(visit)
    (record,) = records_of(pull_all(build(fake)))
    create = fake.state.calls_of("create")[0]
    assert create.status == 200 and create.query["date2"] == yesterday
    expected = visit.start.replace(tzinfo=ZoneInfo(zone)) + timedelta(minutes=5)
    assert record.occurred_at == expected and record.occurred_at.tzinfo == ZoneInfo(zone)
    # the time zone set in the config: the counter's settings are not read
    fake.state.calls.clear()
    records_of(pull_all(build(fake, timezone=zone)))
    assert fake.state.calls_of("counter") == []
    assert fake.state.calls_of("create")[0].query["date2"] == yesterday


def test_goal_times_in_the_counters_zone_when_configured_so(fake: FakeMetricaLogs) -> None:
    fake.state.time_zone_name = "Europe/London"
    visit = Visit(5, days_ago(fake.state, 2))
    # Metrica wrote this goal time in the counter's time zone, not UTC+3
    written = (visit.start + timedelta(minutes=5)).isoformat(sep=" ")
    visit.goals = [(GOAL, written, 0, "", "")]
    fake.state.visits.append(visit)
    with structlog.testing.capture_logs() as logs:
        (wrong,) = records_of(pull_all(build(fake)))
    # read as UTC+3 it comes 3 hours early, before the visit started: a warning says so
    assert wrong.occurred_at == visit.start.replace(tzinfo=ZoneInfo("Europe/London")) - timedelta(
        hours=3, minutes=-5
    )
    warned = [e for e in logs if "goals_timezone" in e["event"]]
    assert warned and warned[0]["goal_reaches"] == 1
    with structlog.testing.capture_logs() as logs:
        (right,) = records_of(pull_all(build(fake, goals_timezone="counter")))
    assert right.occurred_at == visit.start.replace(tzinfo=ZoneInfo("Europe/London")) + timedelta(
        minutes=5
    )
    assert not [e for e in logs if "goals_timezone" in e["event"]]


def test_the_lookback_rereads_three_days_with_the_same_record_ids(fake: FakeMetricaLogs) -> None:
    day0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    fake.state.clock = lambda: day0
    old = seed(fake.state, 2, days_back=5)
    recent = seed(fake.state, 2, start=10, days_back=2)
    source = build(fake)
    first = pull_all(source)
    assert sorted(r.record_id for r in records_of(first)) == sorted(
        record_id(v) for v in old + recent
    )
    state = fold_state(SourceState(), first)
    assert state.cursor is not None and state.cursor["date"] == "2026-11-24"
    assert state.cursor["timezone"] == "Europe/Moscow"

    # the same day again: nothing new is complete and the window was just read
    fake.state.calls.clear()
    assert records_of(pull_all(source, state)) == [] and fake.state.calls == []

    # the next day: the 3 days before the cursor come again, plus the new day
    fake.state.clock = lambda: day0 + timedelta(days=1)
    late = seed(fake.state, 1, start=20, days_back=1)
    again = pull_all(source, state)
    create = fake.state.calls_of("create")[0].query
    assert (create["date1"], create["date2"]) == ("2026-11-22", "2026-11-25")
    ids = {r.record_id for r in records_of(again)}
    assert ids == {record_id(v) for v in recent + late}  # the same ids as the first time
    assert fold_state(state, again).cursor["date"] == "2026-11-25"  # type: ignore[index]


def test_reread_every_zero_rereads_on_every_run(fake: FakeMetricaLogs) -> None:
    seed(fake.state, 2, days_back=1)
    source = build(fake, reread_every=0, lookback_days=1)
    state = fold_state(SourceState(), pull_all(source))
    assert len(records_of(pull_all(source, state))) == 2


def test_a_cursor_that_is_not_a_date_is_a_user_error(fake: FakeMetricaLogs) -> None:
    with pytest.raises(UserError, match=r"sources\.web: the saved cursor .* reset"):
        pull_all(build(fake), SourceState(cursor={"date": "yesterday"}))


def test_bad_rows_are_rejected_without_quoting_personal_data(fake: FakeMetricaLogs) -> None:
    (visit,) = seed(fake.state, 1)
    visit.goals = [(GOAL, "+7 912 345-67-89", 0, "", "")]
    seed(fake.state, 1, start=2)
    chunks = pull_all(build(fake))
    assert len(records_of(chunks)) == 1
    (rejection,) = rejections_of(chunks)
    assert rejection.code == "bad_time" and rejection.column == "ym:s:goalsDateTime"
    assert "912" not in rejection.reason and rejection.record_id == "10000001"


def test_check_finds_goal_ids_the_counter_does_not_have(fake: FakeMetricaLogs) -> None:
    fake.state.goals = [{"id": 111, "name": "Lead", "type": "action"},
                        {"id": 222, "name": "Call", "type": "phone"}]  # fmt: skip
    assert build(fake, goal_ids=[111, 222]).check() == ([], [])
    problems, _ = build(fake, goal_ids=[111, 999]).check()
    assert problems == [
        f"sources.web.goal_ids: counter {fake.state.counter_id} has no goal 999 (its goals: "
        "111, 222)"
    ]
    assert fake.state.calls_of("counter")[-1].query == {"field": "goals"}
