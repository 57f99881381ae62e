"""The one pinned Data Manager API version: every versioned type convsync uses is imported
here, so moving to a new version is this file (and the tests that speak it)."""

from __future__ import annotations

from google.ads.datamanager_v1 import (
    AdIdentifiers,
    Consent,
    CustomVariable,
    Destination,
    DeviceInfo,
    Encoding,
    Event,
    IngestEventsRequest,
    IngestEventsResponse,
    IngestionServiceClient,
    ProductAccount,
    RequestStatusPerDestination,
    RetrieveRequestStatusRequest,
    RetrieveRequestStatusResponse,
    UserData,
    UserIdentifier,
)

API_VERSION = "v1"
#: the ErrorInfo domain of the API's own errors (quota and access errors are googleapis.com)
ERROR_DOMAIN = "datamanager.googleapis.com"

__all__ = [
    "API_VERSION",
    "ERROR_DOMAIN",
    "AdIdentifiers",
    "Consent",
    "CustomVariable",
    "Destination",
    "DeviceInfo",
    "Encoding",
    "Event",
    "IngestEventsRequest",
    "IngestEventsResponse",
    "IngestionServiceClient",
    "ProductAccount",
    "RequestStatusPerDestination",
    "RetrieveRequestStatusRequest",
    "RetrieveRequestStatusResponse",
    "UserData",
    "UserIdentifier",
]
