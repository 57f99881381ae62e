"""Google Ads through the Data Manager API (``api: data_manager``): offline conversions as
``IngestEvents`` events, their processing results from ``RetrieveRequestStatus``.

Nothing here is imported by the config layer: the client library loads only when a
``data_manager`` destination is built.
"""
