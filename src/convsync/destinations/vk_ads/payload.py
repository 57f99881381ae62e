"""One VK pixel offline event, as the dry-run shows it, and its pre-flight.

The uploader turns this into ``tracker?id=PIXEL;e=RG%3AVALUE/GOAL;rb_clickid=…`` by hand
(generic encoders re-encode ``;`` and ``:``, which breaks the tracker's syntax), so every
value that goes into that URL is checked here for characters that would break it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from convsync.core.errors import RowRejected
from convsync.core.model import Conversion, Identifiers
from convsync.destinations import preflight
from convsync.destinations.vk_ads.config import FORBIDDEN_GOAL_CHARS, VkAdsTarget

PLATFORM = "VK Ads"

_URL_BREAKS = (
    "such characters would break the tracker request, which carries it in its URL as it is."
)


def event_identifier(ids: Identifiers) -> tuple[str, str] | None:
    """``(parameter, value)``: ``rb_clickid`` (a click, the stronger link) else ``userid``."""
    if ids.vk_click_id:
        return "rb_clickid", ids.vk_click_id
    if ids.vk_user_id:
        return "userid", ids.vk_user_id
    return None


def build_event(
    conversion: Conversion,
    pixel_id: int,
    target: VkAdsTarget,
    now: datetime,
    *,
    max_event_age: timedelta,
) -> dict[str, Any]:
    """The pixel event for one conversion; raises RowRejected / RowDeferred."""
    preflight.require_aware(conversion.occurred_at, "conversion time")
    preflight.require_aware(now, "now")
    identifier = event_identifier(conversion.ids)
    if identifier is None:
        raise RowRejected(
            "no_identifier",
            "The conversion has no VK identifier (rb_clickid from the ad click or the pixel's "
            "userid), so VK Ads could not attribute it.",
        )
    parameter, id_value = identifier
    preflight.check_chars(
        id_value,
        label=parameter,
        code="invalid_rb_clickid" if parameter == "rb_clickid" else "invalid_vk_user_id",
        forbidden=FORBIDDEN_GOAL_CHARS,
        why=_URL_BREAKS,
    )
    if not target.goal:
        raise RowRejected("invalid_goal", "The VK pixel goal name is empty.")
    # The config validates the goal already; checked again because it is spliced into the
    # same hand-built URL.
    preflight.check_chars(
        target.goal,
        label="Goal name",
        code="invalid_goal",
        forbidden=FORBIDDEN_GOAL_CHARS,
        why=_URL_BREAKS,
    )
    value = preflight.checked_value(conversion)
    preflight.check_not_older_than(
        conversion.occurred_at,
        now,
        max_age=max_event_age,
        code="event_too_old",
        why=(
            "a VK pixel event carries no time of its own and VK Ads counts it on the day it "
            f"arrives, so this destination sends only conversions up to "
            f"{preflight.format_age(max_event_age)} old (its max_event_age)."
        ),
    )
    # Sent early, VK would count the conversion before it happened (arrival = event time).
    preflight.check_not_future(conversion.occurred_at, now, platform=PLATFORM)

    return {
        "pixel_id": pixel_id,
        "goal": target.goal,
        # The tracker's RG:VALUE needs a number; 0 means "no revenue".
        "value": preflight.json_number(value) if value is not None else 0,
        parameter: id_value,
    }
