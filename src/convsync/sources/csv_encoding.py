"""A CSV file's encoding, judged on the whole file before its rows are read.

A file with a UTF-8 BOM is UTF-8; otherwise its non-ASCII bytes are weighed
(:func:`survey`) — valid UTF-8 characters against bytes that are not UTF-8 — and the file
is UTF-8 unless most of them are not (then cp1251, Russian Excel): :func:`detect` for
``encoding: auto``, :func:`choose` for the configured encoding, which refuses one that
most of the file does not fit (:class:`WrongEncoding`). The answer is a
:class:`Decoding`, which :class:`~convsync.sources.csv_lines.LineFeed` decodes the lines
with: a line that does not fit the file's encoding is not decoded into something else,
it becomes an issue of its line (``bad_encoding``, worded here) and its row is rejected.

A file that is no text at all — a workbook saved under a ``.csv`` name, UTF-16 (Excel's
"Unicode Text"), anything with NUL bytes near its start — is refused before its bytes
are weighed, saying what it seems to be.

Kept apart from the line feed (:mod:`convsync.sources.csv_lines`): that module splits a
file into bounded lines, and this one reads the file through it to weigh its bytes.
"""

from __future__ import annotations

import codecs
import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from convsync.sources.csv_lines import BREAKS, Decoding, is_utf8, pieces, reads_as_cp1251

_BOM = codecs.BOM_UTF8
#: the start of a file looked at for signs that it is no text (git's rule: a NUL byte
#: in the first 8,000 bytes)
_SNIFFED = 8000
#: how files that are not text start, and what each is
_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another ZIP archive"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


@dataclass(slots=True)
class Survey:
    """What a file's bytes say about its encoding (BOM and ASCII bytes aside)."""

    bom: bool = False
    #: weight of valid multi-byte UTF-8: its bytes beyond one per character
    utf8: int = 0
    #: byte sequences that are not UTF-8 (a cp1251 letter is one)
    not_utf8: int = 0
    #: 0x98 bytes: the one byte cp1251 has no character for
    not_cp1251: int = 0
    #: indexes (in :func:`pieces` order) of the pieces holding valid multi-byte UTF-8
    utf8_pieces: set[int] = field(default_factory=set)


def survey(raw: BinaryIO, size: int, *, skip_tail: bool) -> Survey:
    """Weigh the whole file (``size`` bytes from the start), then rewind.

    ``skip_tail``: leave out a final line without a line break (it is held back, and a
    character cut in half at its end must not count against UTF-8).
    """
    found = Survey(bom=raw.read(3) == _BOM)
    if not found.bom:
        raw.seek(0)
    for index, piece in enumerate(pieces(raw, size - 3 if found.bom else size)):
        if type(piece) is not bytes or piece.isascii():
            continue
        if skip_tail and piece[-1] not in BREAKS:
            continue
        try:
            text = piece.decode("utf-8")
        except UnicodeDecodeError:
            text = piece.decode("utf-8", "replace")
            found.not_utf8 += text.count("\ufffd")
            found.not_cp1251 += piece.count(b"\x98")
            weight = len(piece) - len(text)
            if weight:
                found.utf8 += weight
                if _has_utf8_line(text):
                    found.utf8_pieces.add(index)
            continue
        found.utf8 += len(piece) - len(text)
        found.utf8_pieces.add(index)
    raw.seek(0)
    return found


def _has_utf8_line(text: str) -> bool:
    """Whether a block decoded with replacement characters has a line of non-ASCII
    text without one (a UTF-8 line among others; a cp1251 letter followed by ``»`` or
    ``—`` is a valid UTF-8 pair, but a cp1251 line is rarely all such pairs). Counted in
    C; splitting on more than line breaks only finds more candidates."""
    lines = text.splitlines()
    non_ascii = len(lines) - sum(map(str.isascii, lines))
    return non_ascii > sum(map(operator.contains, lines, itertools.repeat("\ufffd")))


class WrongEncoding(Exception):
    """The configured encoding does not fit the file at all, or the file is no text
    (a user error)."""


