"""The csv source (convsync.sources.csv): the shared contract plus what CSV exports do."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from convsync.core.errors import UserError
from convsync.core.model import FileMark, SourceState
from convsync.sources import load_source_class
from convsync.sources.base import PulledChunk, SourceContext
from convsync.sources.csv import CsvSource, detect_delimiter, detect_encoding
from convsync.sources.csv_config import CsvSourceConfig

from .contract import (
    ContractCase,
    SourceContract,
    Variant,
    fold_state,
    pull_all,
    records_of,
    rejections_of,
)

MSK = ZoneInfo("Europe/Moscow")
HEADER = ["order_id", "created_at", "email", "phone", "total", "status"]
FIELDS = {"email": "email", "phone": "phone", "value": "total", "status": "status"}


def make_source(
    base: Path,
    *,
    chunk_size: int = 5000,
    path: str = "*.csv",
    fields: dict[str, str] | None = None,
    **config: Any,
) -> CsvSource:
    cfg = CsvSourceConfig(
        type="csv",
        path=path,
        id=config.pop("id", "order_id"),
        time=config.pop("time", "created_at"),
        fields=FIELDS if fields is None else fields,
        **config,
    )
    return CsvSource("shop", cfg, SourceContext(MSK, base, chunk_size=chunk_size))


def write_csv(
    path: Path,
    rows: Sequence[Sequence[str]],
    *,
    header: Sequence[str] = HEADER,
    delimiter: str = ",",
    encoding: str = "utf-8",
    newline: str = "\r\n",
) -> Path:
    lines = [delimiter.join(header), *(delimiter.join(row) for row in rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + newline for line in lines).encode(encoding))
    return path


def row(i: int, when: str = "2026-11-20 14:03:00") -> list[str]:
    return [str(i), when, f"buyer{i}@example.com", f"+7916555{i:04d}", f"{i}00.50", "paid"]


def pii_of(ids: range) -> list[str]:
    return [v for i in ids for v in (f"buyer{i}@example.com", f"+7916555{i:04d}")]


class TestCsvSource(SourceContract):
    has_cursor = False  # a files manifest, no cursor

    @pytest.fixture
    def contract_case(self, tmp_path_factory: pytest.TempPathFactory) -> Any:
        def build(variant: Variant, chunk_size: int) -> ContractCase:
            base = tmp_path_factory.mktemp("csv")
            write_csv(base / "a.csv", [row(i) for i in range(1, 5)])
            second = [row(5), row(6, "20.11.2026 14:03")]
            if variant == "bad":
                second += [
                    ["", "2026-11-20 14:03:00", "nobody@example.com", "", "1", "paid"],
                    # shifted cells: the phone landed in the time column
                    ["7", "+79165557777", "late@example.com", "", "1", "paid"],
                    ["8", "2026-11-20 14:03:00", "short@example.com"],
                ]
            write_csv(base / "b.csv", second)
            pii = pii_of(range(1, 7))
            pii += ["nobody@example.com", "+79165557777", "late@example.com", "short@example.com"]
            return ContractCase(
                make_source(base, chunk_size=chunk_size), {str(i) for i in range(1, 7)}, pii
            )

        return build


def test_registry_finds_the_class() -> None:
    assert load_source_class("csv") is CsvSource


def test_record_fields_origin_and_columns(tmp_path: Path) -> None:
    write_csv(tmp_path / "orders" / "a.csv", [row(1), [*row(2)[:4], "", " paid "]])
    chunks = pull_all(make_source(tmp_path, path="orders/*.csv"))
    first, second = records_of(chunks)
    assert first.occurred_at == datetime(2026, 11, 20, 14, 3, tzinfo=MSK)
    assert first.origin == "orders/a.csv:2"
    assert first.fields == {
        "email": "buyer1@example.com",
        "phone": "+79165550001",
        "value": "100.50",
        "status": "paid",
    }
    assert second.origin == "orders/a.csv:3"
    assert second.fields == {
        "email": "buyer2@example.com",
        "phone": "+79165550002",
        "status": "paid",
    }
    assert first.columns == {
        "email": "email",
        "phone": "phone",
        "value": "total",
        "status": "status",
    }
    assert first.columns is second.columns
    assert chunks[-1].files_done[0].path == "orders/a.csv"


def test_utf8_without_bom(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [[*row(1)[:5], "Оплачен"]])
    (record,) = records_of(pull_all(make_source(tmp_path)))
    assert record.fields["status"] == "Оплачен"


def test_utf8_with_bom_keeps_the_first_column_name_clean(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [[*row(1)[:5], "Оплачен"]], encoding="utf-8-sig")
    (record,) = records_of(pull_all(make_source(tmp_path)))
    assert record.record_id == "1"
    assert record.fields["status"] == "Оплачен"


def test_russian_excel_export_in_cp1251(tmp_path: Path) -> None:
    header = ["Номер заказа", "Дата", "Сумма", "Статус"]
    rows = [
        ["101", "20.11.2026 14:03", '"1 500,00"', "Оплачен"],
        ["102", "21.11.2026", "99,9", "Новый"],
    ]
    write_csv(tmp_path / "выгрузка.csv", rows, header=header, delimiter=";", encoding="cp1251")
    source = make_source(
        tmp_path, id="Номер заказа", time="Дата", fields={"value": "Сумма", "status": "Статус"}
    )
    first, second = records_of(pull_all(source))
    assert first.occurred_at == datetime(2026, 11, 20, 14, 3, tzinfo=MSK)
    assert first.fields == {"value": "1 500,00", "status": "Оплачен"}
    assert first.origin == "выгрузка.csv:2"
    assert second.occurred_at == datetime(2026, 11, 21, tzinfo=MSK)
    assert second.fields == {"value": "99,9", "status": "Новый"}


def test_tab_separated(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.tsv", [row(1)], delimiter="\t")
    (record,) = records_of(pull_all(make_source(tmp_path, path="*.tsv")))
    assert record.fields["value"] == "100.50"


def test_configured_delimiter_wins_over_detection(tmp_path: Path) -> None:
    # detection would pick the comma: there are more of them than semicolons
    write_csv(
        tmp_path / "a.csv", [["1", "2026-11-20", "x@y.z,a,b,c,d", "", "1", "paid"]], delimiter=";"
    )
    (record,) = records_of(pull_all(make_source(tmp_path, delimiter=";")))
    assert record.fields["email"] == "x@y.z,a,b,c,d"


def test_excel_sep_line_names_the_delimiter(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [row(1)], delimiter=";")
    path.write_bytes(b"sep=;\r\n" + path.read_bytes())
    (record,) = records_of(pull_all(make_source(tmp_path)))
    assert (record.record_id, record.origin) == ("1", "a.csv:3")


def test_quoted_multiline_cells_keep_physical_line_numbers(tmp_path: Path) -> None:
    text = (
        "order_id,created_at,status,comment\n"
        '1,2026-11-20 10:00,paid,"first line\nsecond line"\n'
        '2,2026-11-20 11:00,paid,"a\r\nb\r\nc"\n'
        "3,2026-11-20 12:00,paid,plain\n"
    )
    (tmp_path / "a.csv").write_text(text, encoding="utf-8", newline="")
    source = make_source(tmp_path, fields={"status": "status", "comment": "comment"})
    records = records_of(pull_all(source))
    assert [r.origin for r in records] == ["a.csv:2", "a.csv:4", "a.csv:7"]
    assert records[0].fields["comment"] == "first line\nsecond line"
    assert records[1].fields["comment"] == "a\r\nb\r\nc"


def test_header_matches_ignoring_case_and_spaces(tmp_path: Path) -> None:
    header = [" Order_ID ", "CREATED_AT", "E-mail", "phone", "total", "status"]
    write_csv(tmp_path / "a.csv", [row(1)], header=header)
    source = make_source(tmp_path, fields={"email": "e-mail"})
    (record,) = records_of(pull_all(source))
    assert record.record_id == "1"
    assert record.columns == {"email": "E-mail"}


def test_missing_columns_name_the_file_the_config_keys_and_what_is_there(tmp_path: Path) -> None:
    write_csv(tmp_path / "orders" / "nov.csv", [row(1)], header=["order", *HEADER[1:]])
    source = make_source(
        tmp_path, path="orders/*.csv", fields={"email": "E-mail", "phone": "phone"}
    )
    with pytest.raises(UserError) as caught:
        pull_all(source)
    message = str(caught.value)
    assert "orders/nov.csv" in message
    assert "'order_id' (sources.shop.id)" in message
    assert "'E-mail' (sources.shop.fields.email)" in message
    assert "phone (sources" not in message
    assert "'order', 'created_at', 'email', 'phone', 'total', 'status'" in message


def test_a_column_matching_several_loosely_is_reported(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [[*row(1), "x"]], header=[*HEADER, "EMAIL"])
    with pytest.raises(UserError, match="matches several columns: 'email', 'EMAIL'"):
        pull_all(make_source(tmp_path, fields={"email": "Email"}))
    # an exact match is not ambiguous
    (record,) = records_of(pull_all(make_source(tmp_path, fields={"email": "EMAIL"})))
    assert record.fields == {"email": "x"}


def test_files_before_a_bad_one_are_handed_over_first(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [row(1)])
    write_csv(tmp_path / "b.csv", [row(2)], header=["nope", *HEADER[1:]])
    got: list[PulledChunk] = []
    with pytest.raises(UserError, match=r"b\.csv"):
        got.extend(make_source(tmp_path).pull(SourceState()))
    assert [r.record_id for r in records_of(got)] == ["1"]
    assert [m.path for c in got for m in c.files_done] == ["a.csv"]


def test_bad_rows_are_rejected_with_column_and_code(tmp_path: Path) -> None:
    rows = [
        row(1),
        ["", "2026-11-20", "a@b.c", "", "1", "paid"],
        ["3", "32.13.2026 10:00", "", "", "1", "paid"],
        ["4", "", "", "", "1", "paid"],
        ["5", "2026-11-20", "too", "few"],
        ["", "", "", "", "", ""],  # Excel's trailing empty rows are no records
        [],
        row(6),
    ]
    write_csv(tmp_path / "a.csv", rows)
    chunks = pull_all(make_source(tmp_path))
    assert [r.record_id for r in records_of(chunks)] == ["1", "6"]
    got = [(r.origin, r.column, r.code, r.record_id) for r in rejections_of(chunks)]
    assert got == [
        ("a.csv:3", "order_id", "missing_id", None),
        ("a.csv:4", "created_at", "bad_time", "3"),
        ("a.csv:5", "created_at", "bad_time", "4"),
        ("a.csv:6", None, "bad_row", "5"),
    ]
    reasons = [r.reason for r in rejections_of(chunks)]
    assert reasons[1] == (
        "column 'created_at': '32.13.2026 10:00' is not a date-time: month must be in 1..12 "
        "(expected a date and time like 2026-11-20 14:03:00, 2026-11-20T14:03:00+03:00, "
        "20.11.2026 14:03 or Unix seconds)"
    )
    assert reasons[2] == "column 'created_at': it is empty"
    assert "4 cells, the header has 6" in reasons[3]


def test_a_phone_in_the_time_column_is_not_quoted(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [["1", "8 (916) 555-12-34", "", "", "", ""]])
    (rejection,) = rejections_of(pull_all(make_source(tmp_path)))
    assert "555-12-34" not in rejection.reason
    assert "hidden" in rejection.reason


def test_unclosed_quote_is_a_bad_row_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "order_id,created_at,email,phone,total,status\n"
        "1,2026-11-20,a,b,c,paid\n"
        '2,2026-11-20,"broken,b,c,paid\n'
        "3,2026-11-20,a,b,c,paid\n",
        encoding="utf-8",
    )
    # a finished file: in a fresh one, the record the end cuts short is held back
    os.utime(path, (path.stat().st_mtime - 3600,) * 2)
    chunks = pull_all(make_source(tmp_path))
    assert [r.record_id for r in records_of(chunks)] == ["1"]
    assert [(r.origin, r.code) for r in rejections_of(chunks)] == [("a.csv:3", "bad_row")]


def test_config_timezone_overrides_the_context(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [row(1, "2026-11-20 14:03"), row(2, "2026-11-20T14:03:00+05:00")])
    first, second = records_of(pull_all(make_source(tmp_path, timezone="Asia/Yekaterinburg")))
    assert first.occurred_at.utcoffset() == second.occurred_at.utcoffset()
    assert first.occurred_at == second.occurred_at


def test_unreadable_file_is_a_user_error_naming_it(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [row(1)])
    # a symlink loop fails to open even for root, unlike chmod 000
    (tmp_path / "b.csv").symlink_to(tmp_path / "b.csv")
    with pytest.raises(UserError, match=r"^b\.csv: cannot read the file: "):
        pull_all(make_source(tmp_path))


def warnings_of(chunks: Sequence[PulledChunk]) -> list[str]:
    return [w for chunk in chunks for w in chunk.warnings]


def test_a_glob_that_matches_no_file_is_a_warning_naming_where_it_looked(tmp_path: Path) -> None:
    chunks = pull_all(make_source(tmp_path, path="exprots/orders-*.csv"))
    assert records_of(chunks) == []
    assert warnings_of(chunks) == [
        f"sources.shop.path: no file matches {tmp_path / 'exprots/orders-*.csv'}"
    ]


def test_a_folder_a_broken_link_and_an_empty_file_are_warnings(tmp_path: Path) -> None:
    write_csv(tmp_path / "orders-1.csv", [row(1)])
    (tmp_path / "orders-2.csv").mkdir()
    (tmp_path / "orders-3.csv").symlink_to(tmp_path / "gone.csv")
    empty = tmp_path / "orders-4.csv"
    empty.touch()
    os.utime(empty, (1_700_000_000, 1_700_000_000))  # not fresh: nobody is writing it
    source = make_source(tmp_path, path="orders-*.csv")
    chunks = pull_all(source)
    assert [r.origin for r in records_of(chunks)] == ["orders-1.csv:2"]
    assert warnings_of(chunks) == [
        "sources.shop.path: orders-2.csv is a folder; the glob should match CSV files",
        f"sources.shop.path: orders-3.csv is a link to {tmp_path / 'gone.csv'}, "
        "which does not exist",
        "sources.shop.path: orders-4.csv is empty (0 bytes)",
    ]
    assert source.check() == ([], warnings_of(chunks))
    # the empty file is remembered as read: said once, not every run
    state = SourceState(files={m.path: m for c in chunks for m in c.files_done})
    again = warnings_of(pull_all(source, state))
    assert again == warnings_of(chunks)[:2]


def test_absolute_glob_outside_base_dir_and_sorted_order(tmp_path: Path) -> None:
    outside = tmp_path / "exports"
    write_csv(outside / "b.csv", [row(2)])
    write_csv(outside / "a.csv", [row(1)])
    (outside / "dir.csv").mkdir()
    base = tmp_path / "config"
    base.mkdir()
    chunks = pull_all(make_source(base, path=str(outside / "*.csv")))
    assert [r.origin for r in records_of(chunks)] == [
        f"{outside.as_posix()}/a.csv:2",
        f"{outside.as_posix()}/b.csv:2",
    ]


class TestEncodings:
    def test_cp1251_after_a_long_ascii_prefix(self, tmp_path: Path) -> None:
        rows = [row(i) for i in range(20000)]  # > 1 MiB before the first Cyrillic byte
        rows.append([*row(20000)[:5], "Оплачен"])
        path = write_csv(tmp_path / "a.csv", rows, encoding="cp1251")
        assert path.stat().st_size > 1 << 20
        with path.open("rb") as raw:
            assert detect_encoding(raw) == "cp1251"
            assert raw.tell() == 0
        last = records_of(pull_all(make_source(tmp_path)))[-1]
        assert last.fields["status"] == "Оплачен"

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (b"", "utf-8"),
            (b"a,b\n1,2\n", "utf-8"),
            ("a,b\n1,Иван\n".encode(), "utf-8"),
            ("\ufeffa,b\n".encode(), "utf-8-sig"),
            ("a,b\n1,Иван\n".encode("cp1251"), "cp1251"),
        ],
    )
    def test_detect_encoding(self, tmp_path: Path, data: bytes, expected: str) -> None:
        path = tmp_path / "f.csv"
        path.write_bytes(data)
        with path.open("rb") as raw:
            assert detect_encoding(raw) == expected

    def test_bytes_that_no_encoding_takes_are_a_user_error(self, tmp_path: Path) -> None:
        path = write_csv(tmp_path / "a.csv", [row(1)])
        path.write_bytes(path.read_bytes() + b"2,2026-11-20,\x98,,,\r\n")
        with pytest.raises(UserError, match=r"a\.csv: the file is not valid cp1251"):
            pull_all(make_source(tmp_path, encoding="cp1251"))

    def test_invalid_utf8_when_utf8_is_configured(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "a.csv", [[*row(1)[:5], "Оплачен"]], encoding="cp1251")
        with pytest.raises(UserError, match=r"sources\.shop\.encoding"):
            pull_all(make_source(tmp_path, encoding="utf-8"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a,b,c\n", ","),
        ("a;b;c\r\n", ";"),
        ("a\tb\tc", "\t"),
        ('"x;y;z",b,c', ","),
        ("single", ","),
    ],
)
def test_detect_delimiter(line: str, expected: str) -> None:
    assert detect_delimiter(line) == expected


class TestManifest:
    def test_unchanged_file_is_skipped_without_reading_it(self, tmp_path: Path) -> None:
        path = write_csv(tmp_path / "a.csv", [row(1)])
        source = make_source(tmp_path)
        state = fold_state(SourceState(), pull_all(source))
        before = path.stat()
        # same size and mtime, different content: only a reader would notice
        path.write_bytes(path.read_bytes().replace(b"\r\n1,", b"\r\n9,"))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert pull_all(source, state) == []
        # the proof bites: with another mtime the new content is read
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1))
        assert [r.record_id for r in records_of(pull_all(source, state))] == ["9"]

    def test_mark_is_the_file_as_it_was_before_the_read(self, tmp_path: Path) -> None:
        path = write_csv(tmp_path / "a.csv", [row(1)])
        st = path.stat()
        (chunk,) = pull_all(make_source(tmp_path))
        assert chunk.files_done == [FileMark("a.csv", st.st_size, st.st_mtime_ns)]

    def test_changed_file_is_read_whole_again(self, tmp_path: Path) -> None:
        path = write_csv(tmp_path / "a.csv", [row(1), row(2)])
        write_csv(tmp_path / "b.csv", [row(10)])
        source = make_source(tmp_path)
        state = fold_state(SourceState(), pull_all(source))
        with path.open("ab") as f:
            f.write(",".join(row(3)).encode() + b"\r\n")
        os.utime(path, ns=(0, path.stat().st_mtime_ns + 1))
        again = pull_all(source, state)
        assert [r.record_id for r in records_of(again)] == ["1", "2", "3"]
        assert [m.path for c in again for m in c.files_done] == ["a.csv"]
        assert fold_state(state, again).files["a.csv"].size == path.stat().st_size

    def test_new_file_is_read(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "a.csv", [row(1)])
        source = make_source(tmp_path)
        state = fold_state(SourceState(), pull_all(source))
        write_csv(tmp_path / "b.csv", [row(2)])
        assert [r.record_id for r in records_of(pull_all(source, state))] == ["2"]


class TestChunks:
    def ids(self, chunks: Any) -> list[tuple[list[str], list[str]]]:
        return [([r.record_id for r in c.records], [m.path for m in c.files_done]) for c in chunks]

    def test_exact_multiple_of_chunk_size(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "a.csv", [row(i) for i in range(1, 7)])
        chunks = pull_all(make_source(tmp_path, chunk_size=3))
        assert self.ids(chunks) == [(["1", "2", "3"], []), (["4", "5", "6"], ["a.csv"])]

    def test_one_more_than_a_multiple(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "a.csv", [row(i) for i in range(1, 5)])
        chunks = pull_all(make_source(tmp_path, chunk_size=2))
        assert self.ids(chunks) == [(["1", "2"], []), (["3", "4"], ["a.csv"])]
        write_csv(tmp_path / "a.csv", [row(i) for i in range(1, 6)])
        chunks = pull_all(make_source(tmp_path, chunk_size=2))
        assert self.ids(chunks) == [(["1", "2"], []), (["3", "4"], []), (["5"], ["a.csv"])]

    def test_small_files_share_a_chunk_but_not_an_unfinished_mark(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "a.csv", [row(1), row(2)])
        write_csv(tmp_path / "b.csv", [row(3), row(4)])
        chunks = pull_all(make_source(tmp_path, chunk_size=3))
        assert self.ids(chunks) == [(["1", "2", "3"], ["a.csv"]), (["4"], ["b.csv"])]

    def test_rejections_count_towards_the_chunk(self, tmp_path: Path) -> None:
        write_csv(tmp_path / "a.csv", [row(1), ["", "x", "", "", "", ""], row(3)])
        chunks = pull_all(make_source(tmp_path, chunk_size=2))
        assert [(len(c.records), len(c.rejections)) for c in chunks] == [(1, 1), (1, 0)]

    @pytest.mark.parametrize(
        "content",
        [b"", b"\r\n\r\n", ",".join(HEADER).encode() + b"\r\n", ",".join(HEADER).encode()],
    )
    def test_file_without_rows_is_only_marked_done(self, tmp_path: Path, content: bytes) -> None:
        (tmp_path / "a.csv").write_bytes(content)
        # a finished file: in a fresh one, a header without its line break is held back
        os.utime(tmp_path / "a.csv", (0, 0))
        chunks = pull_all(make_source(tmp_path))
        assert self.ids(chunks) == [([], ["a.csv"])]
        assert chunks[0].rejections == []
