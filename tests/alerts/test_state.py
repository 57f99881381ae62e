"""The alert state across processes and runs (SQLite and PostgreSQL): a change is recorded
by one process, a message claimed by one process, two engines on one ledger send each
message once, a channel that failed is tried again alone; every platform unreachable for
three runs sends one message per destination; the hooks after ``sync --once`` and a
scheduled run; ``convsync alerts`` lists what fires."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from convsync.config.settings import Settings
from convsync.service.alerts.engine import alerts_after_run, notify
from convsync.service.runner import run_once
from convsync.service.scheduler import SyncScheduler
from convsync.store.alerting import AlertStateRow
from convsync.store.engine import create, parse_url
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncPipeline
from convsync.sync.summary import SyncOptions
from tests.alerts_fake import FakeTelegram, FakeWebhook
from tests.alerts_fake.telegram import TOKEN
from tests.clock import Clock
from tests.integration.test_cli import convsync

from .test_engine import (
    TUESDAY_2PM,
    UNREACHABLE,
    alerts_section,
    deliver,
    load,
    texts,
    waiting,
)

STATE = AlertStateRow(
    rule="backlog_age",
    subject="vk",
    firing=True,
    since=TUESDAY_2PM,
    message="vk: 3 deliveries waiting, the oldest for 7 h",
    details={"due": 3},
    updated_at=TUESDAY_2PM,
)


@pytest.fixture
def second(ledger_url: str, ledger: Ledger) -> Iterator[Ledger]:
    """Another process's ledger: the same database through its own engine."""
    other = Ledger.open(ledger_url)
    yield other
    other.close()


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` on threads released together; their results in order (the first
    error raised again here)."""
    start = threading.Barrier(len(calls))

    def released(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(released, call) for call in calls]
        return [future.result() for future in futures]


def test_a_new_state_is_recorded_by_one_of_two_processes(ledger: Ledger, second: Ledger) -> None:
    won = at_once(
        lambda: ledger.save_alert_state(STATE, None), lambda: second.save_alert_state(STATE, None)
    )
    assert sorted(won) == [False, True]
    assert ledger.alert_states() == [STATE]


def test_a_change_is_recorded_only_while_the_row_is_as_it_was_read(
    ledger: Ledger, second: Ledger
) -> None:
    assert ledger.save_alert_state(STATE, None)
    (read,) = ledger.alert_states()
    resolved = replace(
        STATE, firing=False, since=TUESDAY_2PM + timedelta(minutes=15), message="cleared"
    )
    assert second.save_alert_state(resolved, read)
    # this process read the firing row before the other resolved it: its write is refused
    refreshed = replace(STATE, since=TUESDAY_2PM + timedelta(minutes=20), message="stale")
    assert not ledger.save_alert_state(refreshed, read)
    assert [(s.firing, s.message) for s in ledger.alert_states()] == [(False, "cleared")]


def test_a_message_is_claimed_by_one_process_and_released_when_it_did_not_go_out(
    ledger: Ledger, second: Ledger
) -> None:
    assert ledger.save_alert_state(STATE, None)
    (state,) = ledger.unnotified_alerts()
    claimed = at_once(
        lambda: ledger.claim_alert_notice(state, TUESDAY_2PM),
        lambda: second.claim_alert_notice(state, TUESDAY_2PM),
    )
    assert sorted(claimed) == [False, True]
    assert ledger.unnotified_alerts() == []
    ledger.finish_alert_notice(state, TUESDAY_2PM, ["ops"], complete=False)
    (again,) = second.unnotified_alerts()
    assert again.sent_to == ("ops",) and again.notified_at is None


def test_two_engines_on_one_ledger_send_each_message_once(
    tmp_path: Path, ledger: Ledger, second: Ledger, telegram: FakeTelegram
) -> None:
    loaded = load(tmp_path, alerts_section(telegram, "backlog_age"))
    waiting(ledger, 3)
    for minutes in (0, 15, 30):
        now = TUESDAY_2PM + timedelta(minutes=minutes)
        at_once(partial(notify, loaded, ledger, now), partial(notify, loaded, second, now))
    assert len(deliver(ledger, TUESDAY_2PM)) == 3
    for minutes in (45, 60):
        now = TUESDAY_2PM + timedelta(minutes=minutes)
        at_once(partial(notify, loaded, second, now), partial(notify, loaded, ledger, now))
    sent = texts(telegram)
    assert len(sent) == 2, sent
    assert sent[0].startswith("convsync: vk: 3 deliveries waiting, the oldest for 1 d ")
    assert sent[1].startswith("convsync: resolved: vk: no delivery has waited longer than 6h")


def test_a_channel_that_failed_is_tried_again_next_run_and_alone(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram, webhook: FakeWebhook
) -> None:
    alerts = alerts_section(telegram, "backlog_age")
    alerts["channels"]["hook"] = webhook.channel()
    loaded = load(tmp_path, alerts)
    waiting(ledger)
    webhook.state.queued.append((500, b"internal error"))
    with capture_logs() as logs:
        assert notify(loaded, ledger, TUESDAY_2PM) == []
    (not_sent,) = [e for e in logs if e["event"] == "alert not sent"]
    assert not_sent["channel"] == "hook" and not_sent["log_level"] == "warning"
    assert not_sent["reason"] == (
        f"the webhook at {webhook.base_url.removeprefix('http://')} answered 500 Internal Server Error (internal error)"
    )
    assert webhook.state.key not in not_sent["reason"]
    assert len(texts(telegram)) == 1 and webhook.state.bodies == []
    assert notify(loaded, ledger, TUESDAY_2PM + timedelta(minutes=15)) == ["backlog_age:vk"]
    assert len(texts(telegram)) == 1  # not twice to the channel that had it
    assert [b["text"] for b in webhook.state.bodies] == texts(telegram)
    assert notify(loaded, ledger, TUESDAY_2PM + timedelta(minutes=30)) == []


def test_convsync_alerts_lists_what_is_firing(
    tmp_path: Path, ledger: Ledger, ledger_url: str, telegram: FakeTelegram
) -> None:
    loaded = load(tmp_path, alerts_section(telegram, "backlog_age"))
    waiting(ledger, 3)
    notify(loaded, ledger, TUESDAY_2PM)
    args = ("--config", str(loaded.path), "--database-url", ledger_url, "alerts")
    listed = convsync(*args, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == (
        "backlog_age · vk · firing since 2026-11-24 11:00 UTC\n"
        "  vk: 3 deliveries waiting, the oldest for 1 d (since 2026-11-23 14:00 Europe/Moscow); "
        "the limit is 6h\n"
    )
    assert deliver(ledger, TUESDAY_2PM)
    notify(loaded, ledger, TUESDAY_2PM + timedelta(minutes=15))
    quiet = convsync(*args, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.startswith("No alert is firing (ledger ")


# --- every destination unreachable: one message per stopped destination ---

ALL_PLATFORMS = f"""\
destinations:
  google:
    type: google_ads
    customer_id: "123-456-7890"
    auth: {{client_id: test-client, client_secret: "${{G_SECRET}}", refresh_token: "${{G_REFRESH}}",
           token_uri: "{UNREACHABLE}/token"}}
  metrica: {{type: yandex_metrica, counter_id: 12345678, token: "${{METRICA_TOKEN}}",
            api_base_url: "{UNREACHABLE}"}}
  vk: {{type: vk_ads, pixel_id: 42, tracker_url: "{UNREACHABLE}/tracker"}}
goals:
  purchase:
    source: shop
    when: {{status: [paid]}}
    value: value
    currency: RUB
    send:
      google: {{conversion_action: 987654321}}
      metrica: {{target: purchase}}
      vk: {{goal: purchase}}
"""
SECRETS = {
    "G_SECRET": "google-client-secret",
    "G_REFRESH": "google-refresh-token",
    "METRICA_TOKEN": "metrica-token-1234",
}


def write_orders(folder: Path, day: str = "2026-11-24") -> None:
    """Two paid orders of ``day``; runs on the real clock need a recent one (``RECENT``)."""
    (folder / "orders" / "a.csv").write_text(
        "order_id,created_at,status,total,currency,gclid,ym_uid,rb_clickid\n"
        f"A-1,{day} 10:00:00,paid,1500,RUB,EAIaIQ-gclid-1,1700000000123456789,click1\n"
        f"A-2,{day} 11:00:00,paid,2500,RUB,EAIaIQ-gclid-2,1700000000123456790,click2\n",
        encoding="utf-8",
    )


#: yesterday, within every platform's age limits whenever the tests run
RECENT = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()


def test_every_platform_unreachable_three_runs_send_one_message_per_destination(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    # only the channel configured: every rule at its defaults
    alerts = {"channels": {"ops": telegram.channel(bot_token="${TG_TOKEN}")}}
    loaded = load(tmp_path, alerts, ALL_PLATFORMS, SECRETS)
    write_orders(tmp_path)
    clock = Clock(TUESDAY_2PM)
    pipeline = SyncPipeline(loaded, ledger, clock=clock, sleep=lambda _: None, initial_wait=0)
    for _ in range(3):
        with alerts_after_run(loaded, ledger, clock):
            summary = pipeline.run(SyncOptions(trigger="schedule"))
        assert set(summary.destinations) == {"google", "metrica", "vk"}
        assert all(d.get("stopped") for d in summary.destinations.values()), summary.destinations
        clock.now += timedelta(minutes=15)
    sent = sorted(texts(telegram))
    assert len(sent) == 3, sent
    for text, name in zip(sent, ("google", "metrica", "vk"), strict=True):
        assert text.startswith(f"convsync: {name} stopped for 2 runs in a row: "), text
        assert "127.0.0.1:9" in text  # the reason names the host it could not reach
    for secret in (*SECRETS.values(), TOKEN):
        assert all(secret not in text for text in sent)
    # the service is failed, /healthz says 503 and the status page says who stopped and why
    app = _health_app(loaded, ledger, clock)
    assert app.get("/healthz").status_code == 503
    assert app.get("/healthz").json["status"] == "failed"
    page = app.get("/").text
    for name in ("google", "metrica", "vk"):
        row = page.split(f'data-destination="{name}" data-status="failed"', 1)[1].split("</tr>")[0]
        assert "127.0.0.1:9" in row  # the reason, naming the host it could not reach


def _health_app(loaded: Any, ledger: Ledger, clock: Clock) -> Any:
    """The health port's app as ``convsync run`` builds it, read through Werkzeug's client."""
    from werkzeug.test import Client

    from convsync.service.healthz import assess
    from convsync.service.statuspage.data import gather
    from convsync.service.statuspage.endpoint import HealthApp
    from convsync.service.statuspage.render import render

    def status() -> dict[str, Any]:
        return assess(loaded.app, ledger, clock.now, running=True)

    def page(health: Any, lang: Any) -> str:
        return render(gather(loaded.app, ledger, health, clock.now), lang)

    return Client(HealthApp(status, page=page))


# --- the hooks ---


def test_sync_once_alerts_after_a_real_run_and_never_after_a_dry_run(
    tmp_path: Path, ledger: Ledger, ledger_url: str, telegram: FakeTelegram
) -> None:
    loaded = load(
        tmp_path, alerts_section(telegram, "destination_failing", destination_failing={"runs": 1})
    )
    write_orders(tmp_path, RECENT)
    settings = Settings(config=tmp_path / "convsync.yaml", database_url=ledger_url)
    run_once(settings, loaded, True, None, (), ())
    assert texts(telegram) == []
    run_once(settings, loaded, False, None, (), ())
    run_once(settings, loaded, False, None, (), ())
    (text,) = texts(telegram)
    assert text.startswith("convsync: vk stopped for 1 run in a row: tracker_unreachable: ")


def test_a_scheduled_run_alerts_after_it_finishes(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram
) -> None:
    loaded = load(
        tmp_path, alerts_section(telegram, "destination_failing", destination_failing={"runs": 1})
    )
    write_orders(tmp_path, RECENT)
    scheduler = SyncScheduler(loaded, ledger, SyncPipeline(loaded, ledger, sleep=lambda _: None))
    scheduler.tick()
    (text,) = texts(telegram)
    assert text.startswith("convsync: vk stopped for 1 run in a row: tracker_unreachable: ")


def test_an_error_in_alerting_is_logged_and_never_fails_the_run(
    tmp_path: Path, ledger: Ledger, ledger_url: str, telegram: FakeTelegram
) -> None:
    loaded = load(tmp_path, alerts_section(telegram))
    write_orders(tmp_path)
    behind = create(parse_url(ledger_url), read_only=False)
    with behind.engine.begin() as connection:  # the ledger's alert table is gone
        connection.execute(sa.text("DROP TABLE alert_state"))
    behind.dispose()
    pipeline = SyncPipeline(loaded, ledger, sleep=lambda _: None)
    with capture_logs() as logs, alerts_after_run(loaded, ledger, pipeline.clock):
        summary = pipeline.run(SyncOptions())
    assert summary.run_id
    failed = [e for e in logs if e["event"] == "alerts not evaluated"]
    assert len(failed) == 1 and failed[0]["log_level"] == "error"
    assert texts(telegram) == []


@pytest.mark.parametrize("when", ["raised", "interrupted"])
def test_a_run_that_raised_is_alerted_on_and_an_interrupted_one_is_not(
    tmp_path: Path, ledger: Ledger, telegram: FakeTelegram, when: str
) -> None:
    loaded = load(tmp_path, alerts_section(telegram, "backlog_age"))
    waiting(ledger)
    error = RuntimeError("a bug") if when == "raised" else KeyboardInterrupt()
    with pytest.raises(type(error)), alerts_after_run(loaded, ledger, lambda: TUESDAY_2PM):
        raise error
    assert len(texts(telegram)) == (1 if when == "raised" else 0)
