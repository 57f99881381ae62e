"""The data that flows through a sync run: records, conversions, deliveries, outcomes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

# _HOT_PATH: RawRecord, Identifiers, Conversion and PlannedDelivery are made once or more
# per source record and are treated as immutable, but are not ``frozen``: a frozen
# dataclass sets each field through object.__setattr__, which measured 1.1 µs against
# 0.2 µs per 10-field object here — about 4 µs of every record's ~40 µs budget.


#: the one set of status words of runs, summaries and exit codes: ``ok`` exits 0, every
#: other word non-zero (``running`` is only seen in ``convsync runs`` while a run is on)
OK, DEGRADED, FAILED, INTERRUPTED, RUNNING = "ok", "degraded", "failed", "interrupted", "running"
STATUSES = (OK, DEGRADED, FAILED, INTERRUPTED, RUNNING)


@dataclass(slots=True)  # see _HOT_PATH
class RawRecord:
    """One source record, its fields already renamed to canonical names.

    ``fields`` holds text as the source gave it (values are parsed by the goal rules);
    ``origin`` says where it came from (``orders.csv:17``) and ``columns`` maps a
    canonical field back to the source's own column name, so a rejection can name both.
    """

    source: str
    record_id: str
    occurred_at: datetime
    fields: Mapping[str, str]
    origin: str
    columns: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RecordRejection:
    """A source row that cannot become a conversion: where it is and why."""

    source: str
    origin: str
    column: str | None
    code: str
    reason: str
    record_id: str | None = None
    goal: str | None = None


@dataclass(slots=True)  # see _HOT_PATH
class Identifiers:
    """Everything that can tie a conversion to a click or a visitor.

    Only click ids and hashes: raw e-mails and phones never get this far.
    """

    gclid: str | None = None
    gbraid: str | None = None
    wbraid: str | None = None
    yclid: str | None = None
    metrica_client_id: str | None = None
    metrica_user_id: str | None = None
    purchase_id: str | None = None
    vk_click_id: str | None = None
    vk_user_id: str | None = None
    email_sha256: str | None = None
    phone_sha256: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The identifiers that are set, by name (the ledger's JSON form)."""
        return {n: v for n in _IDENTIFIER_ORDER if (v := getattr(self, n)) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Identifiers:
        return cls(**{k: str(v) for k, v in data.items() if k in _IDENTIFIER_NAMES})


_IDENTIFIER_ORDER = tuple(f.name for f in fields(Identifiers))
_IDENTIFIER_NAMES = frozenset(_IDENTIFIER_ORDER)


@dataclass(slots=True)  # see _HOT_PATH
class Conversion:
    """A target action mapped to a goal; ``key`` is stable across re-pulls."""

    key: str
    source: str
    record_id: str
    goal: str
    order_id: str
    occurred_at: datetime  # timezone-aware, in the offset the source meant
    value: Decimal | None
    currency: str | None
    ids: Identifiers
    consent: str | None = None  # ad_user_data consent: GRANTED | DENIED | None (unknown)
    #: record fields a destination asked to keep (custom variables, call details), by name
    attributes: Mapping[str, str] | None = None


class AdjustmentKind(enum.StrEnum):
    """How a conversion already sent changes: taken back, or its value corrected."""

    RETRACTION = "retraction"
    RESTATEMENT = "restatement"


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A change to a recorded conversion, seen by convsync at ``adjusted_at``.

    A restatement carries the new total ``value`` (and its currency); a retraction none.
    ``adjusted_at`` only grows for one conversion, as a second restatement needs a later
    adjustment time than the first.
    """

    kind: AdjustmentKind
    adjusted_at: datetime
    value: Decimal | None = None
    currency: str | None = None


class DeliveryState(enum.StrEnum):
    """States of one (conversion, destination) delivery; see DESIGN.md."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    UNCERTAIN = "uncertain"
    MATCHED = "matched"
    UNMATCHED = "unmatched"


class OutcomeKind(enum.StrEnum):
    """What a destination says happened to one row of a batch."""

    DELIVERED = "delivered"
    DEFERRED = "deferred"  # the platform says "later": retry_at is set
    REJECTED = "rejected"  # permanent, with code and message
    TRANSIENT = "transient"  # may pass: retried inside the run, then deferred
    UNCERTAIN = "uncertain"  # may or may not have arrived; never re-sent automatically
    #: may or may not have arrived, and the platform can be asked later (by the batch id):
    #: retried inside the run like TRANSIENT (the destination looks first), then the row
    #: stays ``sending`` under its batch until ``retry_at``, its next look-up — never
    #: claimed into another batch while its fate is unknown (see ``UNCLEAR``)
    UNCLEAR = "unclear"


@dataclass(frozen=True, slots=True)
class RowOutcome:
    kind: OutcomeKind
    code: str | None = None
    message: str | None = None
    retry_at: datetime | None = None
    retry_after: float | None = None  # seconds, for TRANSIENT rows

    @classmethod
    def delivered(cls, code: str | None = None, message: str | None = None) -> RowOutcome:
        return cls(OutcomeKind.DELIVERED, code, message)

    @classmethod
    def rejected(cls, code: str, message: str) -> RowOutcome:
        return cls(OutcomeKind.REJECTED, code, message)

    @classmethod
    def deferred(cls, code: str, message: str, retry_at: datetime) -> RowOutcome:
        return cls(OutcomeKind.DEFERRED, code, message, retry_at=retry_at)

    @classmethod
    def transient(cls, code: str, message: str, retry_after: float | None = None) -> RowOutcome:
        return cls(OutcomeKind.TRANSIENT, code, message, retry_after=retry_after)

    @classmethod
    def unclear(
        cls, code: str, message: str, look_again_at: datetime, retry_after: float | None = None
    ) -> RowOutcome:
        return cls(OutcomeKind.UNCLEAR, code, message, look_again_at, retry_after)


@dataclass(slots=True)
class AdjustmentCandidate:
    """A record that may change a conversion already recorded (the map step cannot know
    whether it is; the record step looks the conversion up).

    ``destinations`` are the goal's destinations that take adjustments.
    """

    conversion_key: str
    goal: str
    kind: AdjustmentKind
    destinations: tuple[str, ...]
    value: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class OutboundRow:
    """One row of a batch handed to ``Destination.send``: the ledger's delivery id, the
    conversion and the payload that ``Destination.build`` made for it."""

    delivery_id: int
    conversion: Conversion
    payload: Mapping[str, Any]
    attempts: int = 0
    adjustment: Adjustment | None = None  # set: the row adjusts the conversion
    #: the claim's batch id; for a row recovered after a crash, the batch it was sent in
    batch_id: str | None = None


@dataclass(slots=True)  # see _HOT_PATH
class PlannedDelivery:
    """A (conversion, destination) pair the record step writes to the ledger.

    ``state`` is PENDING, or SKIPPED with ``code`` (``no_identifier``) and ``message``.
    """

    conversion_key: str
    goal: str
    destination: str
    state: DeliveryState = DeliveryState.PENDING
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery row read back from the ledger with its conversion."""

    delivery_id: int
    destination: str
    goal: str
    state: DeliveryState
    attempts: int
    batch_id: str | None
    conversion: Conversion
    adjustment: Adjustment | None = None
    #: for an adjustment: the state of the conversion's own delivery to this destination,
    #: and when it last changed (delivered, matched …)
    base_state: DeliveryState | None = None
    base_changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change of one delivery, written with an event-log row.

    ``count_attempt`` adds one to the delivery's ``attempts`` (a request left for it);
    ``reset_attempts`` starts the count again (an operator re-queued it).
    ``lease_until`` moves the lease of a row that stays ``sending`` (an upload of unclear
    fate: until its next look-up); without it such a row keeps its lease.
    """

    delivery_id: int
    state: DeliveryState
    code: str | None = None
    message: str | None = None
    retry_at: datetime | None = None
    count_attempt: bool = False
    reset_attempts: bool = False
    lease_until: datetime | None = None


#: The status of an upload whose answer was lost (a timeout, a dropped connection, a 5xx
#: after the file went out): the platform may have it. Its record keeps the comment it
#: can be found by, since when and how often it was looked for (``details``), and
#: ``details["batch"]``, the claimed batch whose rows wait for it: in ``sending`` with
#: code ``UNCLEAR_CODE`` and their lease until the next look-up, so no claim can put them
#: in another upload. The recovery step looks it up when that lease runs out; found, the
#: record becomes the upload's; not there, the rows are sent again under the same batch.
#: The reconcile step never asks about it (it has no platform id).
UNCLEAR = "UNCLEAR"
#: a final record: the look-up answered and the upload was not there
NOT_STORED = "NOT_STORED"
#: the code of the rows waiting for such a look-up (and of those given up on: uncertain)
UNCLEAR_CODE = "upload_unclear"


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """An upload a platform processes after it answered (Metrica offline conversions):
    what convsync knows of it, kept in the ledger until it is ``final``.

    ``batch_id`` is the claim's batch (its deliveries carry it); ``external_id`` the
    platform's id of the upload. The reconcile step asks the destination about uploads
    that are not final at ``next_check_at`` and writes back ``status``, ``details``
    (the platform's counts), ``message`` (for a person, when something failed) and
    ``verdict``: ``matched`` or ``unmatched`` applies to every delivered row of the
    batch (``verdict_code`` and ``message`` go with ``unmatched``).
    """

    destination: str
    batch_id: str
    external_id: str
    status: str
    rows: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)
    message: str | None = None
    final: bool = False
    next_check_at: datetime | None = None
    verdict: DeliveryState | None = None
    verdict_code: str | None = None
    #: the verdict's rows: those of batch ``rows_batch`` (default ``batch_id``) and,
    #: when given, only of these goals (a batch sent as two uploads, one per kind)
    rows_batch: str | None = None
    rows_goals: tuple[str, ...] = ()
    #: when given, the verdict's rows are only these deliveries (of that batch): one
    #: claimed batch may go as several requests, an upload record each
    delivery_ids: tuple[int, ...] = ()

    def finished(
        self,
        status: str,
        details: Mapping[str, Any],
        message: str | None,
        verdict: DeliveryState | None = None,
        code: str | None = None,
    ) -> UploadRecord:
        """This upload made final: the platform's last status and counts, a message for
        a person (capitalised), and the verdict on its rows (``code`` goes with
        ``unmatched``); nothing more is asked about it."""
        return replace(
            self,
            status=status,
            details=details,
            message=message[:1].upper() + message[1:] if message else None,
            final=True,
            next_check_at=None,
            verdict=verdict,
            verdict_code=code if verdict is DeliveryState.UNMATCHED else None,
        )


def no_identifier(destination_type: str) -> tuple[str, str]:
    """Code and message of a delivery skipped for want of an identifier the platform
    can match (a click id, a visitor id, an e-mail or phone it takes)."""
    return "no_identifier", f"no identifier {destination_type} can match"


# --- what the ledger remembers of a source between runs ---------------------------


@dataclass(frozen=True, slots=True)
class FileMark:
    """What the processed-files manifest remembers of one input file."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the ledger remembers of a source between runs."""

    cursor: Mapping[str, Any] | None = None
    files: Mapping[str, FileMark] = field(default_factory=dict)


#: Platforms refuse times "in the future" by their own clock (Metrica's "DateTime in the
#: future"); a row is sent only once it is this far in the past, so a few seconds of clock
#: skew between us and them cannot bounce it.
CLOCK_SKEW_MARGIN = timedelta(minutes=1)
