"""Classes named by ``"module:Class"`` in the connectors' registries, imported when used
(a heavy client such as google-ads loads only where its connector is used)."""

from __future__ import annotations

import importlib
from typing import Any


def load_class(path: str) -> type[Any]:
    """The class at ``"module:Class"``."""
    module_name, _, class_name = path.partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]
