"""Config of the ``metrica_logs`` source (Yandex.Metrica Logs API). SKELETON: the
helper building this source owns this file and replaces this placeholder."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from convsync.configbase import StrictModel


class MetricaLogsSourceConfig(StrictModel):
    """Goals reached in the visits of one Metrica counter."""

    type: Literal["metrica_logs"]
    token: SecretStr
