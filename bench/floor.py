"""The plain-Python floor of what a dry run does per record, for `bench/pipeline.py`.

Reads the same CSV, keeps the paid orders, parses the time and amount, normalises and
hashes the e-mail and the phone (with `phonenumbers`, no cache: the floor of a new
phone), builds the three payloads the bench's config sends (Google through the Data
Manager API, Yandex.Metrica, VK Ads) or the line of a conversion one of them cannot
match, and writes each as a JSON line. No ledger, no validation beyond what shapes the
payload, no sorting: what any script doing the same job by hand cannot avoid.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

_E164 = phonenumbers.PhoneNumberFormat.E164
_PAID = frozenset({"paid", "completed"})
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _email(raw: str) -> str:
    email = raw.strip().lower()
    local, _, domain = email.partition("@")
    if domain == "gmail.com":
        return f"{local.partition('+')[0].replace('.', '')}@{domain}"
    return email


def _phone(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, "RU")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, _E164)


def _skipped(dest: str, kind: str, head: dict[str, Any]) -> str:
    return _ENCODE(
        {
            "destination": dest,
            "type": kind,
            **head,
            "skipped": {"code": "no_identifier", "message": f"no identifier {kind} can match"},
        }
    )


def floor(workdir: Path) -> int:
    """Writes ``floor.jsonl`` beside the CSV; returns the records read."""
    tz = ZoneInfo("Europe/Moscow")
    n = 0
    with (
        (workdir / "orders.csv").open(encoding="utf-8", newline="") as f,
        (workdir / "floor.jsonl").open("w", encoding="utf-8") as out,
    ):
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            n += 1
            order_id, created, status, total, currency, email, phone = row[:7]
            gclid, yclid, ym_uid, rb_clickid = row[7:11]
            if status not in _PAID:
                continue
            at = datetime.strptime(created, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz)
            value = Decimal(total)
            head = {
                "goal": "purchase",
                "conversion_key": _key(f"shop\x1f{order_id}\x1fpurchase"),
                "order_id": order_id,
            }
            contacts = []
            if email:
                contacts.append({"email_address": _sha256(_email(email))})
            if phone and (e164 := _phone(phone)) is not None:
                contacts.append({"phone_number": _sha256(e164)})
            lines = []
            if gclid or contacts:
                event: dict[str, Any] = {
                    "destination_references": ["987654321"],
                    "transaction_id": order_id,
                    "event_timestamp": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "event_source": "WEB",
                    "conversion_value": float(value),
                    "currency": currency,
                }
                if gclid:
                    event["ad_identifiers"] = {"gclid": gclid}
                if contacts:
                    event["user_data"] = {"user_identifiers": contacts}
                line = {"destination": "google", "type": "google_ads", **head, "payload": event}
                lines.append(_ENCODE(line))
            else:
                lines.append(_skipped("google", "google_ads", head))
            if ym_uid or yclid:
                cells: dict[str, Any] = {}
                if ym_uid:
                    cells["ClientId"] = ym_uid
                if yclid:
                    cells["Yclid"] = yclid
                cells["Target"] = "offline_purchase"
                cells["DateTime"] = int(at.timestamp())
                cells["Price"] = str(value)
                cells["Currency"] = currency
                payload = {"counter_id": 12345678, "row": cells}
                line = {"destination": "metrica", "type": "yandex_metrica", **head}
                lines.append(_ENCODE({**line, "payload": payload}))
            else:
                lines.append(_skipped("metrica", "yandex_metrica", head))
            if rb_clickid:
                payload = {
                    "pixel_id": 3456789,
                    "goal": "purchase",
                    "value": float(value),
                    "rb_clickid": rb_clickid,
                }
                line = {"destination": "vk", "type": "vk_ads", **head, "payload": payload}
                lines.append(_ENCODE(line))
            else:
                lines.append(_skipped("vk", "vk_ads", head))
            for text in lines:
                out.write(text)
                out.write("\n")
    return n
