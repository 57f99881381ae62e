"""The ``ga4_bigquery`` config: sizes, dataset names, field specs, provided fields."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from convsync.sources.ga4.config import Ga4BigQuerySourceConfig

BASE = {"type": "ga4_bigquery", "dataset": "my-project.analytics_123", "events": ["purchase"]}


def make(**extra: Any) -> Ga4BigQuerySourceConfig:
    return Ga4BigQuerySourceConfig.model_validate({**BASE, **extra})


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10GB", 10**10),
        ("500 MB", 5 * 10**8),
        ("1TiB", 2**40),
        (12345, 12345),
        ("2.5GB", 25 * 10**8),
    ],
)
def test_maximum_bytes_billed_sizes(text: object, size: int) -> None:
    assert make(maximum_bytes_billed=text).maximum_bytes_billed == size


def test_defaults() -> None:
    cfg = make()
    assert cfg.maximum_bytes_billed == 10 * 10**9 and cfg.lookback_days == 3
    assert cfg.intraday is False and cfg.table_family() == ("my-project", "analytics_123")
    assert make(dataset="analytics_9").table_family() == (None, "analytics_9")
    assert make(dataset="example.com:proj-1.analytics_9").table_family() == (
        "example.com:proj-1", "analytics_9")  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"dataset": "p.analytics_1`; DROP TABLE x"}, "is not a dataset"),
        ({"events": []}, "at least 1"),
        ({"events": ["purchase'"]}, "is not a GA4 event name"),
        ({"maximum_bytes_billed": "lots"}, "is not a size"),
        ({"fields": {"value": "ecommerce.tax_value"}}, "is not a GA4 export column"),
        ({"fields": {"x": "event_params.a b"}}, "is not a GA4 export column"),
        ({"api_endpoint": "localhost:9050"}, "http(s) URL"),
        ({"lookback_days": 40}, "less than or equal to 30"),
    ],
)
def test_bad_values_are_refused(extra: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        make(**extra)


def test_provided_fields_merge_the_defaults() -> None:
    provided = Ga4BigQuerySourceConfig.provided_fields
    assert {"event_name", "value", "currency", "gclid", "landing_url", "order_id"} <= provided({})
    fields = provided({"form_id": "event_params.form_id", "gclid": None})
    assert "form_id" in fields and "gclid" not in fields
