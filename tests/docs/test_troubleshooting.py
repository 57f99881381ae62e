"""The troubleshooting page explains every code convsync can put on a delivery or a
rejected record (read from the source by ``tests.docs.codes``), and names no code that
no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs import codes

PAGE = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"

#: codes the page names that no literal in the source holds: made at run time from a
#: status (the Data Manager API's ``status.lower()``, VK's ``api_{period}_limit``)
MADE_AT_RUN_TIME = frozenset(
    {"failed_precondition", "invalid_argument", "api_hourly_limit", "api_daily_limit"}
)


def page_codes() -> set[str]:
    """Every `code` in backticks on the page."""
    return set(re.findall(r"`([a-z][a-z0-9_]*(?:_<status>)?)`", PAGE.read_text(encoding="utf-8")))


def table_codes() -> set[str]:
    """The codes in the first column of the page's tables headed "Code": the ones it
    explains."""
    found: set[str] = set()
    in_codes = False
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            in_codes = False
        elif line.startswith("| Code "):
            in_codes = True
        elif in_codes and line.startswith("| `"):
            found |= set(re.findall(r"`([a-z][a-z0-9_]*)`", line.split("|")[1]))
    return found


def test_every_code_in_the_source_is_on_the_page() -> None:
    found = codes.all_codes()
    missing = {code: where for code, where in found.items() if code not in page_codes()}
    assert not missing, "codes not explained on docs/troubleshooting.md:\n" + "\n".join(
        f"  {code}  ({', '.join(where[:3])})" for code, where in sorted(missing.items())
    )


def test_every_family_of_codes_is_on_the_page() -> None:
    assert set(codes.FAMILIES) <= page_codes()


def test_every_code_the_page_explains_exists() -> None:
    known = set(codes.all_codes()) | MADE_AT_RUN_TIME
    stale = sorted(table_codes() - known)
    assert not stale, f"docs/troubleshooting.md explains codes the source no longer has: {stale}"


def test_every_sink_is_still_used() -> None:
    """A sink that disappeared (renamed, say) would silently hide its codes."""
    _, met = codes.scanned()
    assert set(codes.SINKS) <= met, sorted(set(codes.SINKS) - met)


def test_the_scan_finds_codes_of_every_kind() -> None:
    found = codes.all_codes()
    for code in ("bad_time", "no_identifier", "retries_exhausted", "outside_matching_window",
                 "no_answer", "daily_quota_exhausted", "linkage_failure", "expired_event"):  # fmt: skip
        assert code in found, code
