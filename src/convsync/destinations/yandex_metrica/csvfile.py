"""The CSV file of one Metrica upload, built from the rows' payloads.

The header holds the API's column names, only those some row uses, in a fixed order
(identifiers, ``Target``, ``DateTime``, ``Price``, ``Currency``, then a call's columns);
a row without a value for a column leaves its cell empty. UTF-8, no BOM, ``\\n`` line
ends, RFC 4180 quoting (a ``Tag`` with a comma is quoted). The file is built in memory
once per batch: 100,000 rows are about 10 MB.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from convsync.destinations.yandex_metrica.config import CALL_COLUMNS
from convsync.destinations.yandex_metrica.payload import IDENTIFIER_COLUMNS

FILE_COLUMNS: tuple[str, ...] = (
    *(column for column, _ in IDENTIFIER_COLUMNS),
    "Target",
    "DateTime",
    "Price",
    "Currency",
    *CALL_COLUMNS,
)
_KNOWN = frozenset(FILE_COLUMNS)


def file_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The header: the known columns that some row uses, in file order."""
    used: set[str] = set()
    for row in rows:
        used.update(row)
    unknown = used - _KNOWN
    if unknown:
        raise ValueError(f"not a Metrica file column: {sorted(unknown)}")
    return [column for column in FILE_COLUMNS if column in used]


def build_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The file of ``rows`` (each a payload's ``row``), UTF-8 encoded."""
    columns = file_columns(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row.get(column, "") for column in columns] for row in rows)
    return buffer.getvalue().encode("utf-8")
