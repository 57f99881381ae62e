"""The Destination contract: what every ad platform connector provides to the pipeline."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from convsync.core.model import Adjustment, Conversion, OutboundRow, RowOutcome, UploadRecord
from convsync.core.tokens import TokenStore

ConfigT = TypeVar("ConfigT", bound=BaseModel)
TargetT = TypeVar("TargetT", bound=BaseModel)


class Destination(ABC, Generic[ConfigT, TargetT]):
    """One configured ad account.

    ``build`` is pure (no network): it turns a conversion into exactly the payload that
    would be sent and enforces the platform's rules first (pre-flight), raising
    ``RowRejected`` or ``RowDeferred``. ``send`` uploads one batch (at most
    ``max_batch`` rows, all of this account) and returns one outcome per row, in order.
    """

    type: ClassVar[str]
    max_batch: ClassVar[int]
    #: the platform can retract or restate a conversion it received (``build_adjustment``)
    supports_adjustments: ClassVar[bool] = False
    #: the platform can check a batch without recording it (``validate``)
    supports_validation: ClassVar[bool] = False
    #: batches sent at once (the next is claimed and built while one is in flight);
    #: ``send`` must then be safe to call from several threads
    max_in_flight: ClassVar[int] = 1
    #: the platform processes uploads later: the reconcile step calls ``reconcile``
    reconciles: ClassVar[bool] = False
    #: an adjustment goes at the earliest this long after its conversion's delivery here
    #: (a platform that processes uploads later must have the conversion first)
    adjustment_delay: ClassVar[timedelta] = timedelta(0)

    def __init__(self, name: str, config: ConfigT) -> None:
        self.name = name
        self.config = config
        #: set by the pipeline before ``connect``; ``None`` in a dry run
        self.tokens: TokenStore | None = None
        #: the run's stop (SIGTERM), set by the deliver step before ``connect``: a send
        #: that waits (a retry's backoff) stops waiting once it is set
        self.stop: threading.Event | None = None

    def connect(self) -> None:
        """Get ready to send in this run (build the client, check credentials).

        Called once per run before any row is claimed; raising
        ``DestinationUnavailable`` here skips the destination without touching a row.
        """

    def close(self) -> None:
        """Release what ``connect`` opened (channels, sessions); called after each run."""

    @abstractmethod
    def has_identifier(self, conversion: Conversion, target: TargetT) -> bool:
        """Whether the conversion carries an identifier this platform can match.

        A conversion without one is recorded as ``skipped: no_identifier``.
        """

    @abstractmethod
    def build(self, conversion: Conversion, target: TargetT, now: datetime) -> dict[str, Any]:
        """The payload of one row (the dry-run contract of DESIGN.md)."""

    @abstractmethod
    def send(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        """Upload one batch; one outcome per row, in the order given.

        Raises ``TransientError`` (whole batch may pass: retried), ``PermanentError``
        (whole batch rejected) or ``DestinationUnavailable`` (stop for this run). Rows that
        may have arrived although the answer was lost get an ``unclear`` outcome instead,
        on a platform that can be asked later whether they did (by the batch id): they
        are tried again in the run like transient ones (the platform asked first), then
        wait in ``sending`` for ``recover``; ``take_uploads`` then has their record.
        """

    def shown_payload(self, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        """The payload as the dry-run plan shows it: what is sent, but for personal data
        the plan must not hold (an IP address); the default shows all of it."""
        return payload

    def attribute_fields(self, target: TargetT) -> frozenset[str]:
        """Record fields a conversion must keep for this target (``Conversion.attributes``)."""
        return frozenset()

    def build_adjustment(
        self, conversion: Conversion, adjustment: Adjustment, target: TargetT, now: datetime
    ) -> dict[str, Any]:
        """The payload of one adjustment row; raises RowRejected / RowDeferred."""
        raise NotImplementedError(f"{self.type} takes no adjustments")

    def validate(self, rows: Sequence[OutboundRow]) -> list[RowOutcome]:
        """Check one batch with the platform without it being recorded there: one outcome
        per row (``delivered`` = would be accepted). Raises like ``send``."""
        raise NotImplementedError(f"{self.type} has no validate-only mode")

    def take_uploads(self) -> list[UploadRecord]:
        """Uploads the platform processes later, made by the ``send`` calls since the last
        call (the worker writes them with the rows' outcomes); platforms that answer for
        each row at once make none."""
        return []

    def reconcile(self, uploads: Sequence[UploadRecord], now: datetime) -> list[UploadRecord]:
        """Ask the platform about uploads that are not final; their updated records (an
        upload left out is asked again at its ``next_check_at``). Raises like ``send``."""
        return []

    def recover(self, rows: Sequence[OutboundRow]) -> list[RowOutcome | None]:
        """Rows left in ``sending`` by a crash, or kept there while an upload's fate was
        unclear (lease expired): what happened to them?

        ``None`` for a row means "not known to have arrived: send it again" (under the
        batch id it has). The default suits platforms with an idempotency key; platforms
        without one override this. An ``unclear`` outcome keeps the row in ``sending``
        until its ``retry_at``, when it is recovered (asked about) again.
        """
        return [None] * len(rows)

    def recall(self, uploads: Sequence[UploadRecord]) -> None:
        """The records of this destination's uploads of unclear fate (status ``UNCLEAR``)
        as the ledger holds them now: given before ``recover`` is asked about rows, so a
        platform that looks uploads up knows since when and how often it did. Platforms
        that never leave an upload unclear ignore it."""

    def upload_requests(self) -> int | None:
        """Upload requests made since ``connect``, for a platform that may need several for
        one batch (the run summary counts one per ``send`` otherwise)."""
        return None

    def describe(self) -> Mapping[str, Any]:
        """The account, for logs and reports (never a credential)."""
        return {"destination": self.name, "type": self.type}
