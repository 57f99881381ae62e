"""What the whole-sync Metrica tests share: a shop folder (orders and calls as CSV) whose
config sends both to the fake Metrica, and the fake's environment."""

from __future__ import annotations

from pathlib import Path

from tests.metrica_fake import COUNTER_ID, FakeMetrica

CONFIG = f"""\
timezone: Europe/Moscow
sources:
  shop:
    type: csv
    path: orders/*.csv
    id: order_id
    time: created_at
    fields: {{status: status, value: total, metrica_client_id: ym_uid}}
  calls:
    type: csv
    path: calls/*.csv
    id: call_id
    time: started_at
    fields: {{metrica_client_id: ym_uid, talk: duration}}
destinations:
  metrica:
    type: yandex_metrica
    counter_id: {COUNTER_ID}
    token: "${{M_TOKEN}}"
    api_base_url: "${{M_URL}}"
goals:
  purchase:
    source: shop
    when: {{status: paid}}
    value: value
    currency: RUB
    send:
      metrica: {{target: offline_purchase}}
  call:
    source: calls
    send:
      metrica: {{type: calls, call_fields: {{TalkDuration: talk}}}}
"""


def make_shop(folder: Path, delivery: str) -> Path:
    """The shop in ``folder``, its config's ``delivery`` block as given (flow YAML)."""
    (folder / "orders").mkdir()
    (folder / "calls").mkdir()
    # no calls yet, but the export is there: a glob that matches nothing degrades a run
    (folder / "calls" / "none.csv").write_text("call_id,started_at,ym_uid,duration\n")
    (folder / "convsync.yaml").write_text(f"{CONFIG}delivery: {delivery}\n", encoding="utf-8")
    return folder


def env_of(fake: FakeMetrica, **changes: str) -> dict[str, str]:
    return {"M_TOKEN": fake.token, "M_URL": fake.url, **changes}


def write_orders(
    shop: Path, n: int, *, first: int = 0, at: str = "2026-11-20 10:00:00", name: str = "a.csv"
) -> None:
    """Paid orders ``A-<first>`` … of 100 RUB, each with a ClientID, in ``orders/<name>``."""
    lines = "".join(f"A-{i},{at},paid,100,17000000001234{i:05d}\n" for i in range(first, first + n))
    (shop / "orders" / name).write_text("order_id,created_at,status,total,ym_uid\n" + lines)


def write_calls(shop: Path, n: int) -> None:
    lines = "".join(
        f"K-{i},2026-11-20 11:00:00,18000000001234{i:05d},0:{i + 10}\n" for i in range(n)
    )
    (shop / "calls" / "a.csv").write_text("call_id,started_at,ym_uid,duration\n" + lines)
