"""A fake BigQuery REST API on 127.0.0.1 serving a GA4 export dataset: table listing,
query jobs (dry run, ``maximumBytesBilled``), job status and paged query results, with
a fake OAuth token endpoint for service-account keys, injected errors and every request
recorded."""

from .server import FakeBigQuery, fake_bigquery
from .state import DATASET, PROJECT, BigQueryState, Fault, Seen

__all__ = ["DATASET", "PROJECT", "BigQueryState", "FakeBigQuery", "Fault", "Seen", "fake_bigquery"]
