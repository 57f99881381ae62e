"""A fake Google Ads API for tests and benchmarks: real gRPC over TLS for the real
``google-ads`` client, with a fake OAuth token endpoint (see ``server``)."""

from __future__ import annotations

from tests.hold import Hold

from .destination import destination_for
from .faults import (
    Err,
    RequestFault,
    RowFaults,
    internal,
    invalid_argument,
    permission_denied,
    quota_exhausted,
    unauthenticated,
    unavailable,
)
from .server import ADJUSTMENTS, CLICKS, CUSTOMER_ID, SEARCH, Call, FakeGoogleAds, fake_google_ads

__all__ = [
    "ADJUSTMENTS",
    "CLICKS",
    "CUSTOMER_ID",
    "SEARCH",
    "Call",
    "Err",
    "FakeGoogleAds",
    "Hold",
    "RequestFault",
    "RowFaults",
    "destination_for",
    "fake_google_ads",
    "internal",
    "invalid_argument",
    "permission_denied",
    "quota_exhausted",
    "unauthenticated",
    "unavailable",
]
