"""The toy platform: a conversion with an e-mail goes out as ``{"event", "email_sha256",
"value"}``; the platform takes every row it is sent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from convsync.core.configtypes import StrictModel
from convsync.core.model import Conversion, OutboundRow, RowOutcome
from convsync.destinations.base import Destination


class ToyConfig(StrictModel):
    """``destinations.<name>`` of type ``toy``."""

    type: Literal["toy"]
    account: str


class ToyTarget(StrictModel):
    """A goal's ``send.<name>`` for a toy destination."""

    event: str


class ToyDestination(Destination[ToyConfig, ToyTarget]):
    type = "toy"
    max_batch = 100

    def has_identifier(self, conversion: Conversion, target: ToyTarget) -> bool:
        return conversion.ids.email_sha256 is not None

    def build(self, conversion: Conversion, target: ToyTarget, now: datetime) -> dict[str, Any]:
        value = None if conversion.value is None else str(conversion.value)
        return {"event": target.event, "email_sha256": conversion.ids.email_sha256, "value": value}

    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        return [RowOutcome.delivered() for _ in rows]
