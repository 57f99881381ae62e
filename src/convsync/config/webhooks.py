"""Config of the server that receives webhooks (``webhooks:``); each webhook source's own
is ``sources/webhook/config.py``."""

from __future__ import annotations

from pydantic import Field

from convsync.core.configtypes import ByteSize, StrictModel, WholeNumber


class WebhookServerConfig(StrictModel):
    """Where ``convsync run`` receives webhooks (only when a webhook source exists)."""

    host: str = Field(
        default="0.0.0.0",  # noqa: S104 (a container must listen beyond loopback)
        description="Address to listen on.",
    )
    port: WholeNumber = Field(default=8090, ge=0, le=65535, description="Port (0: any free one).")
    max_body: ByteSize = Field(
        default=65536,
        gt=0,
        description="Largest request body accepted (like 64KiB); larger ones get 413.",
    )
    threads: WholeNumber = Field(
        default=64, ge=1, le=256, description="Requests handled at once; more wait in line."
    )
