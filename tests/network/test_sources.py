"""Sources out of reach: each HTTP client (amoCRM, Bitrix24, HubSpot, Metrica's Logs API,
BigQuery for GA4) says, after its retries, which host could not be reached, why and the
config key that sets the address — never a library's text, never a webhook's code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from convsync.core.errors import UserError
from convsync.sources.amocrm.auth import LongLivedToken
from convsync.sources.amocrm.client import AmoClient
from convsync.sources.amocrm.config import AmoTokenAuth
from convsync.sources.base import SourceContext
from convsync.sources.bitrix24.client import Bitrix24Client
from convsync.sources.ga4.config import Ga4BigQuerySourceConfig
from convsync.sources.ga4.source import Ga4BigQuerySource
from convsync.sources.hubspot.client import HubSpotClient
from convsync.sources.metrica_logs.client import MetricaLogsClient
from tests.bigquery_fake import fake_bigquery
from tests.network.servers import FORBIDDEN, closed_port


def assert_names(text: str, *, host: str, key: str, cause: str) -> None:
    """A source's message (the line inside its own sentence) holds the host, the key and
    the cause on one line, and no library text."""
    assert "\n" not in text, text
    for wanted in (host, key, cause):
        assert wanted in text, text
    for phrase in FORBIDDEN:
        assert phrase not in text, f"{phrase!r} in: {text}"


def no_wait(_seconds: float) -> None:
    pass


def test_hubspot() -> None:
    port = closed_port()
    client = HubSpotClient(
        base_url=f"http://127.0.0.1:{port}", token="pat-test", key="sources.hub",
        search_per_second=1000, per_second=1000, sleep=no_wait, attempts=2, initial_wait=0.0,
    )  # fmt: skip
    try:
        with pytest.raises(UserError) as caught:
            client.pipelines()
    finally:
        client.close()
    assert_names(
        str(caught.value),
        host=f"HubSpot API at 127.0.0.1:{port}: connection refused",
        key="sources.hub.api_base_url",
        cause="the next run tries again",
    )


def test_amocrm_at_its_subdomain(unresolvable: Callable[[str], str]) -> None:
    host = unresolvable("shop.amocrm.ru")
    client = AmoClient(
        "crm",
        f"https://{host}",
        LongLivedToken(AmoTokenAuth.model_validate({"token": "amo-token"})),
        per_second=1000,
        sleep=no_wait,
        address_key="sources.crm.subdomain",
    )
    try:
        with pytest.raises(UserError) as caught:
            client.get("/api/v4/account")
    finally:
        client.close()
    assert_names(
        str(caught.value),
        host=f"amoCRM at {host}: host name not found (DNS)",
        key="sources.crm.subdomain",
        cause="check the network, DNS, proxy",
    )


def test_bitrix24_shows_the_portal_never_the_webhook_code() -> None:
    port = closed_port()
    client = Bitrix24Client(
        f"http://127.0.0.1:{port}/rest/1/w3bh00kc0de/",
        config_key="sources.b24.webhook_url",
        per_second=1000, burst=10, retries=1, timeout=2.0, sleep=no_wait,
    )  # fmt: skip
    try:
        with pytest.raises(UserError) as caught:
            client.call("crm.deal.list", {})
    finally:
        client.close()
    text = str(caught.value)
    assert_names(
        text,
        host=f"Bitrix24 at 127.0.0.1:{port}: connection refused",
        key="sources.b24.webhook_url",
        cause="the next run tries again",
    )
    assert "w3bh00kc0de" not in text and "/rest/" not in text


def test_metrica_logs(broken_proxy: str) -> None:
    client = MetricaLogsClient(
        base_url="https://api-metrika.yandex.net", token="y0_logs", counter_id=12345678,
        key="sources.ym", per_second=1000, sleep=no_wait, attempts=2, initial_wait=0.0,
    )  # fmt: skip
    try:
        with pytest.raises(UserError) as caught:
            client.counter()
    finally:
        client.close()
    assert_names(
        str(caught.value),
        host="Metrica API at api-metrika.yandex.net",
        key="sources.ym.api_base_url",
        cause=f"proxy {broken_proxy} refused the connection; check HTTPS_PROXY",
    )


def test_ga4_bigquery(tmp_path: Path) -> None:
    port = closed_port()
    with fake_bigquery(tmp_path) as fake:
        config = Ga4BigQuerySourceConfig.model_validate(
            fake.source_config(
                api_endpoint=f"http://127.0.0.1:{port}",
                query_timeout="1s",
                start_date=date.today() - timedelta(days=3),
            )
        )
        context = SourceContext(timezone=ZoneInfo("UTC"), base_dir=Path("."), chunk_size=100)
        source = Ga4BigQuerySource("ga4", config, context)
        source.retry_initial = 0.01
        problems, _ = source.check()
    [problem] = problems
    assert_names(
        problem,
        host=f"BigQuery API at 127.0.0.1:{port}: connection refused",
        key="sources.ga4.api_endpoint",
        cause="the next run tries again",
    )
