"""An e-mail or a phone in the wrong column leaks nowhere (issue 12, D7).

A CSV plants a raw e-mail and phones in every column a sync reads — the record id, the
order id, each click-id column, a click id in the landing URL, two ``when`` fields and
a field nothing uses — and in their own columns (``email``, ``phone``), where they are
hashed. A dry run, a ``--validate`` run, two real runs against local fakes, ``failures``
and ``report`` must show none of them, raw or normalised, in their output, their logs
(at DEBUG), the plan, the validation results, the ledger's files or the requests the
platforms received; the rows are rejected with ``identity_in_wrong_column`` naming the
column.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from convsync.core.identity import sha256_hex
from tests.datamanager_fake import FakeDataManager, fake_data_manager
from tests.metrica_fake import FakeMetrica, fake_metrica
from tests.vk_fake import FakeVk, fake_vk

from .test_cli import convsync

EMAIL = "Anna.Petrova@Example.com"
PHONES = ["+7 900 000-00-01", "8 (900) 000-00-02", "+79000000003"]
#: digits alone are a phone only where the column's own ids never are (see contact_in)
BARE_PHONE = "89000000004"
PLANTED = [EMAIL, *PHONES]

#: every form in which they must not appear: raw, normalised, or recognisably in part
NEEDLES = [
    *PLANTED,
    BARE_PHONE,
    EMAIL.lower(),
    "anna.petrova",
    quote(EMAIL, safe=""),
    quote(EMAIL.lower(), safe=""),
    "+79000000001",
    "+79000000002",
    "+79000000004",
    "9000000001",
    "9000000002",
    "9000000003",
    "9000000004",
    "(900) 000",
    "900 000-00",
]

HEADER = [
    "id", "created_at", "status", "pipeline", "note", "total", "currency", "email", "phone", "gclid",
    "gbraid", "wbraid", "yclid", "ym_uid", "ym_user", "purchase", "rb_clickid", "vk_user",
    "order_no", "landing",
]  # fmt: skip

CLICK_ID_COLUMNS = {
    "gclid": "gclid", "gbraid": "gbraid", "wbraid": "wbraid", "yclid": "yclid",
    "ym_uid": "metrica_client_id", "ym_user": "metrica_user_id", "purchase": "purchase_id",
    "rb_clickid": "vk_click_id", "vk_user": "vk_user_id",
}  # fmt: skip
#: columns whose own ids are never bare digits of a phone's length
BARE_DIGITS_REFUSED = ("gclid", "gbraid", "wbraid", "yclid", "ym_uid")


def config(google: FakeDataManager, metrica: FakeMetrica, vk: FakeVk) -> tuple[str, dict[str, str]]:
    """The config file's text and the environment its credentials come from."""
    fields = {
        "status": "status", "pipeline": "pipeline", "note": "note", "value": "total",
        "currency": "currency",
        "email": "email", "phone": "phone", "landing_url": "landing", "order_id": "order_no",
        **{canonical: column for column, canonical in CLICK_ID_COLUMNS.items()},
    }  # fmt: skip
    google.auto_process = True
    google_config = google.destination_config()
    auth = google_config["auth"]
    env = {
        "G_SECRET": auth["client_secret"],
        "G_REFRESH": auth["refresh_token"],
        "M_TOKEN": metrica.token,
    }
    google_config["auth"] = auth | {
        "client_secret": "${G_SECRET}",
        "refresh_token": "${G_REFRESH}",
    }
    metrica_config = metrica.destination_config(token="${M_TOKEN}")
    metrica.counters.add(metrica_config["counter_id"])
    destinations = {
        "google": google_config,
        "metrica": metrica_config,
        "vk": vk.destination_config(),
    }
    return (
        f"""\
timezone: Europe/Moscow
phone_region: RU
sources:
  shop:
    type: csv
    path: orders.csv
    id: id
    time: created_at
    fields: {json.dumps(fields)}
destinations: {json.dumps(destinations)}
goals:
  purchase:
    source: shop
    when: {{status: paid, pipeline: {{not: test}}}}
    value: value
    currency: RUB
    order_id: order_id
    send:
      google: {{conversion_action: 987654321}}
      metrica: {{target: offline_purchase}}
      vk: {{goal: purchase}}
""",
        env,
    )


def rows(now: datetime) -> Iterator[dict[str, str]]:
    """Clean rows that are delivered, then one row per (column, planted value)."""
    n = 0

    def row(**changes: str) -> dict[str, str]:
        nonlocal n
        n += 1
        clean = {
            "id": f"R-{n}",
            "created_at": (now - timedelta(days=2, minutes=n)).strftime("%Y-%m-%d %H:%M:%S"),
            "status": "paid",
            "pipeline": "main",
            "note": "ok",
            "total": "1500,50",
            "currency": "RUB",
            "email": EMAIL,  # their own columns: hashed
            "phone": PHONES[n % len(PHONES)],
            "gclid": f"EAIaIQobChMIclean{n:04d}_Ab-Cd",
            "gbraid": "",
            "wbraid": "",
            "yclid": f"61234567890123{n:05d}",
            "ym_uid": f"17320123456{n:08d}",
            "ym_user": f"user-{n}",
            "purchase": f"P-{n}",
            "rb_clickid": f"vkclick{n:06d}",
            "vk_user": f"{100500 + n}",
            "order_no": f"O-{n}",
            "landing": "https://shop.example/?utm_source=ads",
        }
        return clean | changes

    for _ in range(3):
        yield row()
    for column in ("id", "order_no", *CLICK_ID_COLUMNS):
        for value in PLANTED:
            yield row(**{column: value})
    for column in BARE_DIGITS_REFUSED:
        yield row(**{column: BARE_PHONE})
    for value in PLANTED:
        # a click id parsed from the landing URL (its own column empty)
        yield row(gclid="", landing=f"https://shop.example/?gclid={quote(value, safe='')}")
        yield row(yclid="", landing=f"https://shop.example/#/cart?yclid={quote(value)}")
        # a `when` field that does not match, one that does (`not: test`), a field no
        # destination reads: the record is mapped, the value is never kept
        yield row(status=value)
        yield row(pipeline=value)
        yield row(note=value)
        # columns whose rejection quotes a bad value: the value is hidden there
        yield row(created_at=value)
        yield row(total=value)
        yield row(currency=value)
    # a planted id in a row rejected for another reason: the record id is checked first
    yield row(id=EMAIL + ".bad", total="1.500")
    # ... and in a row the source itself rejects (an impossible date): its rejection
    # keeps no record id either
    yield row(id=PHONES[0], created_at="32.11.2026")


