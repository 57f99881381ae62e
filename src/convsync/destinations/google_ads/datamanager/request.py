"""``IngestEventsRequest``s from the events ``build`` made: one request for every
conversion action of the account in a batch (a request destination per action, each event
pointing at its own with ``destination_references``), at most 10 destinations and 2,000
events per request.

Events are made as the raw protobuf messages under the proto-plus types (as the Google
Ads API's rows are, see ``google_ads/upload.py``): the protobuf runtime builds them in C.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import timestamp_pb2

from convsync.destinations.google_ads.config import GoogleAdsConfig
from convsync.destinations.google_ads.datamanager.api import Event, IngestEventsRequest
from convsync.destinations.google_ads.datamanager.payload import request_consent

#: IngestEventsRequest: "At most 2000 Event resources can be sent in a single request"
MAX_EVENTS = 2000
#: "Maximum number of destinations allowed per request is 10"
MAX_DESTINATIONS = 10

_EVENT_PB: Any = Event.pb()
_REQUEST_PB: Any = IngestEventsRequest.pb()


@dataclass(frozen=True, slots=True)
class Part:
    """The rows of one request: positions in the batch, and the references they use."""

    indexes: tuple[int, ...]
    references: tuple[str, ...]


def reference(payload: Mapping[str, Any]) -> str:
    references: list[str] = payload["destination_references"]
    return references[0]


def parts(payloads: Sequence[Mapping[str, Any]], indexes: Sequence[int]) -> list[Part]:
    """``indexes`` (rows of ``payloads``) in requests of at most 10 conversion actions,
    in order of first appearance (one request in all but batches of many goals)."""
    by_reference: dict[str, list[int]] = {}
    for i in indexes:
        by_reference.setdefault(reference(payloads[i]), []).append(i)
    names = list(by_reference)
    out = []
    for start in range(0, len(names), MAX_DESTINATIONS):
        group = names[start : start + MAX_DESTINATIONS]
        rows = sorted(i for name in group for i in by_reference[name])
        out.append(Part(tuple(rows), tuple(group)))
    return out


def ingest_request(
    config: GoogleAdsConfig,
    payloads: Sequence[Mapping[str, Any]],
    part: Part,
    *,
    validate_only: bool,
) -> IngestEventsRequest:
    """The request of one part: its destinations, events in the part's order, the
    destination's consent default, hex encoding when any event carries user data."""
    events = [_event(payloads[i]) for i in part.indexes]
    fields: dict[str, Any] = {
        "destinations": [_destination(config, name) for name in part.references],
        "events": events,
        "validate_only": validate_only,
    }
    if any(payloads[i].get("user_data") for i in part.indexes):
        fields["encoding"] = "HEX"
    consent = request_consent(config)
    if consent is not None:
        fields["consent"] = consent
    request: IngestEventsRequest = IngestEventsRequest.wrap(_REQUEST_PB(**fields))
    return request


def _destination(config: GoogleAdsConfig, name: str) -> dict[str, Any]:
    destination: dict[str, Any] = {
        "reference": name,
        "operating_account": {"account_type": "GOOGLE_ADS", "account_id": config.customer_id},
        "product_destination_id": name,
    }
    if config.login_customer_id and config.login_customer_id != config.customer_id:
        destination["login_account"] = {
            "account_type": "GOOGLE_ADS",
            "account_id": config.login_customer_id,
        }
    return destination


def _event(payload: Mapping[str, Any]) -> Any:
    """The protobuf Event of a payload: its keys are the API's field names, one to one (an
    unknown key is a bug and raises ValueError); the timestamp is parsed from its text."""
    fields = dict(payload)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromJsonString(fields.pop("event_timestamp"))
    return _EVENT_PB(event_timestamp=timestamp, **fields)
