"""One row of a Metrica offline-conversions (or calls) CSV file, as the dry-run shows it,
and its pre-flight.

The row keeps the API's column names and their order (identifiers, then ``Target``,
``DateTime``, ``Price``, ``Currency``, then a call's columns), so the dry-run plan reads
like the file. A calls row has no ``Target`` (Metrica counts calls in the counter's own
call goals) and its payload says ``"type": "CALLS"``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from convsync.core.errors import RowRejected
from convsync.core.model import Conversion, Identifiers
from convsync.destinations import preflight
from convsync.destinations.yandex_metrica.calls import call_cells
from convsync.destinations.yandex_metrica.config import FORBIDDEN_TARGET_CHARS, MetricaTarget

PLATFORM = "Yandex.Metrica"
#: the upload type of a calls file (``offline_conversions/upload?type=CALLS``)
CALLS = "CALLS"

#: Metrica links a conversion to a visit at most 21 days before the file is processed;
#: the visit came before the conversion, so an older conversion can never match.
MATCHING_WINDOW = timedelta(days=21)

#: (CSV column, Identifiers field) in the order the row lists them
IDENTIFIER_COLUMNS = (
    ("ClientId", "metrica_client_id"),
    ("UserId", "metrica_user_id"),
    ("Yclid", "yclid"),
    ("PurchaseId", "purchase_id"),
)

#: ClientID is the ``_ym_uid`` cookie, a 64-bit unsigned number (ym:s:clientID is UInt64).
#: yclid is not specified by the reference; the ids Yandex puts in landing URLs are
#: decimal numbers of the same size, and anything else is a parsing mistake upstream.
_UINT64_TEXT = re.compile(r"[0-9]{1,20}")
_UINT64_MAX = 2**64 - 1


#: a calls file links a call by ClientId, UserId or Yclid only
CALL_IDENTIFIER_COLUMNS = IDENTIFIER_COLUMNS[:3]


def identifier_columns(ids: Identifiers, *, calls: bool = False) -> list[tuple[str, str]]:
    """``(column, value)`` for each identifier the conversion carries, in row order."""
    out: list[tuple[str, str]] = []
    for column, field in CALL_IDENTIFIER_COLUMNS if calls else IDENTIFIER_COLUMNS:
        value: str | None = getattr(ids, field)
        if value:
            out.append((column, value))
    return out


def build_row(
    conversion: Conversion, counter_id: int, target: MetricaTarget, now: datetime
) -> dict[str, Any]:
    """``{"counter_id": …, "row": {…}}`` for one conversion (a call: with ``"type":
    "CALLS"``); raises RowRejected / RowDeferred."""
    preflight.require_aware(conversion.occurred_at, "conversion time")
    preflight.require_aware(now, "now")
    calls = target.type == "calls"
    identifiers = identifier_columns(conversion.ids, calls=calls)
    if not identifiers:
        raise RowRejected(
            "no_identifier",
            "The call has no Metrica visitor identifier (ClientId, UserId or Yclid), so "
            "Metrica could not link it to a visit."
            if calls
            else "The conversion has no Metrica visitor identifier (ClientId, UserId, Yclid "
            "or PurchaseId), so Metrica could not link it to a visit.",
        )
    for column, id_value in identifiers:
        _check_identifier(column, id_value)
    if not calls:
        _check_target(target.target or "")
    value = preflight.checked_value(conversion)
    currency = preflight.checked_currency(conversion) if value is not None else None
    cells = call_cells(conversion, target) if calls else {}
    preflight.check_not_older_than(
        conversion.occurred_at,
        now,
        max_age=MATCHING_WINDOW,
        code="outside_matching_window",
        why=(
            "Yandex.Metrica links an offline conversion only to a visit within 21 days before "
            "the file is processed, and the visit came before the conversion, so it can no "
            "longer be matched."
        ),
    )
    preflight.check_not_future(conversion.occurred_at, now, platform=PLATFORM)

    row: dict[str, Any] = dict(identifiers)
    if not calls:
        row["Target"] = target.target
    # A Unix time is absolute, so the counter's time zone plays no part here.
    row["DateTime"] = int(conversion.occurred_at.timestamp())
    if value is not None:
        row["Price"] = preflight.decimal_text(value)
        if currency is not None:
            # Without it Metrica counts the price in the counter's own currency.
            row["Currency"] = currency
    row.update(cells)
    if calls:
        return {"counter_id": counter_id, "type": CALLS, "row": row}
    return {"counter_id": counter_id, "row": row}


def _check_identifier(column: str, value: str) -> None:
    if column == "ClientId" and not _is_uint64(value):
        raise RowRejected(
            "invalid_client_id",
            f"ClientId {preflight.shown(value)} is not a Metrica ClientID: it must be the "
            "number from the visitor's _ym_uid cookie (digits only, as ym(…, 'getClientID') "
            "returns it).",
        )
    if column == "Yclid" and not _is_uint64(value):
        raise RowRejected(
            "invalid_yclid",
            f"Yclid {preflight.shown(value)} is not a Yandex click id: it must be the number "
            "from the yclid parameter of the landing-page URL (digits only).",
        )
    if column in ("UserId", "PurchaseId"):
        # Free text, but one CSV cell: a line break or control character would split the
        # row or corrupt the file for every other conversion in it.
        bad = {c for c in value if not c.isprintable()}
        if bad:
            code = "invalid_user_id" if column == "UserId" else "invalid_purchase_id"
            raise RowRejected(
                code,
                f"{column} {preflight.shown(value)} contains {preflight.describe_chars(bad)}, "
                "which a line of the upload file cannot carry.",
            )


def _is_uint64(value: str) -> bool:
    return bool(_UINT64_TEXT.fullmatch(value)) and int(value) <= _UINT64_MAX


@lru_cache(maxsize=256)  # a handful of goal identifiers, checked for every row
def _check_target(target: str) -> None:
    # The config validates this already; checked again because a wrong Target fails the
    # whole file with "Check your request", not just this row.
    if not target:
        raise RowRejected("invalid_target", "The Metrica goal identifier (Target) is empty.")
    preflight.check_chars(
        target,
        label="Goal identifier",
        code="invalid_target",
        forbidden=FORBIDDEN_TARGET_CHARS,
        why=(
            f"Metrica goal identifiers cannot contain spaces or any of {FORBIDDEN_TARGET_CHARS} "
            "(use the identifier of a JavaScript-event goal, not its name)."
        ),
    )
