"""The ``csv`` source: a folder of CSV exports, each file read whole when it changes.

A file is identified by its path relative to the config folder and remembered with
its size and mtime (the processed-files manifest in ``SourceState.files``): an
unchanged file is skipped without opening it, a changed one is read again from the
top and the ledger absorbs the overlap. Files stream a block of lines at a time
(:mod:`convsync.sources.csv_lines`), so memory stays bounded however large an export is.

This module holds the source itself — which files, which of them changed, a file held
back — and opens one file: its encoding (:mod:`convsync.sources.csv_encoding`), its
header line and delimiter. Its rows, from the header on, are read in
:mod:`convsync.sources.csv_rows`.

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
from pathlib import Path
from typing import BinaryIO, ClassVar
from zoneinfo import ZoneInfo

from convsync.core.configtypes import format_duration
from convsync.core.errors import UserError
from convsync.core.logging import get_logger
from convsync.core.model import FileMark, RawRecord, RecordRejection, SourceState
from convsync.sources import csv_encoding
from convsync.sources.base import PulledChunk, Source
from convsync.sources.csv_config import CsvSourceConfig
from convsync.sources.csv_encoding import WrongEncoding
from convsync.sources.csv_lines import HELD, LineFeed
from convsync.sources.csv_rows import match_columns, read_rows

log = get_logger(__name__)

_DELIMITERS = {",": ",", ";": ";", "tab": "\t"}
_QUOTED = re.compile(r'"[^"]*"')
_EXCEL_SEP_HINT = re.compile(r"sep=(.)\r?\n?")


def detect_encoding(raw: BinaryIO) -> str:
    """What ``encoding: auto`` makes of a file: ``utf-8-sig`` (a BOM), ``utf-8``, or
    ``cp1251`` when most of its non-ASCII text is not UTF-8. Reads the whole file (from
    the start), then rewinds."""
    size = raw.seek(0, os.SEEK_END)
    raw.seek(0)
    return csv_encoding.detect(csv_encoding.survey(raw, size, skip_tail=False))


def detect_delimiter(line: str) -> str:
    """The most frequent of ``,`` ``;`` tab outside quotes; ``,`` if none is there."""
    bare = _QUOTED.sub("", line)
    counts = {d: bare.count(d) for d in (";", "\t", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class CsvSource(Source[CsvSourceConfig]):
    """Records from CSV exports (orders, deals, leads) in a folder."""

    type: ClassVar[str] = "csv"

    def pull(self, state: SourceState) -> Iterator[PulledChunk]:
        tz = ZoneInfo(self.config.timezone) if self.config.timezone else self.context.timezone
        limit = max(1, self.context.chunk_size)
        chunk = PulledChunk()
        size = 0
        files = self.matching_files()
        if not files:
            chunk.warnings.append(self._nothing_matches())
        for rel, path in files:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                if os.path.islink(path):
                    chunk.warnings.append(self._broken_link(rel, path))
                continue  # else removed since the glob: nothing left to read
            except OSError as exc:
                raise UserError(f"{rel}: cannot read the file: {exc.strerror}") from None
            if not stat.S_ISREG(st.st_mode):
                chunk.warnings.append(self._not_a_file(rel, st))
                continue
            # observed before reading: a write during the read makes the file look
            # changed next time, so it is read again rather than half-remembered
            mark = FileMark(rel, st.st_size, st.st_mtime_ns)
            if state.files.get(rel) == mark:
                continue
            if st.st_size == 0 and not self._fresh(st):
                # remembered as read, so it is said once, not every run; written to
                # later, it is read then
                chunk.warnings.append(f"sources.{self.name}.path: {rel} is empty (0 bytes)")
                chunk.files_done.append(mark)
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
        if size or chunk.files_done or chunk.warnings:
            yield chunk

    def _nothing_matches(self) -> str:
        where = self.context.base_dir / self.config.path
        return f"sources.{self.name}.path: no file matches {where}"

    def _broken_link(self, rel: str, path: Path) -> str:
        return (
            f"sources.{self.name}.path: {rel} is a link to {os.readlink(path)}, "
            "which does not exist"
        )

    def _not_a_file(self, rel: str, st: os.stat_result) -> str:
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        return f"sources.{self.name}.path: {rel} is {what}; the glob should match CSV files"

    def check(self) -> tuple[list[str], list[str]]:
        """Every matching file's header against the mapped columns; no rows are read.
        Warnings: what a sync would warn of (no file matches, a folder, a broken link,
        an empty file)."""
        files = self.matching_files()
        if not files:
            return [], [self._nothing_matches()]
        problems: list[str] = []
        warnings: list[str] = []
        readable: list[tuple[str, Path]] = []
        for rel, path in files:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                if os.path.islink(path):
                    warnings.append(self._broken_link(rel, path))
                continue
            except OSError as exc:
                problems.append(f"{rel}: cannot read the file: {exc.strerror}")
                continue
            if not stat.S_ISREG(st.st_mode):
                warnings.append(self._not_a_file(rel, st))
            elif st.st_size == 0:
                warnings.append(f"sources.{self.name}.path: {rel} is empty (0 bytes)")
            else:
                readable.append((rel, path))
        for rel, path in readable:
            reading = self._read_file(rel, path, self.context.timezone, None, _FileRead())
            try:
                next(reading, None)  # the header is checked before the first row is yielded
            except UserError as exc:
                problems.append(str(exc))
            finally:
                reading.close()
        return problems, warnings

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
                decoding = csv_encoding.choose(
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
                layout = match_columns(rel, header, self.name, self.config)
                yield from read_rows(reader, feed, layout, self.name, rel, skipped, tz, delimiter)
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


class _FileRead:
    """What reading a file leaves to say after its rows: the line of a record held
    back at its end (the file is then not marked as read)."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: int | None = None
