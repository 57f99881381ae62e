"""The ``csv`` source: a folder of CSV exports, each file read whole when it changes.

A file is identified by its path relative to the config folder and remembered with
its size and mtime (the processed-files manifest in ``SourceState.files``): an
unchanged file is skipped without opening it, a changed one is read again from the
top and the ledger absorbs the overlap. Files stream line by line, so memory stays
constant however large an export is.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import itertools
import os
import re
import stat
from _csv import Reader
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar
from zoneinfo import ZoneInfo

from convsync.errors import UserError
from convsync.model import RawRecord, RecordRejection
from convsync.parsing import ParseError, describe_value, parse_timestamp
from convsync.sources.base import FileMark, PulledChunk, Source, SourceState
from convsync.sources.csv_config import CsvSourceConfig

_SCAN_BLOCK = 1 << 20
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_MIN_SAMPLE = 1 << 16
_DELIMITERS = {",": ",", ";": ";", "tab": "\t"}
_QUOTED = re.compile(r'"[^"]*"')
_EXCEL_SEP_HINT = re.compile(r"sep=(.)\r?\n?")
_SHOWN_COLUMNS = 40


def detect_encoding(raw: BinaryIO) -> str:
    """UTF-8 (BOM or not) or cp1251, judged on the first bytes that are not ASCII.

    Reads ahead only until the first non-ASCII byte (a block for most exports), then
    rewinds. Cyrillic in cp1251 is practically never valid UTF-8, so one sample decides.
    """
    if raw.read(3) == codecs.BOM_UTF8:
        raw.seek(0)
        return "utf-8-sig"
    raw.seek(0)
    encoding = "utf-8"
    while block := raw.read(_SCAN_BLOCK):
        if block.isascii():
            continue
        first = _NON_ASCII.search(block)
        sample = block[first.start() if first else 0 :]
        if len(sample) < _MIN_SAMPLE:
            sample += raw.read(_MIN_SAMPLE)
        try:
            # final=False: a character cut at the end of the sample is not an error
            codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        except UnicodeDecodeError:
            encoding = "cp1251"
        break
    raw.seek(0)
    return encoding


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
            try:
                for item in self._read_file(rel, path, tz):
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
            reading = self._read_file(rel, path, self.context.timezone)
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

    def _read_file(
        self, rel: str, path: Path, tz: ZoneInfo
    ) -> Generator[RawRecord | RecordRejection, None, None]:
        try:
            raw = open(path, "rb")  # noqa: SIM115  # closed by the with below, after detection
        except OSError as exc:
            raise UserError(f"{rel}: cannot read the file: {exc.strerror}") from None
        with raw:
            encoding = self._encoding(raw)
            text = io.TextIOWrapper(raw, encoding=encoding, newline="")
            reader: Reader | None = None
            skipped = 0
            try:
                lines, skipped, delimiter = self._header_lines(text)
                if lines is None:
                    return
                reader = csv.reader(lines, delimiter=delimiter)
                header = [cell.strip() for cell in next(reader)]
                layout = self._layout(rel, header)
                yield from self._rows(reader, layout, f"{rel}:", skipped, tz)
            except UnicodeDecodeError:
                where = f" after line {skipped + reader.line_num}" if reader else ""
                raise UserError(
                    f"{rel}: the file is not valid {encoding}{where}; save it as UTF-8 "
                    f"or set sources.{self.name}.encoding"
                ) from None
            except csv.Error as exc:
                where = f":{skipped + reader.line_num}" if reader else ""
                raise UserError(
                    f"{rel}{where}: cannot read the CSV ({exc}); a quoted cell may be "
                    "missing its closing quote"
                ) from None
            except OSError as exc:
                raise UserError(f"{rel}: cannot read the file: {exc.strerror}") from None

    def _encoding(self, raw: BinaryIO) -> str:
        configured = self.config.encoding
        if configured == "auto":
            return detect_encoding(raw)
        # a BOM must not end up in the first column's name
        return "utf-8-sig" if configured == "utf-8" else configured

    def _header_lines(self, text: io.TextIOWrapper) -> tuple[Iterable[str] | None, int, str]:
        """The lines from the header on, the count of lines before it, the delimiter."""
        skipped = 0
        configured = _DELIMITERS.get(self.config.delimiter)
        while line := text.readline():
            hint = _EXCEL_SEP_HINT.fullmatch(line)
            if hint and skipped == 0:
                # Excel's own "sep=;" first line names the delimiter
                configured = configured or hint.group(1)
            elif line.strip():
                delimiter = configured or detect_delimiter(line)
                return itertools.chain((line,), text), skipped, delimiter
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
        self, reader: Reader, layout: _Layout, prefix: str, skipped: int, tz: ZoneInfo
    ) -> Iterator[RawRecord | RecordRejection]:
        """The hot loop: one ``fields`` dict per row and nothing else per row."""
        source = self.name
        width = layout.width
        id_index, time_index = layout.id_index, layout.time_index
        mapped = layout.fields
        columns = layout.columns
        last = reader.line_num
        for row in reader:
            # physical line where the row starts, even when a quoted cell spans lines
            origin = f"{prefix}{last + 1 + skipped}"
            last = reader.line_num
            if len(row) != width:
                if "".join(row).strip():
                    yield RecordRejection(
                        source, origin, None, "bad_row",
                        f"the row has {len(row)} cells, the header has {width} "
                        "(a delimiter inside an unquoted value?)",
                        record_id=(row[id_index].strip() or None) if id_index < len(row) else None,
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
