"""Config of the ``yandex_metrica`` destination (the way into Yandex.Direct)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, SecretStr, field_validator

from convsync.configbase import StrictModel
from convsync.destinations.preflight import bad_chars

#: characters Metrica forbids in a goal identifier (JS-event goals, "matches"/"contains")
FORBIDDEN_TARGET_CHARS = '/\\&#?="'


class MetricaConfig(StrictModel):
    """A Yandex.Metrica counter linked to the Yandex.Direct campaigns."""

    type: Literal["yandex_metrica"]
    counter_id: PositiveInt
    token: SecretStr = Field(description="OAuth token with the metrika:offline_data scope.")
    api_base_url: str = "https://api-metrika.yandex.net"


class MetricaTarget(StrictModel):
    """Which Metrica goal a convsync goal lands in."""

    target: str = Field(description="Identifier of a JavaScript-event goal (not its name).")

    @field_validator("target")
    @classmethod
    def _check_target(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("the goal identifier is empty")
        bad = sorted(bad_chars(text, FORBIDDEN_TARGET_CHARS))
        if bad:
            shown = " ".join(repr(c) for c in bad)
            raise ValueError(
                f"goal identifier {text!r} contains {shown}: Metrica goal identifiers "
                f"cannot contain spaces or any of {FORBIDDEN_TARGET_CHARS}"
            )
        return text
