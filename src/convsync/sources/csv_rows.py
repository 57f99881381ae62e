"""A CSV file's rows once its header is read: each one a record or a rejection.

The ``csv`` source (:mod:`convsync.sources.csv`) finds a file's header and opens a
``csv.reader`` on its :class:`~convsync.sources.csv_lines.LineFeed`; this module takes
it from there:

- **the layout** (:func:`match_columns`): where the configured id, time and field
  columns are in the header, matched exactly or, failing that, ignoring case and
  spacing; a column that is missing or ambiguous is a user error naming the file's
  columns;
- **the rows** (:func:`read_rows`): the hot loop, one ``fields`` dict per row and one
  check of ``feed.alert`` (a line the feed could not give as it is, the end of the
  input); a row that cannot be a record is a rejection naming its line, column and, when
  it can be read safely, its record id — including a row the csv module gave up on (a
  cell over its field limit), after which reading goes on.
"""

from __future__ import annotations

import csv
from _csv import Reader
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from convsync.core.errors import UserError
from convsync.core.model import RawRecord, RecordRejection
from convsync.core.parsing import NAIVE_TIMES, ParseError, describe_value, parse_timestamp
from convsync.sources.csv_config import CsvSourceConfig
from convsync.sources.csv_lines import HELD, Issue, LineFeed

_SHOWN_COLUMNS = 40


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the configured columns are in one file's header."""

    id_index: int
    time_index: int
    fields: tuple[tuple[str, int], ...]
    columns: dict[str, str]  # canonical → header cell; shared by every record of the file
    id_column: str
    time_column: str
    width: int
    header: tuple[str, ...]


def _loose(name: str) -> str:
    return " ".join(name.split()).casefold()


def match_columns(rel: str, header: list[str], source: str, config: CsvSourceConfig) -> Layout:
    """The layout of file ``rel`` for source ``source``; raises :class:`UserError` for a
    configured column the header lacks or has more than once (loosely)."""
    exact: dict[str, int] = {}
    loose: dict[str, list[int]] = {}
    for i, cell in enumerate(header):
        exact.setdefault(cell, i)
        loose.setdefault(_loose(cell), []).append(i)
    prefix = f"sources.{source}"
    wanted = [(f"{prefix}.id", config.id), (f"{prefix}.time", config.time)]
    wanted += [(f"{prefix}.fields.{k}", col) for k, col in config.fields.items()]
    found: list[int] = []
    problems: list[str] = []
    for key, column in wanted:
        if column in exact:
            found.append(exact[column])
            continue
        candidates = loose.get(_loose(column), [])
        if len(candidates) == 1:
            found.append(candidates[0])
        elif candidates:
            same = ", ".join(repr(header[i]) for i in candidates)
            problems.append(f"{column!r} ({key}) matches several columns: {same}")
        else:
            problems.append(f"{column!r} ({key}) is not in the header")
    if problems:
        raise UserError(_missing_message(rel, header, problems))
    id_index, time_index, *field_indexes = found
    names = list(config.fields)
    return Layout(
        id_index=id_index,
        time_index=time_index,
        fields=tuple(zip(names, field_indexes, strict=True)),
        columns={name: header[i] for name, i in zip(names, field_indexes, strict=True)},
        id_column=header[id_index],
        time_column=header[time_index],
        width=len(header),
        header=tuple(header),
    )


def _missing_message(rel: str, header: list[str], problems: list[str]) -> str:
    shown = ", ".join(repr(cell) for cell in header[:_SHOWN_COLUMNS])
    if len(header) > _SHOWN_COLUMNS:
        shown += f", … ({len(header)} in all)"
    lines = [f"{rel}: the file's header lacks configured columns:"]
    lines += [f"  - {problem}" for problem in problems]
    lines.append(f"The file has the columns: {shown or '(none)'}")
    return "\n".join(lines)


