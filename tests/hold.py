"""A fake platform's held answer, for the tests that kill convsync mid-upload."""

from __future__ import annotations

import threading


class Hold:
    """Keeps back the fake's answer to the next upload that gets through: the fake has
    processed (and stored) it when ``accepted`` is set, and answers only after
    ``release()`` (or after 60 s, or when the fake stops)."""

    def __init__(self) -> None:
        self.accepted = threading.Event()
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()
