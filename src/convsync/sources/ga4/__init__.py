"""The ``ga4_bigquery`` source: GA4 events from the BigQuery export."""
