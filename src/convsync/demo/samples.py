"""The demo's files in a folder of their own: the example config as it is, and its sample
exports with every date moved by the same number of days, so that the newest is
yesterday. Platforms refuse conversions older than their window (Metrica: 21 days), so
samples with fixed dates would show a different plan every week."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path

CONFIG_NAME = "example.yaml"
SAMPLE_FOLDER = "sample"

# dates as the samples write them: ISO (2026-11-20, also inside 2026-11-21T18:20:00+03:00)
# and Russian (20.11.2026); matched on bytes, as the CRM export is cp1251
_DATE = re.compile(rb"(?<!\d)(?:(\d{4})-(\d{2})-(\d{2})|(\d{2})\.(\d{2})\.(\d{4}))(?!\d)")


def write_config(folder: Path) -> Path:
    """Copy the example config into ``folder``; its path."""
    path = folder / CONFIG_NAME
    path.write_bytes((files("convsync.demo") / CONFIG_NAME).read_bytes())
    return path


def write_samples(folder: Path, today: date) -> None:
    """Write the config's sample exports into ``folder``'s ``sample/``, their newest date
    the day before ``today``."""
    contents = {
        sample.name: sample.read_bytes()
        for sample in (files("convsync.demo") / SAMPLE_FOLDER).iterdir()
        if sample.name.endswith(".csv")
    }
    shift = today - timedelta(days=1) - newest_date(contents.values())
    (folder / SAMPLE_FOLDER).mkdir()
    for name, content in contents.items():
        (folder / SAMPLE_FOLDER / name).write_bytes(shift_dates(content, shift))


def newest_date(contents: Iterable[bytes]) -> date:
    """The latest real date written in any of the files' ``contents``."""
    found = [d for content in contents for d in map(_date_of, _DATE.finditer(content)) if d]
    if not found:
        raise ValueError("the demo's samples hold no date")
    return max(found)


def shift_dates(content: bytes, shift: timedelta) -> bytes:
    """``content`` with every real date moved by ``shift``, each written as before. An
    impossible date (32.11.2026, one of the rows the demo shows rejected) stays as it is."""

    def moved(match: re.Match[bytes]) -> bytes:
        day = _date_of(match)
        if day is None:
            return match.group(0)
        day += shift
        text = day.isoformat() if match.group(1) else f"{day:%d.%m.%Y}"
        return text.encode("ascii")

    return _DATE.sub(moved, content)


def _date_of(match: re.Match[bytes]) -> date | None:
    if match.group(1):
        year, month, day = match.group(1, 2, 3)
    else:
        day, month, year = match.group(4, 5, 6)
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None
