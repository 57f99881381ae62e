"""Writing visits as the Logs API's TSV: a header line, then one line per visit, cells
escaped as ClickHouse's TabSeparated (``\\t``, ``\\n``, ``\\\\``) and arrays as ``[1,2]`` or
``['a','b']`` (strings single-quoted, ``\\'`` inside)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import Visit


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def quoted(text: str) -> str:
    return "'" + escape(text).replace("'", "\\'") + "'"


def numbers(values: Iterable[int]) -> str:
    return "[" + ",".join(str(v) for v in values) + "]"


def strings(values: Iterable[str]) -> str:
    return "[" + ",".join(quoted(v) for v in values) + "]"


def visit_cell(name: str, visit: Visit, prefix: str) -> str:
    """One cell of ``visit`` for the field ``name`` (``<attribution>`` → ``prefix``)."""
    field = name[5:].replace("<attribution>", prefix)
    goals = visit.goals
    plain = {
        "visitID": lambda: str(visit.visit_id),
        "counterID": lambda: "0",
        "date": lambda: visit.day.isoformat(),
        "dateTime": lambda: visit.start.isoformat(sep=" "),
        "clientID": lambda: visit.client_id,
        "startURL": lambda: escape(visit.start_url),
        "goalsID": lambda: numbers(g[0] for g in goals),
        "goalsDateTime": lambda: strings(g[1] for g in goals),
        "goalsPrice": lambda: numbers(g[2] for g in goals),
        "goalsOrder": lambda: strings(g[3] for g in goals),
        "goalsCurrency": lambda: strings(g[4] for g in goals),
        "purchaseID": lambda: strings(visit.purchases),
    }
    if field in plain:
        return plain[field]()
    for model, values in visit.utm.items():
        if field.startswith(model) and field[len(model) :] in values:
            return escape(values[field[len(model) :]])
    return ""


def visits_tsv(fields: Sequence[str], visits: Sequence[Visit], prefix: str) -> bytes:
    lines = ["\t".join(fields)]
    lines += ["\t".join(visit_cell(f, v, prefix) for f in fields) for v in visits]
    return ("\n".join(lines) + "\n").encode()
