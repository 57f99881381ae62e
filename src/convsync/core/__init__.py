"""The shared vocabulary (records, conversions, deliveries, errors) and the helpers
every layer uses (identity, parsing, HTTP, logging, sealing). Imports nothing else of
convsync."""
