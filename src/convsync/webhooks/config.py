"""Config of a ``webhook`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from convsync.configbase import StrictModel


class WebhookSourceConfig(StrictModel):
    """Target actions posted to ``/webhooks/<source name>``."""

    type: Literal["webhook"]
    token: SecretStr
