"""A CSV file's physical lines as text, for ``csv.reader``: bounds, decoding, the tail.

What the ``csv`` source needs of a file before its rows are parsed, once its encoding
is known (:mod:`convsync.sources.csv_encoding` judges it on the whole file, reading it
through :func:`pieces`, and hands over a ``Decoding``):

- **bounded lines** (:func:`pieces`): a line longer than :data:`MAX_LINE` bytes is
  skipped as it streams (never held in memory) and becomes a ``field_too_large``
  :class:`Issue` of its line;
- **decoded lines**: a line that does not fit the file's encoding is not decoded into
  something else: it becomes a ``bad_encoding`` issue and its row is rejected; the rest
  of the file is read;
- **the tail**: a last line without a line break may be half-written. :class:`LineFeed`
  holds it back when told to (the file is fresh), and says so in ``held``.

The lines are produced a block (256 KiB) at a time and handed to the reader through
``itertools.chain``, so the per-line cost stays in C: the reader's hot loop only checks
:attr:`LineFeed.alert` once per row.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

#: bytes read at a time (its lines, decoded, are what the reader is handed at once;
#: larger blocks were no faster, and fell out of the CPU cache)
BLOCK: Final = 1 << 18
#: the longest line kept in memory (room for 8 cells at the csv module's field limit of
#: 131,072 characters); a longer one is skipped while it streams and its row is rejected.
#: A line being carried from one read to the next is held twice while it grows, and once
#: more decoded: a few MB at worst, whatever the file holds.
MAX_LINE: Final = 1 << 20

#: one line with its break: \r\n, \n or a lone \r — what TextIOWrapper(newline="")
#: splits on (str.splitlines also splits on \v, \f, \x1c-\x1e, \x85, \u2028, \u2029)
_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)")
#: the bytes a line (and so a piece of :func:`pieces`) ends with: \n and \r
BREAKS: Final = (10, 13)
#: no line number: sorts after every line
_NEVER: Final = 1 << 62


@dataclass(slots=True)
class LongLine:
    """A line over :data:`MAX_LINE` bytes, skipped: how big it was, its double quotes
    (their parity says whether a quoted cell stays open after it), whether a line break
    ended it (``False``: the file ends inside it)."""

    size: int
    quotes: int
    ended: bool = False


#: the letters of Russian and the other Cyrillic alphabets (cp1251's letters)
_CYRILLIC = range(0x0400, 0x0500)


def reads_as_cp1251(data: bytes | bytearray) -> bool:
    """Whether bytes that are not UTF-8 read as cp1251 text: every byte a character and
    most non-ASCII characters Cyrillic letters (not the mojibake other encodings give)."""
    try:
        text = bytes(data).decode("cp1251")
    except UnicodeDecodeError:
        return False
    beyond_ascii = [c for c in text if ord(c) > 127]
    cyrillic = sum(ord(c) in _CYRILLIC for c in beyond_ascii)
    return bool(beyond_ascii) and cyrillic * 2 > len(beyond_ascii)


@dataclass(frozen=True, slots=True)
class Decoding:
    """How a file's lines are decoded and what a line that does not fit is told."""

    codec: str  # "utf-8" or "cp1251"
    skip_bom: bool
    #: where the encoding comes from, for messages: "auto" or the configured name
    configured: str
    #: the config key, for messages: "sources.shop.encoding"
    key: str
    #: auto chose cp1251: lines that are valid UTF-8 (in these pieces) are rejected too
    utf8_pieces: frozenset[int] = frozenset()

    def bad_line(self, number: int, exc: UnicodeDecodeError) -> str:
        byte = exc.object[exc.start]
        where = f"byte 0x{byte:02X} at position {exc.start + 1}"
        if self.codec != "utf-8":
            return (
                f"line {number} has {where}, which {self.codec} has no character for "
                "(the file is damaged there)"
            )
        seems = " (it reads as cp1251)" if reads_as_cp1251(exc.object) else ""
        if self.configured == "auto":
            return (
                f"line {number} is not valid UTF-8 ({where}){seems}, while the rest of the "
                "file is UTF-8; save the file in one encoding (UTF-8)"
            )
        return (
            f"line {number} is not valid UTF-8 ({where}; {self.key} is "
            f"{self.configured}){seems}; save the file as UTF-8, or set {self.key} to its "
            "encoding"
        )

    def utf8_line(self, number: int) -> str:
        return (
            f"line {number} is UTF-8, while the rest of the file is cp1251; save the file "
            f"in one encoding (or set {self.key}: cp1251 to read the line as cp1251)"
        )