def expected_rejections() -> dict[str, int]:
    """Rejections per source column: one per planted row of each."""
    counts = {"id": len(PLANTED) + 1, "order_no": len(PLANTED), "landing": 2 * len(PLANTED)}
    counts["total"] = 1  # "+79000000003" reads as an amount, but a + and a phone: refused
    for column in CLICK_ID_COLUMNS:
        counts[column] = len(PLANTED) + (column in BARE_DIGITS_REFUSED)
    return counts


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[Path, FakeDataManager, FakeMetrica, FakeVk]]:
    with fake_data_manager() as google, fake_metrica() as metrica, fake_vk() as vk:
        text, env = config(google, metrica, vk)
        (tmp_path / "convsync.yaml").write_text(text, encoding="utf-8")
        (tmp_path / "env.json").write_text(json.dumps(env), encoding="utf-8")
        with (tmp_path / "orders.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, HEADER)
            writer.writeheader()
            writer.writerows(rows(datetime.now(UTC)))
        yield tmp_path, google, metrica, vk


def test_identities_in_the_wrong_columns_leak_nowhere(
    shop: tuple[Path, FakeDataManager, FakeMetrica, FakeVk],
) -> None:
    tmp_path, google, metrica, vk = shop
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = json.loads((tmp_path / "env.json").read_text()) | {"CONVSYNC_LOG_LEVEL": "DEBUG"}
    outputs: list[str] = []
    for args in (
        ("sync", "--once", "--dry-run", "--output", "plan.jsonl"),
        ("sync", "--once", "--validate", "--output", "validate.jsonl"),
        ("sync", "--once"),
        ("sync", "--once"),
        ("failures", "--since", "30d", "--limit", "500"),
        ("report", "--since", "30d"),
        ("runs",),
    ):
        done = convsync("--database-url", url, *args, cwd=tmp_path, env=env)
        assert done.returncode in (0, 1), done.stderr
        outputs += [done.stdout, done.stderr]
    logs = "\n".join(outputs)

    # the runs did their work: conversions planned, checked, delivered, rows rejected
    plan = [json.loads(line) for line in (tmp_path / "plan.jsonl").read_text().splitlines()]
    assert {p["destination"] for p in plan} == {"google", "metrica", "vk"}
    assert (tmp_path / "validate.jsonl").read_text().strip()
    assert google.calls and metrica.uploads and vk.tracker.hits
    assert "identity_in_wrong_column" in logs
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        rejected = dict(
            db.execute(
                "SELECT coalesce(\"column\", ''), count(*) FROM record_rejections "
                "WHERE code = 'identity_in_wrong_column' GROUP BY 1"
            ).fetchall()
        )
        hidden_ids = db.execute(
            "SELECT count(*) FROM record_rejections WHERE \"column\" = 'id' AND record_id IS NULL"
        ).fetchone()[0]
        conversions = db.execute("SELECT count(*) FROM conversions").fetchone()[0]
        other = dict(
            db.execute(
                "SELECT code, count(*) FROM record_rejections "
                "WHERE code != 'identity_in_wrong_column' GROUP BY 1"
            ).fetchall()
        )
    assert rejected == expected_rejections()
    assert hidden_ids == len(PLANTED) + 1  # with the one whose amount is bad too
    # the planted times, amounts and currencies: rejected, their values hidden
    assert other == {
        "bad_time": len(PLANTED) + 1,
        "bad_value": len(PLANTED) - 1,
        "bad_currency": len(PLANTED),
    }
    # clean rows, the matching `when` rows and the unused-field rows became conversions
    assert conversions == 3 + 2 * len(PLANTED)

    files = {
        p.name: p.read_bytes().decode("utf-8", "replace")
        for p in tmp_path.iterdir()
        if p.is_file() and p.name.startswith(("ledger.db", "plan", "validate"))
    }
    assert {"ledger.db", "plan.jsonl", "validate.jsonl"} <= set(files)
    # the values in their own columns are there, hashed
    assert sha256_hex(EMAIL.lower()) in files["ledger.db"] + files.get("ledger.db-wal", "")
    assert sha256_hex("+79000000001") in files["ledger.db"] + files.get("ledger.db-wal", "")
    sent = {
        "Google": "\n".join(str(call.request) for call in google.calls),
        "Metrica": "\n".join(json.dumps(u.lines) for u in metrica.uploads.values()),
        "VK": "\n".join(hit.request_line for hit in vk.tracker.hits),
    }
    for needle in NEEDLES:
        for where, text in {"the output and logs": logs, **files, **sent}.items():
            assert needle.lower() not in text.lower(), f"{needle!r} leaked into {where}"
