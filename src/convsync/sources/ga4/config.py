"""Config of the ``ga4_bigquery`` source (GA4 BigQuery export). SKELETON: the helper
building this source owns this file and replaces this placeholder."""

from __future__ import annotations

from typing import Literal

from convsync.configbase import StrictModel


class Ga4BigQuerySourceConfig(StrictModel):
    """Configured events of one GA4 property's BigQuery export."""

    type: Literal["ga4_bigquery"]
