"""The one pinned Google Ads API version: every versioned type convsync uses is imported
here, so moving to a new version is this file (and the tests that speak it)."""

from __future__ import annotations

from google.ads.googleads.v26.errors.types.errors import (
    ErrorCode,
    GoogleAdsError,
    GoogleAdsFailure,
)
from google.ads.googleads.v26.resources.types.offline_conversion_upload_client_summary import (
    OfflineConversionError,
)
from google.ads.googleads.v26.services.services.conversion_adjustment_upload_service import (
    ConversionAdjustmentUploadServiceClient,
)
from google.ads.googleads.v26.services.services.conversion_upload_service import (
    ConversionUploadServiceClient,
)
from google.ads.googleads.v26.services.services.google_ads_service import (
    GoogleAdsServiceClient,
)
from google.ads.googleads.v26.services.types.conversion_adjustment_upload_service import (
    ConversionAdjustment,
    UploadConversionAdjustmentsRequest,
    UploadConversionAdjustmentsResponse,
)
from google.ads.googleads.v26.services.types.conversion_upload_service import (
    ClickConversion,
    UploadClickConversionsRequest,
    UploadClickConversionsResponse,
)
from google.ads.googleads.v26.services.types.google_ads_service import SearchGoogleAdsRequest

API_VERSION = "v26"

#: trailing metadata key of the failure details of a failed call
FAILURE_TRAILER = f"google.ads.googleads.{API_VERSION}.errors.googleadsfailure-bin"
#: ``Any.type_url`` of a GoogleAdsFailure inside a partial-failure status
FAILURE_TYPE_URL = f"type.googleapis.com/google.ads.googleads.{API_VERSION}.errors.GoogleAdsFailure"

__all__ = [
    "API_VERSION",
    "FAILURE_TRAILER",
    "FAILURE_TYPE_URL",
    "ClickConversion",
    "ConversionAdjustment",
    "ConversionAdjustmentUploadServiceClient",
    "ConversionUploadServiceClient",
    "ErrorCode",
    "GoogleAdsError",
    "GoogleAdsFailure",
    "GoogleAdsServiceClient",
    "OfflineConversionError",
    "SearchGoogleAdsRequest",
    "UploadClickConversionsRequest",
    "UploadClickConversionsResponse",
    "UploadConversionAdjustmentsRequest",
    "UploadConversionAdjustmentsResponse",
]