def refuse_non_text(raw: BinaryIO) -> None:
    """Raise :class:`WrongEncoding` for a file that is no text: a known binary format,
    UTF-16 or UTF-32 (NUL bytes between the letters), a NUL byte in the header line or
    many near the start; then rewind."""
    head = raw.read(_SNIFFED)
    raw.seek(0)
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            raise WrongEncoding(f"the file is not text but {kind}: export it as CSV")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _wide(head):
        raise WrongEncoding(
            'the file is UTF-16 or UTF-32 (Excel\'s "Unicode Text"), which convsync does '
            'not read: save it as "CSV UTF-8" (or as CSV, which is cp1251 in a Russian Excel)'
        )
    nul = head.find(b"\x00")
    breaks = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    header_end = min(breaks, default=len(head))
    # a stray NUL in a row rejects that row; in the header, or all over, it is no CSV
    if nul >= 0 and (nul < header_end or head.count(0) > max(8, len(head) // 100)):
        line = head.count(b"\n", 0, nul) + 1
        column = nul - (head.rfind(b"\n", 0, nul) + 1) + 1
        raise WrongEncoding(
            f"the file is not text: line {line} has a NUL byte (0x00) at position {column}, "
            "which no CSV text has; is it the right file, or damaged?"
        )


def _wide(head: bytes) -> bool:
    """Whether text is two or four bytes a character (UTF-16/32 without a byte order
    mark): most bytes of one parity are NUL, few of the other."""
    half = len(head) // 2
    odd, even = head[1::2].count(0), head[::2].count(0)
    return half > 0 and max(odd, even) > half * 0.6 and min(odd, even) < half * 0.1


def detect(found: Survey) -> str:
    """What ``encoding: auto`` makes of a surveyed file: utf-8-sig, utf-8 or cp1251."""
    if found.bom:
        return "utf-8-sig"
    if found.not_utf8 > found.utf8:
        return "cp1251"
    return "utf-8"


def choose(raw: BinaryIO, size: int, configured: str, key: str, *, skip_tail: bool) -> Decoding:
    """The decoding of one file; raises :class:`WrongEncoding` for a configured
    encoding that most of the file's text does not fit (nothing is read then: reading
    the rest and rejecting most lines would leave the file marked as read)."""
    refuse_non_text(raw)
    found = survey(raw, size, skip_tail=skip_tail)
    if configured == "auto":
        chosen = detect(found)
        if chosen == "cp1251":
            return Decoding("cp1251", False, "auto", key, frozenset(found.utf8_pieces))
        return Decoding("utf-8", found.bom, "auto", key)
    if configured in ("utf-8", "utf-8-sig"):
        if found.not_utf8 > found.utf8:
            line, text = _first_line(raw, size, found.bom, _not_utf8)
            raise WrongEncoding(
                f"the file is not valid UTF-8 ({key}: {configured}): line {line} is the "
                f"first that is not ({_first_bad_byte(text)}), and neither is most of its "
                f"non-ASCII text; {_what_it_seems(text, key)}"
            )
        return Decoding("utf-8", found.bom, configured, key)
    if found.bom or found.utf8 > found.not_utf8:
        if found.bom:
            where = "it starts with a UTF-8 byte order mark"
        else:
            where = (
                f"line {_first_line(raw, size, found.bom, is_utf8)[0]} is the first with UTF-8 text"
            )
        raise WrongEncoding(
            f"the file is UTF-8, not {configured} ({key}: {configured}; {where}): set "
            f"{key}: auto or utf-8"
        )
    if found.not_cp1251 > found.not_utf8 - found.not_cp1251:
        line, _ = _first_line(raw, size, found.bom, lambda line: b"\x98" in line)
        raise WrongEncoding(
            f"the file is not valid {configured}: line {line} has byte 0x98, which "
            f"{configured} has no character for, and so does most of its non-ASCII "
            f"text; check the file and {key}"
        )
    return Decoding(configured, False, configured, key)


def _not_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _first_bad_byte(line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"byte 0x{line[exc.start]:02X} at position {exc.start + 1}"
    return "a byte that is not UTF-8"


def _what_it_seems(line: bytes, key: str) -> str:
    if reads_as_cp1251(line):
        return f"it looks like cp1251 (Russian Excel): set {key}: cp1251 or auto"
    return f"save it as UTF-8, or set {key} to its encoding (auto, utf-8 or cp1251)"


def _first_line(
    raw: BinaryIO, size: int, bom: bool, test: Callable[[bytes], bool]
) -> tuple[int, bytes]:
    """The number and bytes of the first line ``test`` holds for (the error path only)."""
    raw.seek(3 if bom else 0)
    number = 0
    try:
        for piece in pieces(raw, size - 3 if bom else size):
            if type(piece) is not bytes:
                number += 1
                continue
            for line in piece.splitlines():
                number += 1
                if not line.isascii() and test(line):
                    return number, line
        return number, b""
    finally:
        raw.seek(0)