def read_rows(
    reader: Reader,
    feed: LineFeed,
    layout: Layout,
    source: str,
    rel: str,
    skipped: int,
    tz: ZoneInfo,
    delimiter: str,
) -> Iterator[RawRecord | RecordRejection]:
    """The hot loop: one ``fields`` dict per row, and one check of ``feed.alert``
    (a line that did not decode or was too long, the end of the input). Times without
    a UTC offset are counted in the pull's :data:`~convsync.core.parsing.NAIVE_TIMES`."""
    prefix = f"{rel}:"
    width = layout.width
    id_index, time_index = layout.id_index, layout.time_index
    mapped = layout.fields
    columns = layout.columns
    naive = NAIVE_TIMES.get()
    last = reader.line_num
    while True:
        try:
            for row in reader:
                # physical line where the row starts, even when a quoted cell spans lines
                first = last + 1 + skipped
                origin = f"{prefix}{first}"
                last = reader.line_num
                if feed.alert and (issue := feed.problem(first, last + skipped)):
                    if issue is HELD:
                        return
                    yield _rejected(source, issue, row, origin, layout)
                    continue
                if len(row) != width:
                    if "".join(row).strip():
                        yield RecordRejection(
                            source, origin, None, "bad_row",
                            f"the row has {len(row)} cells, the header has {width} "
                            "(a delimiter inside an unquoted value?)",
                            record_id=(row[id_index].strip() or None)
                            if id_index < len(row) else None,
                        )  # fmt: skip
                    continue
                record_id = row[id_index].strip()
                if not record_id:
                    if "".join(row).strip():
                        yield RecordRejection(
                            source, origin, layout.id_column, "missing_id",
                            f"the id column {layout.id_column!r} is empty",
                        )  # fmt: skip
                    continue
                when = row[time_index].strip()
                try:
                    occurred_at = parse_timestamp(when, tz, naive)
                except ParseError as exc:
                    problem = exc.describe(describe_value(when)) if when else "it is empty"
                    yield RecordRejection(
                        source, origin, layout.time_column, "bad_time",
                        f"column {layout.time_column!r}: {problem}", record_id=record_id,
                    )  # fmt: skip
                    continue
                fields: dict[str, str] = {}
                for name, index in mapped:
                    value = row[index].strip()
                    if value:
                        fields[name] = value
                yield RawRecord(source, record_id, occurred_at, fields, origin, columns)
        except csv.Error as exc:
            # the reader drops the rest of the line it failed on and goes on after it
            first = last + 1 + skipped
            last = reader.line_num
            yield _unreadable(source, exc, feed, first, last + skipped, rel, layout, delimiter)
        else:
            return


def _rejected(
    source: str, issue: Issue, row: list[str], origin: str, layout: Layout
) -> RecordRejection:
    """A row on a line the feed could not give as it is (see ``Issue``)."""
    column = None
    if issue.code == "bad_encoding":
        bad = next((i for i, cell in enumerate(row) if "\ufffd" in cell), None)
        if bad is not None and bad < layout.width:
            column = layout.header[bad]
    record_id = None
    if len(row) == layout.width and "\ufffd" not in row[layout.id_index]:
        record_id = row[layout.id_index].strip() or None
    return RecordRejection(source, origin, column, issue.code, issue.reason, record_id=record_id)


def _unreadable(
    source: str,
    exc: csv.Error,
    feed: LineFeed,
    first: int,
    end: int,
    rel: str,
    layout: Layout,
    delimiter: str,
) -> RecordRejection:
    """The row on lines ``first``–``end`` the csv module gave up on: a cell over its
    field limit (or a quote never closed that ran into it)."""
    feed.take(end)  # what the feed found on these lines is moot now
    origin = f"{rel}:{first}"
    if "field larger than field limit" not in str(exc):
        return RecordRejection(
            source, origin, None, "bad_row", f"the row cannot be read as CSV ({exc})"
        )
    limit = csv.field_size_limit()
    column = record_id = None
    text = feed.line(end)
    found = _oversize_cell(text, delimiter, limit) if first == end and text else None
    if found is not None and text is not None:
        index, start = found
        if index < layout.width:
            column = layout.header[index]
        if layout.id_index < index:
            before = next(csv.reader([text[:start]], delimiter=delimiter), [])
            if layout.id_index < len(before):
                record_id = before[layout.id_index].strip() or None
    if first == end:
        what = f"column {column!r}" if column else f"line {first}"
        reason = (
            f"{what}: a cell longer than {limit:,} characters, the longest read "
            f"(a cell's size is bounded to keep memory in check)"
        )
    else:
        reason = (
            f"lines {first}-{end}: a cell longer than {limit:,} characters, the "
            "longest read (or a quoted cell whose closing quote is missing); reading "
            f"goes on at line {end + 1}"
        )
    return RecordRejection(source, origin, column, "field_too_large", reason, record_id=record_id)


def _oversize_cell(line: str, delimiter: str, limit: int) -> tuple[int, int] | None:
    """(index, offset) of the first cell of one physical line longer than ``limit``
    characters (quotes as the csv module reads them, near enough to name the column)."""
    n = len(line.rstrip("\r\n"))
    index = pos = 0
    while pos <= n:
        if line.startswith('"', pos):
            q = pos + 1
            while True:
                q = line.find('"', q, n)
                if q < 0:
                    end = n  # never closed: the cell runs to the end of the line
                    break
                if line.startswith('"', q + 1):
                    q += 2
                    continue
                end = line.find(delimiter, q + 1, n)
                end = n if end < 0 else end
                break
        else:
            end = line.find(delimiter, pos, n)
            end = n if end < 0 else end
        if end - pos > limit:
            return index, pos
        index += 1
        pos = end + 1
    return None
