"""The demo's files: one copy (the repository's config/ points into the package), the
samples' dates moved as a whole, their bad rows, encodings and separators kept."""

from __future__ import annotations

import re
from datetime import date
from importlib.resources import files
from pathlib import Path

from convsync.demo.samples import CONFIG_NAME, SAMPLE_FOLDER, write_config, write_samples

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = Path(str(files("convsync.demo")))
ANY_DATE = re.compile(rb"\d{4}-\d{2}-\d{2}|\d{2}\.\d{2}\.\d{4}")


def test_the_repositorys_example_is_the_packaged_one() -> None:
    config = ROOT / "config"
    assert (config / "example.yaml").resolve() == (PACKAGED / CONFIG_NAME).resolve()
    assert (config / "sample").resolve() == (PACKAGED / SAMPLE_FOLDER).resolve()


def test_the_samples_newest_date_is_the_day_before_today(tmp_path: Path) -> None:
    write_samples(tmp_path, date(2031, 3, 1))  # the samples' newest day is 23.11.2026
    orders = (tmp_path / "sample" / "orders-2026-11.csv").read_text(encoding="utf-8")
    crm = (tmp_path / "sample" / "crm-export.csv").read_bytes()
    assert "A-1001,2031-02-25 14:03:00,paid" in orders
    assert "A-1004,2031-02-26T18:20:00+03:00,paid" in orders
    assert "A-1008,2031-02-28 19:05:00,paid" in orders
    assert "A-1007,2031-02-28 08:15:00,paid,oops," in orders  # the bad amount stays
    text = crm.decode("cp1251")
    assert "D-501;25.02.2031 14:03;Успешно реализовано;1 500,00;" in text
    assert "D-503;27.02.2031 16:45:30;" in text
    assert "D-504;32.11.2026 10:00;" in text  # the impossible date stays impossible
    assert crm.count(b"\r\n") == 5 and b"\r\n" not in orders.encode()


def test_only_the_dates_change(tmp_path: Path) -> None:
    write_samples(tmp_path, date(2027, 1, 10))
    for packaged in (PACKAGED / SAMPLE_FOLDER).glob("*.csv"):
        written = (tmp_path / SAMPLE_FOLDER / packaged.name).read_bytes()
        assert written != packaged.read_bytes()
        assert ANY_DATE.sub(b"D", written) == ANY_DATE.sub(b"D", packaged.read_bytes())


def test_the_config_is_copied_as_it_is(tmp_path: Path) -> None:
    written = write_config(tmp_path)
    assert written == tmp_path / CONFIG_NAME
    assert written.read_bytes() == (ROOT / "config" / "example.yaml").read_bytes()
