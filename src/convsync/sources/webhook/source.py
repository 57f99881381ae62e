"""The ``webhook`` source as the pipeline sees it: nothing to pull.

Its records arrive while ``convsync run`` serves ``/webhooks/<name>`` and are recorded
the moment they arrive (``recorder``); each scheduled run delivers them like any
other source's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from convsync.core.model import SourceState
from convsync.sources.base import PulledChunk, Source
from convsync.sources.webhook.config import WebhookSourceConfig


class WebhookSource(Source[WebhookSourceConfig]):
    """Records posted to ``/webhooks/<name>``; a pull finds none (they are in already)."""

    type: ClassVar[str] = "webhook"

    def check(self) -> tuple[list[str], list[str]]:
        return [], [
            f"records arrive at POST /webhooks/{self.name} while `convsync run` serves "
            "(port: webhooks.port)"
        ]

    def pull(self, state: SourceState) -> Iterator[PulledChunk]:
        return iter(())
