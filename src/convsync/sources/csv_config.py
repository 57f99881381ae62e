"""Config of the ``csv`` source (kept apart from the reader so validation stays light)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field

from convsync.core.configtypes import Duration, StrictModel, TimeZoneName, Within


class CsvSourceConfig(StrictModel):
    """A folder (glob) of CSV exports: orders, deals, leads."""

    type: Literal["csv"]
    path: str = Field(description="Glob of the files, relative to the config file's folder.")
    id: str = Field(description="Column with the record's unique id (order number, deal id).")
    time: str = Field(description="Column with the moment the target action happened.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical field name → column name (email, phone, gclid, value, …).",
    )
    encoding: Literal["auto", "utf-8", "utf-8-sig", "cp1251"] = Field(
        default="auto",
        description="auto: UTF-8 (with or without BOM), else cp1251 — judged on the whole "
        "file; a line in another encoding than its file's is rejected (bad_encoding).",
    )
    delimiter: Literal["auto", ",", ";", "tab"] = Field(
        default="auto", description="auto: detected from the header line."
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="Time zone of naive timestamps; default: the top-level one."
    )
    settle: Annotated[Duration, Within("0s", "1d")] = Field(
        default=timedelta(minutes=1),
        description="A last record without its line break (the file may still be being "
        "written) is read only once the file has not changed for this long; 0: at once.",
    )
