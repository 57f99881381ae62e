"""A fake VK for tests and benchmarks: the pixel tracker and the VK Ads API (tokens and
one resource) on 127.0.0.1, over real HTTP (see ``server``)."""

from __future__ import annotations

from .oauth import FakeVkApi, LiveToken
from .server import FakeVk, fake_vk
from .tracker import COOKIE, GIF, FakeTracker, Hit, Hold, Reply

__all__ = [
    "COOKIE",
    "GIF",
    "FakeTracker",
    "FakeVk",
    "FakeVkApi",
    "Hit",
    "Hold",
    "LiveToken",
    "Reply",
    "fake_vk",
]
