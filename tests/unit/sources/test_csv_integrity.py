"""The csv source and files that are not what they should be (issue 12): a file still
being written (D2), a line in another encoding than its file's (D3), a cell or a line
too large to read (D6). Through the real source; the whole-sync runs are in
tests/integration/test_csv_files.py."""

from __future__ import annotations

import csv
import io
import os
import random
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import structlog

from convsync.core.errors import UserError
from convsync.core.model import SourceState
from convsync.sources import csv_lines
from convsync.sources.csv import CsvSource, detect_encoding
from convsync.sources.csv_lines import MAX_LINE, Decoding, LineFeed, pieces

from .contract import fold_state, pull_all, records_of, rejections_of
from .test_csv import make_source

HEADER = "order_id,created_at,status,email,rb_clickid\n"
FIELDS = {"status": "status", "email": "email", "vk_click_id": "rb_clickid"}


def line(i: int, status: str = "paid", click: str | None = None) -> str:
    return f"{i},2026-11-20 10:00:00,{status},buyer{i}@example.com,{click or f'vk{i}'}\n"


def source(base: Path, **config: Any) -> CsvSource:
    return make_source(base, fields=FIELDS, **config)


def age(path: Path, seconds: float = 3600) -> None:
    """Make the file look finished: unchanged for ``seconds``."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def ids(chunks: Any) -> list[str]:
    return [r.record_id for r in records_of(chunks)]


def marked(chunks: Any) -> list[str]:
    return [m.path for c in chunks for m in c.files_done]


# --- D2: a file still being written ------------------------------------------------------


class TestStillBeingWritten:
    def test_half_written_line_is_not_sent_and_the_completed_one_is(self, tmp_path: Path) -> None:
        """The issue's scenario: an export ends in ``…,vkpartial12`` without a newline."""
        path = tmp_path / "a.csv"
        path.write_text(HEADER + line(1) + line(2, click="vkpartial12").rstrip("\n"))
        src = source(tmp_path)
        with structlog.testing.capture_logs() as logs:
            first = pull_all(src)
        assert ids(first) == ["1"]
        assert marked(first) == []  # not remembered: the next run reads it again
        (held,) = [e for e in logs if e["event"] == "record held back"]
        assert held["origin"] == "a.csv:3" and held["source"] == "shop"
        assert "1m" in held["reason"]

        path.write_text(HEADER + line(1) + line(2, click="vkpartial123456789"))
        state = fold_state(SourceState(), first)
        second = pull_all(src, state)
        assert {r.record_id: r.fields["vk_click_id"] for r in records_of(second)} == {
            "1": "vk1",
            "2": "vkpartial123456789",
        }
        assert marked(second) == ["a.csv"]
        assert pull_all(src, fold_state(state, second)) == []

    def test_a_vk_click_id_is_never_seen_cut_across_the_writes(self, tmp_path: Path) -> None:
        """Every prefix of the last line, as a writer flushing mid-line leaves it."""
        path = tmp_path / "a.csv"
        full = line(2, click="vkpartial123456789")
        src = source(tmp_path)
        state = SourceState()
        seen: list[str] = []
        for cut in range(1, len(full) + 1):
            path.write_text(HEADER + line(1) + full[:cut])
            chunks = pull_all(src, state)
            state = fold_state(state, chunks)
            seen += [r.fields["vk_click_id"] for r in records_of(chunks) if r.record_id == "2"]
        assert seen == ["vkpartial123456789"]

    def test_last_line_without_newline_is_read_once_the_file_settles(self, tmp_path: Path) -> None:
        """Many exporters omit the final newline: the record is not lost."""
        path = tmp_path / "a.csv"
        path.write_text(HEADER + line(1) + line(2).rstrip("\n"))
        src = source(tmp_path)
        first = pull_all(src)
        assert (ids(first), marked(first)) == (["1"], [])
        age(path, 61)  # the same bytes, unchanged for longer than settle (1m)
        state = fold_state(SourceState(), first)
        second = pull_all(src, state)
        assert (ids(second), marked(second)) == (["1", "2"], ["a.csv"])
        assert pull_all(src, fold_state(state, second)) == []
        # every record came, the held one once
        assert Counter(ids(first + second)) == {"1": 2, "2": 1}  # "1" again: the ledger dedups

    def test_a_finished_file_without_final_newline_is_read_in_one_go(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        path.write_text(HEADER + line(1) + line(2).rstrip("\n"))
        age(path)
        chunks = pull_all(source(tmp_path))
        assert (ids(chunks), marked(chunks)) == (["1", "2"], ["a.csv"])
        assert records_of(chunks)[1].fields["vk_click_id"] == "vk2"

    def test_settle_zero_reads_the_last_line_at_once(self, tmp_path: Path) -> None:
        (tmp_path / "a.csv").write_text(HEADER + line(1) + line(2).rstrip("\n"))
        chunks = pull_all(source(tmp_path, settle=0))
        assert (ids(chunks), marked(chunks)) == (["1", "2"], ["a.csv"])

    def test_settle_is_configurable(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        path.write_text(HEADER + line(1) + line(2).rstrip("\n"))
        age(path, 120)
        assert ids(pull_all(source(tmp_path, settle="5m"))) == ["1"]
        assert ids(pull_all(source(tmp_path, settle="1m"))) == ["1", "2"]

    def test_a_modification_time_in_the_future_counts_as_fresh(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        path.write_text(HEADER + line(1) + line(2).rstrip("\n"))
        age(path, -600)  # the writer's clock is ahead
        assert ids(pull_all(source(tmp_path))) == ["1"]

    def test_a_quoted_cell_still_open_at_the_end_is_held_back(self, tmp_path: Path) -> None:
        """A newline inside a quoted cell does not end the record."""
        path = tmp_path / "a.csv"
        header = "order_id,created_at,status,comment\n"
        path.write_text(header + '1,2026-11-20 10:00,paid,ok\n2,2026-11-20 10:00,paid,"first\n')
        src = make_source(tmp_path, fields={"status": "status", "comment": "comment"})
        first = pull_all(src)
        assert (ids(first), marked(first), rejections_of(first)) == (["1"], [], [])

        path.write_text(
            header + '1,2026-11-20 10:00,paid,ok\n2,2026-11-20 10:00,paid,"first\nsecond"\n'
        )
        second = pull_all(src, fold_state(SourceState(), first))
        assert records_of(second)[1].fields["comment"] == "first\nsecond"
        assert marked(second) == ["a.csv"]

    def test_an_open_quote_in_a_finished_file_is_a_bad_row(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        path.write_text(HEADER + line(1) + '2,2026-11-20 10:00,paid,"x@y.z,vk2\n')
        age(path)
        chunks = pull_all(source(tmp_path))
        assert (ids(chunks), marked(chunks)) == (["1"], ["a.csv"])
        (rejection,) = rejections_of(chunks)
        assert (rejection.origin, rejection.code) == ("a.csv:3", "bad_row")
        assert "closing quote is missing" in rejection.reason

    def test_a_header_still_being_written_is_not_an_error(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        path.write_text("order_id,created_at,sta")  # the columns are not all there yet
        chunks = pull_all(source(tmp_path))
        assert chunks == []
        path.write_text(HEADER)
        assert marked(pull_all(source(tmp_path))) == ["a.csv"]

    def test_blank_tail_is_no_record_to_wait_for(self, tmp_path: Path) -> None:
        (tmp_path / "a.csv").write_text(HEADER + line(1) + "   ")
        chunks = pull_all(source(tmp_path))
        assert (ids(chunks), marked(chunks)) == (["1"], ["a.csv"])

    def test_crlf_and_lone_cr_endings_are_line_breaks(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        path.write_bytes((HEADER + line(1) + line(2)).replace("\n", "\r").encode())
        chunks = pull_all(source(tmp_path))
        assert (ids(chunks), marked(chunks)) == (["1", "2"], ["a.csv"])
        assert [r.origin for r in records_of(chunks)] == ["a.csv:2", "a.csv:3"]
        path.write_bytes((HEADER + line(1) + line(2)).replace("\n", "\r\n").encode())
        assert ids(pull_all(source(tmp_path))) == ["1", "2"]

    def test_only_what_was_there_when_the_file_was_looked_at_is_read(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        path.write_text(HEADER + line(1))
        st = path.stat()
        with path.open("a") as f:
            f.write(line(2))  # appended after the stat
        age(path)
        src = source(tmp_path)
        read = _file_read()
        got = list(src._read_file("a.csv", path, src.context.timezone, st, read))
        assert [getattr(r, "record_id", None) for r in got] == ["1"]

    def test_a_file_changed_while_read_holds_its_tail(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        data = (HEADER + line(1) + line(2).rstrip("\n")).encode()
        path.write_bytes(data)
        age(path)
        st = path.stat()
        decoding = Decoding("utf-8", False, "auto", "sources.shop.encoding")
        with path.open("rb") as raw:
            # what the stat said no longer holds: the file was rewritten meanwhile
            feed = LineFeed(raw, len(data), decoding, fresh=False, mark=(st.st_size, 0))
            assert list(feed) == [HEADER, line(1)]
            assert feed.held == 3
        with path.open("rb") as raw:
            feed = LineFeed(
                raw, len(data), decoding, fresh=False, mark=(st.st_size, st.st_mtime_ns)
            )
            assert list(feed)[-1] == line(2).rstrip("\n")
            assert feed.held is None

    def test_a_cut_short_record_is_held_even_with_a_bad_line(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        header = "order_id,created_at,status,comment\n"
        data = header.encode() + '1,2026-11-20 10:00,paid,"раз\n'.encode() + "два".encode("cp1251")
        path.write_bytes(data)
        src = make_source(tmp_path, fields={"status": "status", "comment": "comment"})
        assert pull_all(src) == []  # held: no rejection recorded for a record in progress
        age(path)
        (rejection,) = rejections_of(pull_all(src))
        assert (rejection.origin, rejection.code) == ("a.csv:2", "bad_encoding")

    def test_the_log_says_when_the_file_changed_while_it_was_read(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        path.write_text(HEADER + line(1) + line(2).rstrip("\n"))
        age(path)
        st = path.stat()
        src = source(tmp_path)
        with structlog.testing.capture_logs() as logs:
            src._log_held("a.csv", 3, st)
        assert "the file changed while it was read" in logs[0]["reason"]

    def test_validate_does_not_stop_on_a_file_being_written(self, tmp_path: Path) -> None:
        (tmp_path / "a.csv").write_text("order_id,created_at,sta")
        assert source(tmp_path).check() == ([], [])
        d3_file(tmp_path / "b.csv")  # a mixed file's header is fine too
        assert source(tmp_path).check() == ([], [])
        (tmp_path / "c.csv").write_bytes((HEADER + line(1, "оплачен")).encode("cp1251"))
        problems, _ = source(tmp_path, encoding="utf-8").check()
        # the mixed file is UTF-8 with one bad line (a rejection when read), not a problem
        assert [p.split(":")[0] for p in problems] == ["c.csv"]


def _file_read() -> Any:
    from convsync.sources.csv import _FileRead

    return _FileRead()


# --- D3: one line in another encoding -----------------------------------------------------


def d3_file(path: Path, paid: int = 21) -> None:
    """The issue's file: UTF-8, its first order saved as cp1251 (a hand edit in Excel)."""
    rows = [
        f"{i},2026-11-20 10:00:00,оплачен,покупатель{i}@пример.рф,vk{i}\n".encode()
        for i in range(2, paid + 2)
    ]
    bad = "1,2026-11-20 10:00:00,оплачен,покупатель1@пример.рф,vk1\n".encode("cp1251")
    path.write_bytes(HEADER.encode() + bad + b"".join(rows))


class TestMixedEncodings:
    def test_one_cp1251_line_in_a_utf8_file_is_rejected_the_rest_read(self, tmp_path: Path) -> None:
        d3_file(tmp_path / "a.csv")
        chunks = pull_all(source(tmp_path))
        records = records_of(chunks)
        assert len(records) == 21
        assert {r.fields["status"] for r in records} == {"оплачен"}
        assert records[0].fields["email"] == "покупатель2@пример.рф"  # not cp1251 mojibake
        (rejection,) = rejections_of(chunks)
        assert (rejection.origin, rejection.code, rejection.record_id) == (
            "a.csv:2",
            "bad_encoding",
            "1",
        )
        assert rejection.column == "status"
        assert "line 2 is not valid UTF-8 (byte 0xEE at position 23)" in rejection.reason
        assert "покупатель" not in rejection.reason and "@" not in rejection.reason
        assert marked(chunks) == ["a.csv"]

    def test_the_decision_is_the_whole_file_s(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        d3_file(path)
        with path.open("rb") as raw:
            assert detect_encoding(raw) == "utf-8"
            assert raw.tell() == 0

    def test_a_utf8_line_in_a_cp1251_file_is_rejected_not_misread(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        rows = [line(i, status="оплачен").encode("cp1251") for i in range(1, 6)]
        rows.insert(2, line(9, status="оплачен").encode())  # appended by a UTF-8 tool
        path.write_bytes(HEADER.encode() + b"".join(rows))
        chunks = pull_all(source(tmp_path))
        assert ids(chunks) == ["1", "2", "3", "4", "5"]
        assert {r.fields["status"] for r in records_of(chunks)} == {"оплачен"}
        (rejection,) = rejections_of(chunks)
        assert (rejection.origin, rejection.code, rejection.record_id) == (
            "a.csv:4",
            "bad_encoding",
            "9",
        )
        assert "is UTF-8, while the rest of the file is cp1251" in rejection.reason

    def test_stray_valid_utf8_pairs_in_cp1251_do_not_reject_lines(self, tmp_path: Path) -> None:
        # «ООО» in cp1251 ends in CE BB: a valid UTF-8 pair, in a line that is not UTF-8
        path = tmp_path / "a.csv"
        rows = [line(i, status="«ООО» оплачен").encode("cp1251") for i in range(1, 4)]
        path.write_bytes(HEADER.encode() + b"".join(rows))
        chunks = pull_all(source(tmp_path))
        assert ids(chunks) == ["1", "2", "3"]
        assert rejections_of(chunks) == []

    def test_a_byte_cp1251_does_not_have_rejects_its_line(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        rows = [line(i, status="оплачен").encode("cp1251") for i in range(1, 5)]
        rows[1] = rows[1].replace(b"vk2", b"vk\x982")
        path.write_bytes(HEADER.encode() + b"".join(rows))
        for encoding in ("auto", "cp1251"):
            chunks = pull_all(source(tmp_path, encoding=encoding))
            assert ids(chunks) == ["1", "3", "4"]
            (rejection,) = rejections_of(chunks)
            assert (rejection.origin, rejection.code, rejection.column) == (
                "a.csv:3",
                "bad_encoding",
                "rb_clickid",
            )
            assert "byte 0x98" in rejection.reason

    def test_explicit_utf8_on_a_cp1251_file_says_which_line_and_what_to_set(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "a.csv"
        path.write_bytes((HEADER + line(1) + line(2, status="оплачен")).encode("cp1251"))
        with pytest.raises(UserError) as caught:
            pull_all(source(tmp_path, encoding="utf-8"))
        message = str(caught.value)
        assert message.startswith("a.csv: the file is not valid UTF-8")
        assert "line 3 is the first that is not" in message
        assert "set sources.shop.encoding: cp1251 or auto" in message
        # nothing was handed over for it
        got: list[Any] = []
        with pytest.raises(UserError):
            got.extend(source(tmp_path, encoding="utf-8").pull(SourceState()))
        assert got == []

    def test_explicit_utf8_with_one_bad_line_rejects_that_line(self, tmp_path: Path) -> None:
        d3_file(tmp_path / "a.csv")
        chunks = pull_all(source(tmp_path, encoding="utf-8"))
        assert len(records_of(chunks)) == 21
        (rejection,) = rejections_of(chunks)
        assert rejection.code == "bad_encoding"
        assert "sources.shop.encoding is utf-8" in rejection.reason

    def test_explicit_cp1251_on_a_utf8_file_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        path.write_text(HEADER + line(1) + line(2, status="оплачен"), encoding="utf-8")
        with pytest.raises(UserError, match=r"a\.csv: the file is UTF-8, not cp1251 .*line 3"):
            pull_all(source(tmp_path, encoding="cp1251"))
        path.write_text(HEADER + line(1), encoding="utf-8-sig")
        with pytest.raises(UserError, match="byte order mark"):
            pull_all(source(tmp_path, encoding="cp1251"))

    def test_explicit_encodings_still_read_their_files(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        for encoding, codec in (
            ("utf-8", "utf-8-sig"),
            ("utf-8-sig", "utf-8"),
            ("cp1251", "cp1251"),
        ):
            path.write_bytes((HEADER + line(1, status="оплачен")).encode(codec))
            (record,) = records_of(pull_all(source(tmp_path, encoding=encoding)))
            assert (record.record_id, record.fields["status"]) == ("1", "оплачен")

    def test_a_bad_line_inside_a_multiline_cell_rejects_its_row(self, tmp_path: Path) -> None:
        header = "order_id,created_at,status,comment\n"
        data = (
            header.encode()
            + '1,2026-11-20 10:00,оплачен,"раз\n'.encode()
            + "два\n".encode("cp1251")
            + 'три"\n2,2026-11-20 10:00,оплачен,ок\n'.encode()
        )
        (tmp_path / "a.csv").write_bytes(data)
        chunks = pull_all(make_source(tmp_path, fields={"status": "status", "comment": "comment"}))
        assert ids(chunks) == ["2"]
        assert [r.origin for r in records_of(chunks)] == ["a.csv:5"]
        (rejection,) = rejections_of(chunks)
        assert (rejection.origin, rejection.code) == ("a.csv:2", "bad_encoding")
        assert "line 3 is not valid UTF-8" in rejection.reason

    def test_line_numbers_hold_far_into_a_large_file(self, tmp_path: Path) -> None:
        rows = [line(i, status="оплачен").encode() for i in range(1, 30001)]  # > 2 MiB
        rows[25000] = rows[25000].decode().encode("cp1251")  # record 25001, line 25002
        path = tmp_path / "a.csv"
        path.write_bytes(HEADER.encode() + b"".join(rows))
        assert path.stat().st_size > 2 * csv_lines.BLOCK
        chunks = pull_all(source(tmp_path))
        assert len(records_of(chunks)) == 29999
        (rejection,) = rejections_of(chunks)
        assert (rejection.origin, rejection.record_id) == ("a.csv:25002", "25001")
        assert records_of(chunks)[-1].origin == "a.csv:30001"

    def test_a_header_that_does_not_decode_stops_the_source(self, tmp_path: Path) -> None:
        data = "заказ,created_at,status,email,rb_clickid\n".encode("cp1251")
        data += "".join(line(i, status="оплачен") for i in range(1, 4)).encode()
        (tmp_path / "a.csv").write_bytes(data)
        with pytest.raises(UserError, match=r"a\.csv: cannot read the header: line 1 is not valid"):
            pull_all(source(tmp_path))

    @pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
    def test_unicode_line_separators_are_text_in_a_cell(
        self, tmp_path: Path, separator: str
    ) -> None:
        # str.splitlines would cut the row there; the csv module does not
        (tmp_path / "a.csv").write_text(
            HEADER + line(1, status=f"опла{separator}чен") + line(2), encoding="utf-8"
        )
        chunks = pull_all(source(tmp_path))
        assert ids(chunks) == ["1", "2"]
        assert records_of(chunks)[0].fields["status"] == f"опла{separator}чен"
        assert [r.origin for r in records_of(chunks)] == ["a.csv:2", "a.csv:3"]


# --- D6: a cell or a line too large --------------------------------------------------------


class TestOversize:
    def test_a_cell_over_the_csv_limit_rejects_its_row_and_the_rest_is_read(
        self, tmp_path: Path
    ) -> None:
        """The issue's scenario: a 131,073-character cell stopped the source on every run."""
        big = "x" * (csv.field_size_limit() + 1)
        (tmp_path / "a.csv").write_text(
            HEADER + line(1) + f'2,2026-11-20 10:00:00,paid,"{big}",vk2\n' + line(3) + line(4)
        )
        chunks = pull_all(source(tmp_path))
        assert ids(chunks) == ["1", "3", "4"]
        assert marked(chunks) == ["a.csv"]
        (rejection,) = rejections_of(chunks)
        assert (rejection.origin, rejection.column, rejection.code, rejection.record_id) == (
            "a.csv:3",
            "email",
            "field_too_large",
            "2",
        )
        assert "longer than 131,072 characters" in rejection.reason

    def test_an_unquoted_oversize_cell_and_one_in_the_last_column(self, tmp_path: Path) -> None:
        big = "y" * 200_000
        (tmp_path / "a.csv").write_text(
            HEADER + f"1,2026-11-20 10:00:00,{big},a@b.c,vk1\n" + f"2,x,y,z,{big}\n" + line(3)
        )
        chunks = pull_all(source(tmp_path))
        assert ids(chunks) == ["3"]
        got = [(r.origin, r.column, r.record_id) for r in rejections_of(chunks)]
        assert got == [("a.csv:2", "status", "1"), ("a.csv:3", "rb_clickid", "2")]

    def test_an_oversize_multiline_cell_or_open_quote_is_one_rejection(
        self, tmp_path: Path
    ) -> None:
        # an opening quote never closed: the rest of the file runs into the cell limit
        filler = "".join(line(i) for i in range(100, 3100))  # ~150,000 characters
        (tmp_path / "a.csv").write_text(
            HEADER + line(1) + '2,2026-11-20 10:00:00,paid,"oops,vk2\n' + filler + line(9)
        )
        chunks = pull_all(source(tmp_path))
        rejections = rejections_of(chunks)
        assert (rejections[0].origin, rejections[0].code) == ("a.csv:3", "field_too_large")
        assert "closing quote is missing" in rejections[0].reason
        assert ids(chunks)[0] == "1" and ids(chunks)[-1] == "9"  # reading went on
        assert marked(chunks) == ["a.csv"]

    def test_a_line_over_the_line_limit_is_skipped_in_bounded_memory(self, tmp_path: Path) -> None:
        path = tmp_path / "a.csv"
        with path.open("w") as f:
            f.write(HEADER + line(1))
            f.write("2,2026-11-20 10:00:00,paid,")
            chunk = "z" * (1 << 20)
            for _ in range(40):  # a 40 MiB cell
                f.write(chunk)
            f.write(",vk2\n" + line(3))
        tracemalloc.start()
        try:
            chunks = pull_all(source(tmp_path))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert ids(chunks) == ["1", "3"]
        (rejection,) = rejections_of(chunks)
        assert (rejection.origin, rejection.code) == ("a.csv:3", "field_too_large")
        assert "longer than 1 MiB" in rejection.reason
        assert peak < 3 * MAX_LINE + 4 * csv_lines.BLOCK, peak  # not the 40 MiB

    def test_a_long_line_that_opens_a_quoted_cell_keeps_the_rows_in_step(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(csv_lines, "BLOCK", 256)
        monkeypatch.setattr(csv_lines, "MAX_LINE", 1000)
        header = "order_id,created_at,status,comment\n"
        (tmp_path / "a.csv").write_text(
            header
            + "1,2026-11-20 10:00,paid,ok\n"
            + '2,2026-11-20 10:00,paid,"' + "w" * 5000 + "\n"  # opens a cell, too long
            + 'still the comment, 5,2026-11-20 10:00,paid,x"\n'
            + "3,2026-11-20 10:00,paid,ok\n"
        )  # fmt: skip
        chunks = pull_all(make_source(tmp_path, fields={"status": "status", "comment": "comment"}))
        assert ids(chunks) == ["1", "3"]
        assert [r.origin for r in records_of(chunks)] == ["a.csv:2", "a.csv:5"]
        assert [(r.origin, r.code) for r in rejections_of(chunks)] == [
            ("a.csv:3", "field_too_large")
        ]

    def test_a_header_cell_over_the_limit_stops_the_source(self, tmp_path: Path) -> None:
        (tmp_path / "a.csv").write_text("order_id," + "h" * 200_000 + "\n" + line(1))
        with pytest.raises(UserError, match=r"a\.csv:1: cannot read the CSV header"):
            pull_all(source(tmp_path))


# --- the line reader ---------------------------------------------------------------------


class TestPieces:
    @pytest.mark.parametrize("block", [1, 2, 3, 5, 1 << 20])
    def test_breaks_split_across_reads_are_whole_lines(
        self, block: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(csv_lines, "BLOCK", block)
        data = b"a\r\nb\rc\nd\r\n\r\ne\rf"
        got = b"".join(p for p in pieces(io.BytesIO(data), len(data)) if isinstance(p, bytes))
        assert got == data
        lines = [
            x
            for p in pieces(io.BytesIO(data), len(data))
            if isinstance(p, bytes)
            for x in p.splitlines(keepends=True)
        ]
        assert lines == [b"a\r\n", b"b\r", b"c\n", b"d\r\n", b"\r\n", b"e\r", b"f"]

    @pytest.mark.parametrize("block", [1, 4, 7, 10])
    def test_a_long_line_is_one_piece_whatever_the_reads(
        self, block: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(csv_lines, "BLOCK", block)
        monkeypatch.setattr(csv_lines, "MAX_LINE", 10)
        data = b"ab\r\n" + b'"x' * 20 + b"\r\ncd\n" + b"y" * 30
        got = list(pieces(io.BytesIO(data), len(data)))
        text = [p for p in got if isinstance(p, bytes)]
        longs = [p for p in got if not isinstance(p, bytes)]
        assert b"".join(text).splitlines(keepends=True) == [b"ab\r\n", b"cd\n"]
        assert [(x.size, x.quotes, x.ended) for x in longs] == [(40, 20, True), (30, 0, False)]

    def test_reading_stops_at_the_size_given(self) -> None:
        data = b"a\nb\nc\n"
        assert list(pieces(io.BytesIO(data), 4)) == [b"a\nb\n"]

    def test_pieces_match_a_plain_split(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Random bytes of short and long lines, \\r, \\n, \\r\\n and quotes, read in
        random block sizes: the same lines as ``bytes.splitlines``, the long ones as
        LongLine."""
        for seed in range(300):
            rnd = random.Random(seed)
            block = rnd.randint(1, 12)
            max_line = rnd.randint(block, 20)
            monkeypatch.setattr(csv_lines, "BLOCK", block)
            monkeypatch.setattr(csv_lines, "MAX_LINE", max_line)
            data = bytes(rnd.choice(b'ab"\r\n\r\n') for _ in range(rnd.randint(0, 300)))
            data += bytes(rnd.choice(b"xy") for _ in range(rnd.randint(0, 3) * max_line))
            expected: list[tuple[Any, ...]] = []
            for text in data.splitlines(keepends=True):
                content = text.rstrip(b"\r\n")
                if len(content) > max_line:
                    expected.append(("long", len(content), content.count(b'"'), content != text))
                else:
                    expected.append(("line", text))
            got: list[tuple[Any, ...]] = []
            for piece in pieces(io.BytesIO(data), len(data)):
                if isinstance(piece, bytes):
                    got += [("line", text) for text in piece.splitlines(keepends=True)]
                else:
                    got.append(("long", piece.size, piece.quotes, piece.ended))
            assert got == expected, f"seed {seed}"


class TestFeed:
    def test_the_same_lines_as_the_text_wrapper_it_replaces(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a valid file the feed gives the csv module what
        ``TextIOWrapper(newline="")`` gave it: the same strings, the same count."""
        alphabet = ["a", "б", ",", '"', "\r", "\n", "\r\n", "\u2028", "\x85", "\x0c", "—"]
        for seed in range(200):
            rnd = random.Random(seed)
            monkeypatch.setattr(csv_lines, "BLOCK", rnd.choice([1, 2, 3, 7, 64, 1 << 20]))
            text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 200)))
            codec = rnd.choice(["utf-8", "cp1251"])
            data = text.encode(codec, "replace")
            expected = list(io.TextIOWrapper(io.BytesIO(data), encoding=codec, newline=""))
            decoding = Decoding(codec, False, codec, "sources.shop.encoding")
            feed = LineFeed(io.BytesIO(data), len(data), decoding, fresh=False, mark=(0, 0))
            assert list(feed) == expected, f"seed {seed}"
            assert not feed.issues and feed.held is None
