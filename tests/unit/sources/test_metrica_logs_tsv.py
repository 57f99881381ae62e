"""Reading the Logs API's TSV cells: escapes, arrays, rows split across stream chunks."""

from __future__ import annotations

import pytest

from convsync.sources.metrica_logs import tsv
from tests.metrica_logs_fake.tsv import escape, numbers, strings


@pytest.mark.parametrize(
    "text", ["plain", "tab\there", "line\nbreak\r", "back\\slash", "\\N literal", "кириллица", ""]
)
def test_a_scalar_survives_escaping(text: str) -> None:
    assert tsv.unescape(escape(text)) == text
    assert "\t" not in escape(text) and "\n" not in escape(text)


def test_null_reads_as_empty() -> None:
    assert tsv.unescape("\\N") == ""
    assert tsv.array("\\N") == []


@pytest.mark.parametrize(
    "items",
    [[], ["a"], ["a", "b"], ["it's", "comma, inside", "back\\slash", "tab\t", "[x]"],
     ["2026-11-20 10:00:00", "2026-11-20 10:05:00"], [""]],
)  # fmt: skip
def test_string_arrays_survive_quoting(items: list[str]) -> None:
    assert tsv.array(strings(items)) == items


def test_number_arrays() -> None:
    assert tsv.array(numbers([1, 22, 333])) == ["1", "22", "333"]
    assert tsv.array("[]") == []
    assert tsv.array("[ 1, 2 ]") == ["1", "2"]


@pytest.mark.parametrize("cell", ["1,2", "[1,2", "['a]"])
def test_a_broken_array_is_refused(cell: str) -> None:
    with pytest.raises(tsv.BadCell):
        tsv.array(cell)


def test_rows_are_split_on_line_breaks_across_chunks() -> None:
    body = "h1\th2\nрусский\tx\nlast\ty".encode()
    # every split point, including inside a multi-byte character
    for cut in range(1, len(body)):
        assert list(tsv.lines([body[:cut], b"", body[cut:]])) == [
            "h1\th2",
            "русский\tx",
            "last\ty",
        ]
