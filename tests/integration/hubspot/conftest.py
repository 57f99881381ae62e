"""The fake HubSpot and helpers to fill it and build sources over it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from convsync.sources.base import SourceContext
from convsync.sources.hubspot.config import HubSpotSourceConfig
from convsync.sources.hubspot.source import HubSpotSource
from tests.hubspot_fake import FakeHubSpot, HubSpotState, fake_hubspot
from tests.hubspot_fake.state import iso

# the contract's asserts are rewritten only if pytest is told before it is imported

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with fake_hubspot() as server:
        yield server


def seed(
    state: HubSpotState,
    count: int,
    *,
    start: int = 1,
    modified: datetime | None = None,
    step: timedelta = timedelta(minutes=1),
    won: bool = True,
    **props: Any,
) -> list[str]:
    """``count`` deals (ids ``start``…), each with a contact ``c<id>``; modified a day
    ago plus ``step`` per deal unless ``modified`` is given."""
    base = modified or (NOW - timedelta(days=1))
    ids = []
    for n in range(start, start + count):
        deal = str(n)
        when = base + step * (n - start)
        state.contacts[f"9{n:04d}"] = {
            "email": f"buyer{n}@example.com",
            "phone": f"+1 202 555 {n:04d}",
            "hs_google_click_id": f"Cj0KCQ-gclid-{n}",
            "hs_analytics_first_url": f"https://shop.example/land?rb_clickid=rb{n}&utm_source=x",
        }
        fields: dict[str, Any] = {
            "dealname": f"Deal {n}",
            "amount": f"{100 + n}.50",
            "deal_currency_code": "USD",
            "closedate": iso(when - timedelta(hours=1)),
            "hs_lastmodifieddate": iso(when),
            "hs_is_closed_won": "true" if won else "false",
            "dealstage": "closedwon" if won else "appointmentscheduled",
            "pipeline": "default",
        }
        state.add_deal(deal, contacts=[f"9{n:04d}"], **{**fields, **props})
        ids.append(deal)
    return ids


def build(
    fake: FakeHubSpot, chunk_size: int = 5000, name: str = "crm", **config: Any
) -> HubSpotSource:
    cfg = HubSpotSourceConfig.model_validate(fake.source_config(**config))
    context = SourceContext(timezone=ZoneInfo("UTC"), base_dir=Path("."), chunk_size=chunk_size)
    source = HubSpotSource(name, cfg, context)
    source.sleep = lambda seconds: None  # type: ignore[method-assign]  # retries wait no time
    return source


PIPELINES = [
    {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "stages": [
            {"id": "appointmentscheduled", "label": "Appointment scheduled",
             "metadata": {"isClosed": "false", "probability": "0.2"}},
            {"id": "closedwon", "label": "Closed won",
             "metadata": {"isClosed": "true", "probability": "1.0"}},
        ],
    },
    {
        "id": "7654321",
        "label": "Wholesale",
        "displayOrder": 1,
        "stages": [
            {"id": "1111", "label": "Invoice paid", "metadata": {"isClosed": "true",
                                                                "probability": "1.0"}},
        ],
    },
]  # fmt: skip
