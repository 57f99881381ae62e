"""The ``csv`` source: a folder of CSV exports, each file read whole when it changes.

A file is identified by its path relative to the config folder and remembered with
its size and mtime (the processed-files manifest in ``SourceState.files``): an
unchanged file is skipped without opening it, a changed one is read again from the
top and the ledger absorbs the overlap. Files stream a block of lines at a time
(:mod:`convsync.sources.csv_lines`), so memory stays bounded however large an export is.

A file that may still be being written is not trusted at its end: a last record
without its line break (or with a quoted cell still open) is held back while the file
is fresh (changed less than ``settle`` ago) and the file is not marked as read, so the
next run reads it again — the record once its line is complete, or once the file has
stayed unchanged for ``settle``.
"""

from __future__ import annotations

import csv
import glob
import itertools
import os
import re
import stat
import time
from _csv import Reader
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar
from zoneinfo import ZoneInfo

from convsync.configbase import format_duration
from convsync.errors import UserError
from convsync.logging import get_logger
from convsync.model import RawRecord, RecordRejection
from convsync.parsing import ParseError, describe_value, parse_timestamp
from convsync.sources import csv_lines
from convsync.sources.base import FileMark, PulledChunk, Source, SourceState
from convsync.sources.csv_config import CsvSourceConfig
from convsync.sources.csv_lines import HELD, Issue, LineFeed, WrongEncoding

log = get_logger(__name__)

_DELIMITERS = {",": ",", ";": ";", "tab": "\t"}
_QUOTED = re.compile(r'"[^"]*"')
_EXCEL_SEP_HINT = re.compile(r"sep=(.)\r?\n?")
_SHOWN_COLUMNS = 40


def detect_encoding(raw: BinaryIO) -> str:
    """What ``encoding: auto`` makes of a file: ``utf-8-sig`` (a BOM), ``utf-8``, or
    ``cp1251`` when most of its non-ASCII text is not UTF-8. Reads the whole file (from
    the start), then rewinds."""
    size = raw.seek(0, os.SEEK_END)
    raw.seek(0)
    return csv_lines.detect(csv_lines.survey(raw, size, skip_tail=False))


