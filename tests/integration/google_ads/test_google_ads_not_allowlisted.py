"""A whole sync run with ``api: google_ads_api`` once Google closed offline conversion
imports to the developer token: CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE, for the whole
request or on every row, stops the destination with what to do (switch to the Data
Manager API) and leaves the conversions pending for it — none rejected, none lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from convsync.config.loader import load_config
from convsync.core.identity import conversion_key
from convsync.destinations.google_ads import GoogleAdsDestination
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncPipeline
from convsync.sync.summary import RunSummary, SyncOptions
from tests.clock import Clock
from tests.google_ads_fake import CLICKS, Err, FakeGoogleAds, RequestFault, RowFaults

CONFIG = """\
timezone: Europe/Moscow
sources:
  shop:
    type: csv
    path: orders/*.csv
    id: order_id
    time: created_at
    fields: {status: status, value: total, gclid: gclid}
destinations:
  google:
    type: google_ads
    api: google_ads_api
    customer_id: "123-456-7890"
    developer_token: "${G_DEV}"
    endpoint: "${G_ENDPOINT}"
    auth: {client_id: "${G_ID}", client_secret: "${G_SECRET}", refresh_token: "${G_REFRESH}",
           token_uri: "${G_TOKEN_URI}"}
goals:
  purchase:
    source: shop
    when: {status: paid}
    value: value
    currency: RUB
    send:
      google: {conversion_action: 555}
delivery: {max_attempts: 5, retries_in_run: 1, retry_backoff: 10m}
"""
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
ORDERS = [f"A-{i}" for i in range(3)]
NOT_ALLOWLISTED = Err("not_allowlisted_error", "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "orders").mkdir()
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    rows = "".join(f"{o},2026-11-20 10:00:00,paid,100,Cj0KCQiA-gclid-{o}\n" for o in ORDERS)
    path = tmp_path / "orders" / "a.csv"
    path.write_text("order_id,created_at,status,total,gclid\n" + rows, encoding="utf-8")
    return tmp_path


def sync(shop: Path, ledger: Ledger, fake: FakeGoogleAds, sleeps: list[float]) -> RunSummary:
    config = fake.destination_config()
    auth = config["auth"]
    env = {
        "G_DEV": config["developer_token"],
        "G_ENDPOINT": fake.endpoint,
        "G_ID": auth["client_id"],
        "G_SECRET": auth["client_secret"],
        "G_REFRESH": auth["refresh_token"],
        "G_TOKEN_URI": auth["token_uri"],
    }
    loaded = load_config(shop / "convsync.yaml", env=env)
    clock = Clock(NOW)
    pipeline = SyncPipeline(loaded, ledger, clock=clock, sleep=sleeps.append)
    google = pipeline.destinations["google"]
    assert isinstance(google, GoogleAdsDestination)
    google.clock = clock
    return pipeline.run(SyncOptions())


@pytest.mark.parametrize(
    "fault",
    [
        RequestFault(
            grpc.StatusCode.PERMISSION_DENIED,
            [NOT_ALLOWLISTED],
            "The customer is not allowlisted for this feature.",
        ),
        RequestFault(grpc.StatusCode.INVALID_ARGUMENT, [NOT_ALLOWLISTED]),
        RowFaults({i: [NOT_ALLOWLISTED] for i in range(len(ORDERS))}),
    ],
    ids=["request_permission_denied", "request_invalid_argument", "every_row"],
)
def test_not_allowlisted_stops_the_destination_saying_to_switch_and_rows_stay_pending(
    shop: Path, ledger: Ledger, fake: FakeGoogleAds, fault: RequestFault | RowFaults
) -> None:
    fake.script(fault)
    sleeps: list[float] = []
    summary = sync(shop, ledger, fake, sleeps)
    google = summary.destinations["google"]
    code, _, message = google["stopped"].partition(": ")
    assert code == "not_allowlisted"
    assert "switch destinations.google to api: data_manager" in message
    assert "delivered" not in google and "rejected" not in google
    assert google["pending"] == len(ORDERS)
    assert summary.exit_code != 0
    assert [c.status for c in fake.calls_of(CLICKS)] == [
        "OK" if isinstance(fault, RowFaults) else fault.status.name
    ]
    assert sleeps == []  # not retried: nothing would change within the run
    assert fake.state.conversions == {}
    keys = [conversion_key("shop", o, "purchase") for o in ORDERS]
    assert {str(s) for s in ledger.delivery_states(keys).values()} == {"pending"}
    assert ledger.failures(NOW - timedelta(days=1)) == []
