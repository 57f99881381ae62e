"""What the fake Metrica counter keeps: its uploads, read from the CSV files the way the
API documents them, and how they are processed (matched to visitors and goals).

A file whose header is wrong is refused whole (``invalid_uploading``); a line that breaks
a rule is left out (``line_quantity`` < ``source_quantity``), as the API's two counts
describe. Processing is under the test's control: ``process`` with explicit counts, or
``process`` without them, which links lines by the counter's ``goals`` and ``visitors``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ID_COLUMNS = ("ClientId", "UserId", "Yclid", "PurchaseId")
CALL_COLUMNS = (
    "PhoneNumber",
    "TalkDuration",
    "HoldDuration",
    "CallMissed",
    "Tag",
    "FirstTimeCaller",
    "URL",
    "CallTrackerURL",
    "StaticCall",
)
COLUMNS = {
    "BASIC": {*ID_COLUMNS, "Target", "DateTime", "Price", "Currency"},
    "CALLS": {*ID_COLUMNS[:3], "DateTime", "Price", "Currency", *CALL_COLUMNS},
}
REQUIRED = {"BASIC": {"Target", "DateTime"}, "CALLS": {"DateTime"}}
_PRICE = re.compile(r"[0-9]+(\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_FLAG = re.compile(r"[01]")
_SECONDS = re.compile(r"[0-9]+")
_PHONE = re.compile(r"\+[0-9]{7,15}")
_CHECKS = {
    "Price": _PRICE,
    "Currency": _CURRENCY,
    "TalkDuration": _SECONDS,
    "HoldDuration": _SECONDS,
    "CallMissed": _FLAG,
    "FirstTimeCaller": _FLAG,
    "StaticCall": _FLAG,
    "PhoneNumber": _PHONE,
}


class FileRefused(Exception):
    """The whole file is refused: ``invalid_uploading`` with this message."""


@dataclass
class Upload:
    """One uploading of the counter, as stored."""

    id: int
    type: str
    comment: str | None
    columns: list[str]
    lines: list[dict[str, str]]  # every data line of the file, by column
    valid: list[dict[str, str]]  # the lines that passed the checks
    create_time: datetime
    status: str = "UPLOADED"
    counts: dict[str, int] = field(default_factory=dict)  # set when processed

    def as_json(self) -> dict[str, Any]:
        first_id = next((c for c in ID_COLUMNS if c in self.columns), "ClientId")
        body: dict[str, Any] = {
            "id": self.id,
            "create_time": self.create_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source_quantity": len(self.lines),
            "line_quantity": len(self.valid),
            "comment": self.comment,
            "type": self.type,
            "client_id_type": re.sub(r"(?<!^)(?=[A-Z])", "_", first_id).upper(),
            "status": self.status,
        }
        body.update(self.counts)
        return body

    def targets(self) -> list[str]:
        return [line.get("Target", "") for line in self.valid]


def parse_file(
    data: bytes, kind: str, now: datetime
) -> tuple[list[str], list[dict[str, str]], list[dict[str, str]]]:
    """(columns, every line, valid lines) of an uploaded file; raises FileRefused."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileRefused("The file is not in UTF-8.") from None
    if text.startswith("\ufeff"):
        raise FileRefused("The file starts with a byte order mark: the header is unreadable.")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise FileRefused("The file is empty.")
    unknown = [c for c in header if c not in COLUMNS[kind]]
    if unknown:
        raise FileRefused(f"Unknown columns for a {kind} file: {', '.join(unknown)}.")
    missing = sorted(REQUIRED[kind] - set(header))
    if missing:
        raise FileRefused(f"Required columns are missing: {', '.join(missing)}.")
    if not any(c in header for c in ID_COLUMNS):
        raise FileRefused("No visitor identifier column (ClientId, UserId, Yclid or PurchaseId).")
    if len(set(header)) != len(header):
        raise FileRefused("A column is repeated.")
    lines: list[dict[str, str]] = []
    for cells in reader:
        if len(cells) != len(header):
            raise FileRefused(f"Line {len(lines) + 2} has {len(cells)} cells, not {len(header)}.")
        lines.append(dict(zip(header, cells, strict=True)))
    if not lines:
        raise FileRefused("The file has no data lines.")
    return header, lines, [line for line in lines if _line_ok(line, now)]


def _line_ok(line: dict[str, str], now: datetime) -> bool:
    if not any(line.get(c) for c in ID_COLUMNS):
        return False
    stamp = line.get("DateTime", "")
    if not stamp.isdigit() or int(stamp) > now.timestamp():
        return False  # "DateTime can only be in the past"
    if "Target" in line and not line["Target"]:
        return False
    return all(
        not line.get(column) or pattern.fullmatch(line[column]) is not None
        for column, pattern in _CHECKS.items()
    )


def link(upload: Upload, goals: set[str] | None, visitors: set[str] | None) -> dict[str, int]:
    """Counts of processing ``upload`` against the counter's goals and known visitors."""
    goal_missing = user_missing = linked = 0
    for line in upload.valid:
        if upload.type == "BASIC" and goals is not None and line["Target"] not in goals:
            goal_missing += 1
        elif visitors is not None and not any(line.get(c) in visitors for c in ID_COLUMNS):
            user_missing += 1
        else:
            linked += 1
    return {
        "linked_quantity": linked,
        "user_not_found_quantity": user_missing,
        "goal_not_found_quantity": goal_missing,
    }


def utc_now() -> datetime:
    return datetime.now(UTC)