def detect_delimiter(line: str) -> str:
    """The most frequent of ``,`` ``;`` tab outside quotes; ``,`` if none is there."""
    bare = _QUOTED.sub("", line)
    counts = {d: bare.count(d) for d in (";", "\t", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass(frozen=True, slots=True)
class _Layout:
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


class CsvSource(Source[CsvSourceConfig]):
    """Records from CSV exports (orders, deals, leads) in a folder."""

    type: ClassVar[str] = "csv"

    def pull(self, state: SourceState) -> Iterator[PulledChunk]:
        tz = ZoneInfo(self.config.timezone) if self.config.timezone else self.context.timezone
        limit = max(1, self.context.chunk_size)
        chunk = PulledChunk()
        size = 0
        for rel, path in self.matching_files():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # removed since the glob: nothing left to read
            except OSError as exc:
                raise UserError(f"{rel}: cannot read the file: {exc.strerror}") from None
            if not stat.S_ISREG(st.st_mode):
                continue
            # observed before reading: a write during the read makes the file look
            # changed next time, so it is read again rather than half-remembered
            mark = FileMark(rel, st.st_size, st.st_mtime_ns)
            if state.files.get(rel) == mark:
                continue
            read = _FileRead()
            try:
                for item in self._read_file(rel, path, tz, st, read):
                    if size >= limit:
                        yield chunk
                        chunk = PulledChunk()
                        size = 0
                    if isinstance(item, RawRecord):
                        chunk.records.append(item)
                    else:
                        chunk.rejections.append(item)
                    size += 1
            except UserError:
                # what was read before the bad file is good: hand it over first
                if size or chunk.files_done:
                    yield chunk
                raise
            if read.held is not None:
                # not marked as read: the next run reads the file again
                self._log_held(rel, read.held, st)
                continue
            chunk.files_done.append(mark)
        if size or chunk.files_done:
            yield chunk

    def check(self) -> tuple[list[str], list[str]]:
        """Every matching file's header against the mapped columns; no rows are read."""
        files = self.matching_files()
        if not files:
            where = self.context.base_dir / self.config.path
            return [], [f"sources.{self.name}.path: no file matches {where} yet"]
        problems: list[str] = []
        for rel, path in files:
            reading = self._read_file(rel, path, self.context.timezone, None, _FileRead())
            try:
                next(reading, None)  # the header is checked before the first row is yielded
            except UserError as exc:
                problems.append(str(exc))
            finally:
                reading.close()
        return problems, []

    def backlog_bytes(self, state: SourceState) -> int | None:
        total = 0
        for rel, path in self.matching_files():
            try:
                st = os.stat(path)
            except OSError:
                continue  # pull reports it
            if state.files.get(rel) != FileMark(rel, st.st_size, st.st_mtime_ns):
                total += st.st_size
        return total

    def matching_files(self) -> list[tuple[str, Path]]:
        """(path as shown in origins, full path) of the files the glob matches, sorted."""
        base = self.context.base_dir
        pattern = self.config.path
        if os.path.isabs(pattern):
            found = [Path(p) for p in glob.glob(pattern, recursive=True)]
        else:
            found = [base / p for p in glob.glob(pattern, root_dir=base, recursive=True)]
        named = []
        for path in found:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                rel = path.as_posix()
            named.append((rel, path))
        return sorted(named)

    def _fresh(self, st: os.stat_result) -> bool:
        """Changed less than ``settle`` ago (or in the future: the clocks disagree), so
        it may still be being written."""
        settle = self.config.settle.total_seconds()
        return settle > 0 and time.time() - st.st_mtime_ns / 1e9 < settle

    def _log_held(self, rel: str, line: int, st: os.stat_result) -> None:
        if self._fresh(st):
            ago = max(0.0, time.time() - st.st_mtime_ns / 1e9)
            why = f"the file changed {ago:.0f}s ago"
        else:
            why = "the file changed while it was read"
        log.info(
            "record held back",
            source=self.name,
            origin=f"{rel}:{line}",
            reason=f"the file may still be being written: its last record has no line "
            f"break yet (or a quoted cell is still open) and {why}; it is read once its "
            f"line is complete, or once the file has not changed for "
            f"{format_duration(self.config.settle)}",
        )

    def _read_file(
        self, rel: str, path: Path, tz: ZoneInfo, st: os.stat_result | None, read: _FileRead
    ) -> Generator[RawRecord | RecordRejection, None, None]:
        try:
            raw = open(path, "rb")  # noqa: SIM115  # closed by the with below
        except OSError as exc:
            raise UserError(f"{rel}: cannot read the file: {exc.strerror}") from None
        with raw:
            reader: Reader | None = None
            skipped = 0
            try:
                if st is None:
                    st = os.fstat(raw.fileno())
                fresh = self._fresh(st)
                decoding = csv_lines.choose(
                    raw,
                    st.st_size,
                    self.config.encoding,
                    f"sources.{self.name}.encoding",
                    skip_tail=fresh,
                )
                feed = LineFeed(
                    raw, st.st_size, decoding, fresh=fresh, mark=(st.st_size, st.st_mtime_ns)
                )
                lines, skipped, delimiter = self._header_lines(iter(feed))
                if lines is None:
                    read.held = feed.held
                    return
                reader = csv.reader(lines, delimiter=delimiter)
                header = [cell.strip() for cell in next(reader)]
                if feed.alert and (issue := feed.problem(skipped + 1, skipped + reader.line_num)):
                    if issue is HELD:
                        read.held = feed.held
                        return
                    raise UserError(f"{rel}: cannot read the header: {issue.reason}")
                layout = self._layout(rel, header)
                yield from self._rows(reader, feed, layout, rel, skipped, tz, delimiter)
                read.held = feed.held
            except WrongEncoding as exc:
                raise UserError(f"{rel}: {exc}") from None
            except csv.Error as exc:
                where = f":{skipped + reader.line_num}" if reader else ""
                raise UserError(
                    f"{rel}{where}: cannot read the CSV header ({exc}); a quoted cell may be "
                    "missing its closing quote"
                ) from None
            except OSError as exc:
                raise UserError(f"{rel}: cannot read the file: {exc.strerror}") from None

    def _header_lines(self, lines: Iterator[str]) -> tuple[Iterable[str] | None, int, str]:
        """The lines from the header on, the count of lines before it, the delimiter."""
        skipped = 0
        configured = _DELIMITERS.get(self.config.delimiter)
        for line in lines:
            hint = _EXCEL_SEP_HINT.fullmatch(line)
            if hint and skipped == 0:
                # Excel's own "sep=;" first line names the delimiter
                configured = configured or hint.group(1)
            elif line.strip():
                delimiter = configured or detect_delimiter(line)
                return itertools.chain((line,), lines), skipped, delimiter
            skipped += 1
        return None, skipped, ","

    def _layout(self, rel: str, header: list[str]) -> _Layout:
        exact: dict[str, int] = {}
        loose: dict[str, list[int]] = {}
        for i, cell in enumerate(header):
            exact.setdefault(cell, i)
            loose.setdefault(_loose(cell), []).append(i)
        prefix = f"sources.{self.name}"
        wanted = [(f"{prefix}.id", self.config.id), (f"{prefix}.time", self.config.time)]
        wanted += [(f"{prefix}.fields.{k}", col) for k, col in self.config.fields.items()]
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
            raise UserError(self._missing_message(rel, header, problems))
        id_index, time_index, *field_indexes = found
        names = list(self.config.fields)
        return _Layout(
            id_index=id_index,
            time_index=time_index,
            fields=tuple(zip(names, field_indexes, strict=True)),
            columns={name: header[i] for name, i in zip(names, field_indexes, strict=True)},
            id_column=header[id_index],
            time_column=header[time_index],
            width=len(header),
            header=tuple(header),
        )

    @staticmethod
    def _missing_message(rel: str, header: list[str], problems: list[str]) -> str:
        shown = ", ".join(repr(cell) for cell in header[:_SHOWN_COLUMNS])
        if len(header) > _SHOWN_COLUMNS:
            shown += f", … ({len(header)} in all)"
        lines = [f"{rel}: the file's header lacks configured columns:"]
        lines += [f"  - {problem}" for problem in problems]
        lines.append(f"The file has the columns: {shown or '(none)'}")
        return "\n".join(lines)

    def _rows(
        self,
        reader: Reader,
        feed: LineFeed,
        layout: _Layout,
        rel: str,
        skipped: int,
        tz: ZoneInfo,
        delimiter: str,
    ) -> Iterator[RawRecord | RecordRejection]:
        """The hot loop: one ``fields`` dict per row, and one check of ``feed.alert``
        (a line that did not decode or was too long, the end of the input)."""
        source = self.name
        prefix = f"{rel}:"
        width = layout.width
        id_index, time_index = layout.id_index, layout.time_index
        mapped = layout.fields
        columns = layout.columns
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
                        yield self._rejected(issue, row, origin, layout)
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
                        occurred_at = parse_timestamp(when, tz)
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
                yield self._unreadable(exc, feed, first, last + skipped, rel, layout, delimiter)
            else:
                return

    def _rejected(
        self, issue: Issue, row: list[str], origin: str, layout: _Layout
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
        return RecordRejection(
            self.name, origin, column, issue.code, issue.reason, record_id=record_id
        )

    def _unreadable(
        self,
        exc: csv.Error,
        feed: LineFeed,
        first: int,
        end: int,
        rel: str,
        layout: _Layout,
        delimiter: str,
    ) -> RecordRejection:
        """The row on lines ``first``–``end`` the csv module gave up on: a cell over its
        field limit (or a quote never closed that ran into it)."""
        feed.take(end)  # what the feed found on these lines is moot now
        origin = f"{rel}:{first}"
        if "field larger than field limit" not in str(exc):
            return RecordRejection(
                self.name, origin, None, "bad_row", f"the row cannot be read as CSV ({exc})"
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
        return RecordRejection(
            self.name, origin, column, "field_too_large", reason, record_id=record_id
        )


class _FileRead:
    """What reading a file leaves to say after its rows: the line of a record held
    back at its end (the file is then not marked as read)."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: int | None = None


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
