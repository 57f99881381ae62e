"""A ledger with a known history for the status page's tests, written through the
ledger's own steps (record, claim, apply, upload verdicts, runs), relative to the real
clock so that it never ages out.

Over the last 36 days (the 30 of the charts and the weeks before them): ``purchase``
(source ``shop``) has 20 conversions a day, but only 4 on the day 7 days before
yesterday (a drop of 80 % against its weekday); ``lead`` (source ``crm``) has 3 a day. Each
purchase goes to ``google`` and ``metrica``, each lead to ``vk``. Deliveries older than
today settle: google delivered, 1 in 10 rejected (``INVALID_GCLID``); metrica matched
or unmatched by upload verdicts (3 in 4 matched), vk delivered. Today's stay pending.
The last runs stopped at ``vk`` with ``auth_failed``.

Order ids carry an e-mail and a phone, as a careless CRM's might: the page must mask them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from convsync.core.model import (
    Conversion,
    DeliveryState,
    Identifiers,
    PlannedDelivery,
    Transition,
    UploadRecord,
)
from convsync.store.ledger import Ledger

S = DeliveryState
ZONE = ZoneInfo("Europe/Moscow")
DAYS = 36
PURCHASES_A_DAY, LEADS_A_DAY, DROPPED_TO = 20, 3, 4
LEASE = timedelta(minutes=5)
STOPPED = "auth_failed: VK Ads refused the client credentials (401)"
#: personal data planted in order ids, which the page must never show
PLANTED_EMAIL, PLANTED_PHONE = "buyer.one@example.com", "+7 916 123-45-67"

CONFIG = """\
timezone: Europe/Moscow
sources:
  shop: {type: csv, path: "orders/*.csv", id: order_id, time: created_at, fields: {gclid: gclid}}
  crm: {type: csv, path: "leads/*.csv", id: lead_id, time: created_at, fields: {vk: rb_clickid}}
destinations:
  google:
    type: google_ads
    customer_id: "123-456-7890"
    auth: {client_id: cid, client_secret: "${G_SECRET}", refresh_token: "${G_REFRESH}"}
  metrica: {type: yandex_metrica, counter_id: 12345678, token: "${METRICA_TOKEN}"}
  vk: {type: vk_ads, pixel_id: 42, tracker_url: "http://127.0.0.1:9/tracker"}
goals:
  purchase:
    source: shop
    send:
      google: {conversion_action: "111"}
      metrica: {target: purchase}
  lead:
    source: crm
    send:
      vk: {goal: lead}
"""


#: the environment of CONFIG's credentials
ENV = {"G_SECRET": "g-secret-0123", "G_REFRESH": "g-refresh-0123", "METRICA_TOKEN": "m-token-0123"}


@dataclass(frozen=True)
class History:
    today: date
    #: the day the purchases dropped
    dropped: date
    #: purchases and leads recorded per day, the oldest first
    days: list[date]


def _day_time(day: date, n: int) -> datetime:
    """The n-th conversion of a day: from 09:00 local, a minute apart."""
    return datetime.combine(day, time(9), tzinfo=ZONE) + timedelta(minutes=n)


def _conversion(goal: str, source: str, record_id: str, at: datetime) -> Conversion:
    key = hashlib.sha256(f"{source}|{record_id}|{goal}".encode()).hexdigest()
    return Conversion(
        key=key,
        source=source,
        record_id=record_id,
        goal=goal,
        order_id=f"{record_id} {PLANTED_EMAIL} {PLANTED_PHONE}",
        occurred_at=at,
        value=Decimal("1500"),
        currency="RUB",
        ids=Identifiers(gclid=f"g-{record_id}"),
        consent="GRANTED",
    )


def seed(ledger: Ledger, now: datetime) -> History:
    today = now.astimezone(ZONE).date()
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    dropped = today - timedelta(days=8)
    for i, day in enumerate(days):
        start = _day_time(day, 0)
        if start > now:  # early in the morning: today's come later
            start = now - timedelta(minutes=30)
        run_id = f"seed-{i:02d}"
        ledger.start_run(run_id=run_id, trigger="schedule", started_at=start)
        count = DROPPED_TO if day == dropped else PURCHASES_A_DAY
        purchases = [
            _conversion("purchase", "shop", f"p{day:%m%d}-{n}", min(_day_time(day, n), start))
            for n in range(count)
        ]
        leads = [
            _conversion("lead", "crm", f"l{day:%m%d}-{n}", min(_day_time(day, n), start))
            for n in range(LEADS_A_DAY)
        ]
        for source, made, destinations in (
            ("shop", purchases, ("google", "metrica")),
            ("crm", leads, ("vk",)),
        ):
            ledger.record_chunk(
                run_id=run_id,
                source=source,
                conversions=made,
                deliveries=[PlannedDelivery(c.key, c.goal, d) for c in made for d in destinations],
                rejections=[],
                cursor=None,
                files_done=[],
                now=start,
            )
        if day != today:
            _settle(ledger, run_id, start + timedelta(minutes=5))
        summary = {
            "sources": {"shop": {"pulled": count}, "crm": {"pulled": LEADS_A_DAY}},
            "destinations": {
                "google": {"delivered": 0},
                "metrica": {"delivered": 0},
                "vk": {"stopped": STOPPED, "delivered": 0},
            },
        }
        ledger.finish_run(
            run_id=run_id,
            status="degraded",
            finished_at=start + timedelta(minutes=6),
            summary=summary,
        )
    return History(today, dropped, days)


def _settle(ledger: Ledger, run_id: str, at: datetime) -> None:
    google = ledger.claim(
        destination="google", limit=1000, lease=LEASE, batch_id=f"g-{run_id}", run_id=run_id, now=at
    )
    ledger.apply(
        [
            Transition(c.delivery_id, S.REJECTED, "INVALID_GCLID", "the GCLID could not be decoded")
            if n % 10 == 9
            else Transition(c.delivery_id, S.DELIVERED)
            for n, c in enumerate(google)
        ],
        run_id=run_id,
        now=at,
    )
    vk = ledger.claim(
        destination="vk", limit=1000, lease=LEASE, batch_id=f"v-{run_id}", run_id=run_id, now=at
    )
    ledger.apply([Transition(c.delivery_id, S.DELIVERED) for c in vk], run_id=run_id, now=at)
    n = 0
    while True:  # a batch (and an upload) per row, so each row gets a verdict of its own
        batch = f"m-{run_id}-{n}"
        claimed = ledger.claim(
            destination="metrica", limit=1, lease=LEASE, batch_id=batch, run_id=run_id, now=at
        )
        if not claimed:
            return
        upload = UploadRecord("metrica", batch, f"up-{batch}", "UPLOADED", 1)
        delivered = [Transition(claimed[0].delivery_id, S.DELIVERED)]
        ledger.apply(delivered, run_id=run_id, now=at, uploads=[upload])
        verdict = S.UNMATCHED if n % 4 == 3 else S.MATCHED
        final = replace(upload, status="PROCESSED", final=True, verdict=verdict)
        ledger.update_uploads([final], run_id=run_id, now=at + timedelta(minutes=1))
        n += 1


def utc_now() -> datetime:
    return datetime.now(UTC)
