"""The service's health from the ledger: the latest finished run and the backlog, in the
run's status words; 503 (``healthy: false``) when failed, and when degraded only with
``health.fail_on_degraded``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from convsync.config.models import AppConfig
from convsync.service.healthz import assess
from convsync.store import Ledger

from .factory import NOW, conversion, plan


def app(**health: Any) -> AppConfig:
    return AppConfig.model_validate(
        {
            "health": health,
            "sources": {"shop": {"type": "csv", "path": "*.csv", "id": "id", "time": "t"}},
            "destinations": {
                "google": {
                    "type": "google_ads",
                    "customer_id": "123-456-7890",
                    "auth": {"client_id": "x", "client_secret": "y", "refresh_token": "z"},
                },
                "vk": {"type": "vk_ads", "pixel_id": 42},
            },
            "goals": {"purchase": {"source": "shop", "send": {"vk": {"goal": "buy"}}}},
        }
    )


def run(
    ledger: Ledger, run_id: str, status: str, destinations: dict[str, Any], minute: int = 0
) -> None:
    at = NOW + timedelta(minutes=minute)
    ledger.start_run(run_id=run_id, trigger="schedule", started_at=at)
    ledger.finish_run(
        run_id=run_id, status=status, finished_at=at, summary={"destinations": destinations}
    )


def seed_pending(ledger: Ledger, destination: str) -> None:
    written = [conversion("1")]
    ledger.record_chunk(
        run_id="r0", source="shop", conversions=written,
        deliveries=plan(written, (destination,)), rejections=[], cursor=None,
        files_done=[], now=NOW,
    )  # fmt: skip


def test_before_the_first_run_it_is_starting_and_healthy(ledger: Ledger) -> None:
    health = assess(app(), ledger, NOW, running=True)
    assert (health["status"], health["healthy"], health["last_run"]) == ("starting", True, None)
    assert health["destinations"]["vk"] == {
        "status": "ok", "reason": None, "delivered": 0, "oldest_due_age_s": None,
    }  # fmt: skip


def test_every_destination_stopped_is_failed_with_each_reason(ledger: Ledger) -> None:
    stopped = {
        "google": {"stopped": "auth_unreachable: Google OAuth at oauth2.googleapis.com: …"},
        "vk": {"stopped": "tracker_unreachable: VK pixel tracker at 127.0.0.1:9: …"},
    }
    run(ledger, "r1", "failed", stopped)
    health = assess(app(), ledger, NOW, running=True)
    assert (health["status"], health["healthy"]) == ("failed", False)
    assert health["last_run"]["run_id"] == "r1"
    assert health["destinations"]["google"]["status"] == "failed"
    assert health["destinations"]["google"]["reason"].startswith("auth_unreachable: ")
    assert health["destinations"]["vk"]["reason"].startswith("tracker_unreachable: ")


def test_one_destination_stopped_is_degraded_healthy_unless_asked_to_fail(
    ledger: Ledger,
) -> None:
    run(ledger, "r1", "degraded", {"google": {"stopped": "auth_failed: …"}, "vk": {"delivered": 3}})
    health = assess(app(), ledger, NOW, running=True)
    assert (health["status"], health["healthy"]) == ("degraded", True)
    assert health["destinations"]["vk"]["delivered"] == 3
    strict = assess(app(fail_on_degraded=True), ledger, NOW, running=True)
    assert (strict["status"], strict["healthy"]) == ("degraded", False)


def test_a_backlog_older_than_max_pending_age_degrades_an_ok_service(ledger: Ledger) -> None:
    run(ledger, "r1", "ok", {"vk": {"delivered": 0}})
    seed_pending(ledger, "vk")
    fresh = assess(app(), ledger, NOW + timedelta(hours=5), running=True)
    assert fresh["status"] == "ok" and fresh["destinations"]["vk"]["oldest_due_age_s"] == 18_000
    old = assess(app(), ledger, NOW + timedelta(hours=7, minutes=3), running=True)
    assert (old["status"], old["healthy"]) == ("degraded", True)
    assert old["destinations"]["vk"] == {
        "status": "degraded",
        "reason": "deliveries have waited since 2026-11-20 12:00 UTC (7 h 3 min), longer than "
        "health.max_pending_age (6h)",
        "delivered": 0, "oldest_due_age_s": 25_380,
    }  # fmt: skip
    tight = assess(
        app(max_pending_age="1h", fail_on_degraded=True),
        ledger,
        NOW + timedelta(hours=2),
        running=True,
    )
    assert tight["healthy"] is False


def test_the_latest_finished_run_counts_and_interrupted_is_degraded(ledger: Ledger) -> None:
    run(ledger, "r1", "failed", {"vk": {"stopped": "tracker_unreachable: …"}})
    run(ledger, "r2", "interrupted", {}, minute=15)
    health = assess(app(), ledger, NOW + timedelta(minutes=20), running=True)
    assert health["last_run"]["run_id"] == "r2"
    assert (health["status"], health["healthy"]) == ("degraded", True)


def test_a_scheduler_stopping_is_unhealthy(ledger: Ledger) -> None:
    run(ledger, "r1", "ok", {})
    health = assess(app(), ledger, NOW, running=False)
    assert (health["status"], health["healthy"]) == ("stopping", False)


def test_a_source_silent_longer_than_max_source_silence_degrades_the_service(
    ledger: Ledger,
) -> None:
    run(ledger, "r1", "ok", {})
    written = [conversion("1")]
    ledger.record_chunk(
        run_id="r1", source="shop", conversions=written, deliveries=plan(written, ()),
        rejections=[], cursor=None, files_done=[], now=NOW,
    )  # fmt: skip
    quiet = assess(app(), ledger, NOW + timedelta(days=1), running=True)
    assert (quiet["status"], quiet["sources"]) == ("ok", {})
    silent = assess(app(), ledger, NOW + timedelta(days=2, hours=1), running=True)
    assert (silent["status"], silent["healthy"]) == ("degraded", True)
    assert silent["sources"] == {
        "shop": {
            "status": "degraded",
            "reason": "no new records for 2 d 1 h (the last recorded 2026-11-20 12:00 UTC), "
            "longer than health.max_source_silence (2d)",
        }
    }
    tight = assess(app(max_source_silence="1h"), ledger, NOW + timedelta(hours=2), running=True)
    assert "shop" in tight["sources"]
    # a source silent for weeks beyond the limit is judged no more: it is known by then
    forgotten = assess(app(), ledger, NOW + timedelta(days=31), running=True)
    assert (forgotten["status"], forgotten["sources"]) == ("ok", {})