def pieces(raw: BinaryIO, size: int) -> Iterator[bytes | LongLine]:
    """The first ``size`` bytes of ``raw`` (from where it is) as runs of whole lines,
    each run ending with a line break; a :class:`LongLine` for a line over
    :data:`MAX_LINE`; and last, if the file does not end with a line break, its final
    line (the only piece that does not end with ``\n`` or ``\r``).

    Reading stops at ``size``: what was appended after the file was looked at is left
    for the next run. (A line within one read is at most :data:`BLOCK` long, which is
    less than :data:`MAX_LINE`: only a line carried over from one read to the next
    needs measuring.)
    """
    rest = b""  # the start of a line, carried to the next read
    left = size
    long: LongLine | None = None
    eat_lf = False  # a line ended with \r at the end of a read: drop a \n that follows
    while left > 0:
        data = raw.read(min(BLOCK, left))
        if not data:
            break
        left -= len(data)
        eof = left <= 0
        if eat_lf:
            eat_lf = False
            if data[:1] == b"\n":
                data = data[1:]
                if not data:
                    continue
        if rest and rest[-1] != 13:  # (a final \r ends its line: nothing to measure)
            cut = _first_break(data)
            if len(rest) + (len(data) if cut < 0 else cut) > MAX_LINE:
                long = LongLine(len(rest), rest.count(b'"'))
                rest = b""
        if long is not None:
            cut = _first_break(data)
            if cut < 0:
                long.size += len(data)
                long.quotes += data.count(b'"')
                continue
            long.size += cut
            long.quotes += data.count(b'"', 0, cut)
            long.ended = True
            yield long
            long = None
            end = cut + 1
            if data[cut] == 13:
                if end < len(data):
                    end += data[end] == 10
                elif not eof:
                    eat_lf = True
            data = data[end:]
            if not data:
                continue
        buf = rest + data if rest else data
        start = len(rest) - 1 if rest else 0  # rest holds no break but maybe a final \r
        cut = max(buf.rfind(b"\n", start), buf.rfind(b"\r", start))
        if cut == len(buf) - 1 and buf[cut] == 13 and not eof:
            # a \r at the end of what was read: its \n may be the next byte
            cut = max(buf.rfind(b"\n", start, cut), buf.rfind(b"\r", start, cut))
        if cut < 0:
            rest = buf
        else:
            yield buf[: cut + 1]
            rest = buf[cut + 1 :]
        if len(rest) > MAX_LINE:  # only when a read is longer than MAX_LINE
            if rest[-1] != 13:
                long = LongLine(len(rest), rest.count(b'"'))
                rest = b""
            elif len(rest) - 1 > MAX_LINE:  # it ended with that \r after all
                yield LongLine(len(rest) - 1, rest.count(b'"'), ended=True)
                eat_lf = True
                rest = b""
    if long is not None:
        yield long
    elif rest:
        yield rest


def _first_break(data: bytes) -> int:
    n, r = data.find(b"\n"), data.find(b"\r")
    return n if r < 0 else r if n < 0 else min(n, r)


def is_utf8(line: bytes) -> bool:
    """Whether a line holds text beyond ASCII that is valid UTF-8 (in a cp1251 file,
    a line another tool appended)."""
    if line.isascii():
        return False
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- the lines ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issue:
    """Why the row on a line cannot be read."""

    line: int
    code: str
    reason: str


#: :meth:`LineFeed.problem`'s answer for a row held back (the file ends inside it)
HELD: Final = Issue(0, "held", "")


