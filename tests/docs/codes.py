"""Every code a delivery or a rejected record can carry, read from the source: what the
troubleshooting page must explain.

Three kinds of places hold the codes, and each is read here:

- the classification tables of the destinations (imported): Yandex.Metrica's error
  types, the Google Ads API's errors, the Data Manager API's reasons and statuses;
- string literals handed to the code's "sinks" — the exceptions and outcomes that carry
  a code into the ledger (``RowRejected("invalid_value", …)``, ``RecordRejection(…,
  "bad_time", …)``, ``Transition(…, "retries_exhausted", …)``, any ``code="…"``) — found
  by walking the syntax tree of ``src/convsync``;
- families named at run time (``http_<status>``, a Google error's name lower-cased),
  which the page explains as families (``FAMILIES``).

A new sink (a new exception or outcome type carrying a code) must be added to ``SINKS``;
``test_every_sink_is_still_used`` fails when one disappears, so a renamed sink cannot
silently empty the list.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import convsync

SRC = Path(convsync.__file__).parent
CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")

#: callee name → index of the positional argument that is the code
SINKS: dict[str, int] = {
    "RowRejected": 0,
    "RowDeferred": 0,
    "RowSkipped": 0,
    "DestinationUnavailable": 0,
    "PermanentError": 0,
    # RowOutcome's constructors
    "rejected": 0,
    "deferred": 0,
    "transient": 0,
    "unclear": 0,
    "delivered": 0,
    "RowOutcome": 1,
    "Transition": 2,
    # rejected source records
    "RecordRejection": 3,
    "_RecordProblem": 1,
    "_reject": 2,
    # a CSV line's problem, which becomes its row's rejection (csv_lines.py)
    "Issue": 1,
    "_issue": 1,
    # Yandex.Metrica's upload verdicts, the Google Ads API's table
    "_final": 5,
    "Rule": 1,
}
#: sinks read in source modules: only those that make rejected records (a source's
#: transient errors stop the source for the run; they never reach the ledger)
SOURCE_SINKS = frozenset({"RecordRejection", "_RecordProblem", "_reject", "Issue", "_issue"})

#: codes a sink carries that are no failure and never shown by `convsync failures`:
#: ``valid`` is a `sync --validate` verdict, ``released`` a row handed back to pending
#: when its destination stopped, ``held`` a CSV record held back until its line is
#: complete (the `record held back` log line; it is read by a later run)
NOT_SHOWN = frozenset({"valid", "released", "held"})

#: families of codes made at run time: the page must name each pattern
FAMILIES = ("http_<status>",)


@dataclass(frozen=True, slots=True)
class Found:
    code: str
    where: str  # path:line, or the table it came from


def _callee(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _literals(node: ast.AST | None) -> Iterator[str]:
    """The code literals an expression can be: a string, or either side of ``a if c
    else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if CODE.fullmatch(node.value):
            yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _literals(node.body)
        yield from _literals(node.orelse)


def _in_sources(path: Path) -> bool:
    return path.relative_to(SRC).parts[0] == "sources"


def scanned(root: Path = SRC) -> tuple[list[Found], set[str]]:
    """The codes the syntax tree holds, and the sinks that were met."""
    found: list[Found] = []
    met: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        in_sources = _in_sources(path)
        where = str(path.relative_to(root.parent))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = _callee(node)
                if name in SINKS and (not in_sources or name in SOURCE_SINKS):
                    met.add(name)
                    index = SINKS[name]
                    if index < len(node.args):
                        for code in _literals(node.args[index]):
                            found.append(Found(code, f"{where}:{node.lineno}"))
                if in_sources:
                    continue
                for keyword in node.keywords:
                    if keyword.arg == "code":
                        for code in _literals(keyword.value):
                            found.append(Found(code, f"{where}:{node.lineno}"))
                    elif keyword.arg == "blocker" and isinstance(keyword.value, ast.Tuple):
                        for code in _literals(keyword.value.elts[0]):
                            found.append(Found(code, f"{where}:{node.lineno}"))
            elif isinstance(node, ast.Assign) and not in_sources:
                for target in node.targets:
                    if isinstance(target, ast.Name) and (
                        target.id == "code" or target.id.endswith("CODE")
                    ):
                        for code in _literals(node.value):
                            found.append(Found(code, f"{where}:{node.lineno}"))
                    if isinstance(target, ast.Name) and target.id == "MISPLACED":
                        for code in _literals(node.value):
                            found.append(Found(code, f"{where}:{node.lineno}"))
    return found, met


def from_tables() -> list[Found]:
    """The codes of the destinations' classification tables."""
    from convsync.destinations.google_ads import classify as ads
    from convsync.destinations.google_ads.datamanager import classify as dm
    from convsync.destinations.google_ads.datamanager import status as dm_status
    from convsync.destinations.yandex_metrica import classify as metrica

    out = [Found(t, "yandex_metrica.classify.RULES") for t in metrica.RULES]
    for (_field, name), rule in ads.RULES.items():
        code = rule.code if name == "*" else ads.outcome_code(name, rule)
        if code:
            out.append(Found(code, "google_ads.classify.RULES"))
    out += [Found(r.lower(), "datamanager.classify.REASON_HINTS") for r in dm.REASON_HINTS]
    out += [Found(s.lower(), "datamanager.classify (transient)") for s in dm._TRANSIENT_STATUSES]
    out += [Found(r.lower(), "datamanager.status.REASON_HINTS") for r in dm_status.REASON_HINTS]
    return out


def all_codes() -> dict[str, list[str]]:
    """code → where it was found, for every code the page must explain."""
    codes: dict[str, list[str]] = {}
    found, _ = scanned()
    for item in [*found, *from_tables()]:
        if item.code not in NOT_SHOWN:
            codes.setdefault(item.code, []).append(item.where)
    return codes
