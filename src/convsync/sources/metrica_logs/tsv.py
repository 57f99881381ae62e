"""Reading the Logs API's TSV: lines out of a byte stream, escaped cells, arrays.

A part is tab-separated text with a header line of field names. Its cells follow
ClickHouse's TabSeparated format (the Logs API is served from ClickHouse; the escaping
is INFERRED from that format, the Logs API pages do not spell it out): a tab, a line
break or a backslash inside a value is written ``\\t``, ``\\n``, ``\\\\``; an array is
written ``[1,2]`` for numbers and ``['a','b']`` for strings and date-times, its strings
quoted with the same backslash escapes (``\\'`` for a quote). So a raw ``\\n`` always
ends a row, and a part can be split into rows while it streams.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_ESCAPES = {
    "t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "0": "\0", "\\": "\\",
    "'": "'", '"': '"', "a": "\a", "v": "\v",
}  # fmt: skip


class BadCell(ValueError):
    """A cell that is not what its field should hold."""


def lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The rows of a streamed TSV body, without their line breaks, as text."""
    rest = b""
    for chunk in chunks:
        if not chunk:
            continue
        data = rest + chunk if rest else chunk
        parts = data.split(b"\n")
        rest = parts.pop()
        for raw in parts:
            yield raw.decode("utf-8", errors="replace")
    if rest:
        yield rest.decode("utf-8", errors="replace")


def unescape(cell: str) -> str:
    """A scalar cell's text (``\\N``, ClickHouse's NULL, reads as empty)."""
    if "\\" not in cell:
        return cell
    if cell == "\\N":
        return ""
    out: list[str] = []
    i, n = 0, len(cell)
    while i < n:
        c = cell[i]
        if c == "\\" and i + 1 < n:
            nxt = cell[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def array(cell: str) -> list[str]:
    """The items of an array cell, unquoted and unescaped: ``[1,2]`` → ``["1", "2"]``,
    ``['a','b\\'c']`` → ``["a", "b'c"]``; ``[]`` and an empty cell → ``[]``."""
    text = cell.strip()
    if text in ("", "[]", "\\N"):
        return []
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        raise BadCell(f"not an array: {text[:40]!r}")
    body = text[1:-1]
    if "'" not in body:
        return [item.strip() for item in body.split(",")]
    if "\\" not in body and body[0] == "'" and body[-1] == "'" and len(body) > 1:
        # no escapes: a quote can only open or close an item ("','" separates them)
        return body[1:-1].split("','")
    return _quoted_items(body)


def _quoted_items(body: str) -> list[str]:
    items: list[str] = []
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in " ,":
            i += 1
        if i >= n:
            break
        if body[i] != "'":
            end = body.find(",", i)
            end = n if end < 0 else end
            items.append(body[i:end].strip())
            i = end
            continue
        i += 1
        out: list[str] = []
        while True:
            if i >= n:
                raise BadCell("an array string is not closed")
            c = body[i]
            if c == "\\" and i + 1 < n:
                nxt = body[i + 1]
                out.append(_ESCAPES.get(nxt, nxt))
                i += 2
            elif c == "'":
                i += 1
                break
            else:
                out.append(c)
                i += 1
        items.append("".join(out))
    return items