class LineFeed:
    """The physical lines of one file as text, block by block, for ``csv.reader``.

    Iterate it once (``iter(feed)``); line numbers count from 1 like the reader's
    ``line_num`` plus the lines read before the reader was made. Its state is read by
    the row loop: ``alert`` (check :meth:`problem` for this row), ``lines``/``base``
    (the block being read), ``held`` (a line held back at the end).
    """

    __slots__ = (
        "_fresh", "_mark", "_raw", "_size", "alert", "base", "decoding", "ended", "held",
        "hold", "issues", "lines", "next_issue",
    )  # fmt: skip

    def __init__(
        self,
        raw: BinaryIO,
        size: int,
        decoding: Decoding,
        *,
        fresh: bool,
        mark: tuple[int, int],
    ) -> None:
        self._raw = raw
        self._size = size
        self._fresh = fresh
        self._mark = mark  # (size, mtime_ns) as seen before reading
        self.decoding = decoding
        #: something for the row loop: an issue ahead, or the end of the input
        self.alert = False
        self.ended = False
        #: hold back an incomplete last record (known at the end of the input)
        self.hold = False
        #: the line held back at the end, if one was
        self.held: int | None = None
        self.issues: deque[Issue] = deque()
        self.next_issue = _NEVER
        self.lines: list[str] = []
        self.base = 0

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._blocks())

    def line(self, number: int) -> str | None:
        """The text of line ``number`` if it is in the block being read."""
        index = number - self.base - 1
        return self.lines[index] if 0 <= index < len(self.lines) else None

    def problem(self, first: int, end: int) -> Issue | None:
        """Why the row on lines ``first``–``end`` cannot be read, or None. Call when
        ``alert`` is set; :data:`HELD` for a row the end of the input cut short while
        the file may still be being written."""
        if self.ended:
            # a row completed by the end of the input: a quoted cell was still open
            if self.hold:
                self.held = first
                return HELD
            return self.take(end) or Issue(
                first,
                "bad_row",
                f"the file ends inside a quoted cell of the row on line {first}: its "
                "closing quote is missing",
            )
        if self.next_issue <= end:
            return self.take(end)
        return None

    def take(self, end: int) -> Issue | None:
        """The first issue on a line up to ``end``; the others up to there are dropped."""
        found = None
        issues = self.issues
        while issues and issues[0].line <= end:
            issue = issues.popleft()
            found = found or issue
        self.next_issue = issues[0].line if issues else _NEVER
        self.alert = self.ended or bool(issues)
        return found

    def _issue(self, line: int, code: str, reason: str) -> None:
        if not self.issues:
            self.next_issue = line
        self.issues.append(Issue(line, code, reason))
        self.alert = True

    def _blocks(self) -> Iterator[list[str]]:
        decoding = self.decoding
        raw = self._raw
        size = self._size
        if decoding.skip_bom:
            raw.seek(3)
            size -= 3
        count = 0
        for index, piece in enumerate(pieces(raw, size)):
            if type(piece) is bytes:
                if piece[-1] in BREAKS:
                    lines = self._decode(piece, count, index)
                elif not piece.strip():
                    lines = [piece.decode(decoding.codec, "replace")]  # blanks: no record
                elif self._holding():
                    self.held = count + 1
                    break
                else:
                    lines = self._decode_lines(piece, count, index)  # one line
            else:
                assert isinstance(piece, LongLine)
                if not piece.ended and self._holding():
                    self.held = count + 1
                    break
                self._issue(
                    count + 1,
                    "field_too_large",
                    f"line {count + 1} is longer than {_size(MAX_LINE)}, the longest line "
                    f"read (it has {piece.size:,} bytes)",
                )
                # the stand-in keeps a quoted cell open if the line left it open
                lines = ['"\n' if piece.quotes % 2 else "\n"]
            self.base = count
            self.lines = lines
            count += len(lines)
            yield lines
        else:
            self.hold = self._holding()
        if self.held is not None:
            self.hold = True
        self.ended = True
        self.alert = True

    def _holding(self) -> bool:
        """Whether an incomplete last record is held back: the file is fresh, or it
        changed while it was read."""
        if self._fresh:
            return True
        try:
            st = os.fstat(self._raw.fileno())
        except (OSError, ValueError, AttributeError):
            return False
        return (st.st_size, st.st_mtime_ns) != self._mark

    def _decode(self, piece: bytes, base: int, index: int) -> list[str]:
        decoding = self.decoding
        try:
            text = piece.decode(decoding.codec)
        except UnicodeDecodeError:
            return self._decode_lines(piece, base, index)
        if index in decoding.utf8_pieces:
            return self._decode_lines(piece, base, index)
        lines = text.splitlines(keepends=True)
        if len(lines) != text.count("\n"):
            # a lone \r ends a line too (as in TextIOWrapper(newline="")), but \v, \f,
            # \x1c-\x1e, \x85, \u2028, \u2029 do not: they are text in a cell
            lines = _LINE.findall(text)
        return lines

    def _decode_lines(self, piece: bytes, base: int, index: int) -> list[str]:
        """The slow path, for a block holding a line that does not fit the encoding."""
        decoding = self.decoding
        codec = decoding.codec
        check_utf8 = index in decoding.utf8_pieces
        out: list[str] = []
        for i, raw_line in enumerate(piece.splitlines(keepends=True)):
            try:
                text = raw_line.decode(codec)
            except UnicodeDecodeError as exc:
                text = raw_line.decode(codec, "replace")
                self._issue(base + i + 1, "bad_encoding", decoding.bad_line(base + i + 1, exc))
            else:
                if check_utf8 and is_utf8(raw_line):
                    self._issue(base + i + 1, "bad_encoding", decoding.utf8_line(base + i + 1))
            out.append(text)
        return out


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n:,} bytes"
