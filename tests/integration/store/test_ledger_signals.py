"""Sealed match signals in the ledger: kept encrypted while a conversion may still be
sent, dropped once its deliveries are settled, sealed alike by a mapping process."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from convsync.config.loader import load_config
from convsync.core import sealing
from convsync.core.errors import DestinationUnavailable
from convsync.core.model import (
    AdjustmentCandidate,
    AdjustmentKind,
    Conversion,
    DeliveryState,
    Identifiers,
    OutboundRow,
    RowOutcome,
    Transition,
)
from convsync.store import Ledger
from convsync.store.schema import conversions
from convsync.sync.mapping import MapJob, MappingProcess
from convsync.sync.pipeline import SyncOptions, SyncPipeline
from tests.clock import Clock

from ..conftest import write_orders
from ..fakes import Script, ScriptedDestination, deliver_all
from .factory import NOW, conversion, plan

LEASE = timedelta(minutes=10)
IP = "203.0.113.77"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) SealedTest/1.0"
SIGNALS = {"ip_address": IP, "user_agent": AGENT}


@pytest.fixture(autouse=True)
def _own_key() -> Iterator[None]:
    saved = sealing._state
    sealing.configure("a passphrase for the ledger tests")
    yield
    sealing._state = saved


def _with_signals(record_id: str) -> Conversion:
    return replace(conversion(record_id), attributes={"plan": "gold", **SIGNALS})


def _record(ledger: Ledger, items: list[Conversion], **kwargs: Any) -> None:
    ledger.record_chunk(
        run_id="r",
        source="shop",
        conversions=items,
        deliveries=kwargs.pop("deliveries", plan(items)),
        rejections=[],
        cursor=None,
        files_done=[],
        now=NOW,
        **kwargs,
    )


def _claim(ledger: Ledger, limit: int = 100, batch: str = "b1") -> list[Any]:
    return ledger.claim(
        destination="google", limit=limit, lease=LEASE, batch_id=batch, run_id="r", now=NOW
    )


def _stored(db: Engine) -> dict[str, tuple[str | None, str | None]]:
    """record id → (attributes, sealed) as the database holds them."""
    with db.connect() as connection:
        rows = connection.execute(
            sa.select(
                conversions.c.record_id, conversions.c.attributes, conversions.c.sealed
            ).where(conversions.c.adjusts_id.is_(None))
        )
        return {row.record_id: (row.attributes, row.sealed) for row in rows}


def test_the_sealed_index_is_partial(ledger: Ledger, db: Engine) -> None:
    [index] = [i for i in sa.inspect(db).get_indexes("conversions") if "sealed" in i["name"]]
    assert index["column_names"] == ["id"]
    where = next(v for k, v in index["dialect_options"].items() if k.endswith("_where"))
    assert "sealed IS NOT NULL" in str(where)


def test_settled_conversions_lose_their_signals_and_the_others_keep_them(
    ledger: Ledger, db: Engine
) -> None:
    first, second, skipped = _with_signals("1"), _with_signals("2"), _with_signals("3")
    _record(
        ledger,
        [first, second, skipped],
        deliveries=[*plan([first, second]), *plan([skipped], [], skipped=["google"])],
    )
    stored = _stored(db)
    assert all(IP not in repr(v) and AGENT not in repr(v) for v in stored.values())
    assert stored["1"][0] == '{"plan":"gold"}' and stored["1"][1] is not None

    [claimed] = _claim(ledger, limit=1)
    assert claimed.conversion.attributes == {"plan": "gold", **SIGNALS}
    ledger.apply([Transition(claimed.delivery_id, DeliveryState.DELIVERED)], run_id="r", now=NOW)

    # the delivered one and the one skipped everywhere; the pending one keeps them
    assert ledger.drop_settled_signals(NOW) == 2
    stored = _stored(db)
    assert stored["1"] == ('{"plan":"gold"}', None)
    assert stored["3"] == ('{"plan":"gold"}', None)
    assert stored["2"][1] is not None
    assert ledger.drop_settled_signals(NOW) == 0

    [pending] = _claim(ledger)
    assert pending.conversion.key == second.key
    assert pending.conversion.attributes == {"plan": "gold", **SIGNALS}
    assert ledger.drop_settled_signals(NOW) == 0  # sending
    ledger.apply(
        [Transition(pending.delivery_id, DeliveryState.DEFERRED, "later", "later", NOW)],
        run_id="r",
        now=NOW,
    )
    assert ledger.drop_settled_signals(NOW) == 0  # deferred: will be sent again
    [again] = _claim(ledger, batch="b2")
    assert again.conversion.attributes == {"plan": "gold", **SIGNALS}
    ledger.apply(
        [Transition(again.delivery_id, DeliveryState.REJECTED, "bad", "bad")], run_id="r", now=NOW
    )
    assert ledger.drop_settled_signals(NOW) == 1
    assert all(sealed is None for _, sealed in _stored(db).values())


def test_an_adjustment_reads_its_conversions_signals_until_they_are_dropped(
    ledger: Ledger, db: Engine
) -> None:
    settled, open_ = _with_signals("1"), _with_signals("2")
    _record(ledger, [settled, open_])
    first, _sending = _claim(ledger)
    ledger.apply([Transition(first.delivery_id, DeliveryState.DELIVERED)], run_id="r", now=NOW)
    assert ledger.drop_settled_signals(NOW) == 1  # the second is still being sent

    _record(
        ledger,
        [],
        adjustments=[
            AdjustmentCandidate(c.key, c.goal, AdjustmentKind.RETRACTION, ("google",))
            for c in (settled, open_)
        ],
    )
    adjustments = {a.conversion.key: a for a in _claim(ledger, batch="b2")}
    assert all(a.adjustment is not None for a in adjustments.values())
    assert adjustments[settled.key].conversion.attributes == {"plan": "gold"}
    assert adjustments[open_.key].conversion.attributes == {"plan": "gold", **SIGNALS}
    with db.connect() as connection:  # the adjustment rows hold no copy of the signals
        copies = connection.execute(
            sa.select(conversions.c.sealed).where(conversions.c.adjusts_id.is_not(None))
        ).scalars()
        assert list(copies) == [None, None]


CONFIG = """\
timezone: Europe/Moscow
sources:
  shop:
    type: csv
    path: orders/*.csv
    id: order_id
    time: created_at
    fields: {status: status, gclid: gclid, plan: plan, ip_address: ip, user_agent: ua}
destinations:
  google: {type: google_ads, api: google_ads_api, customer_id: 1234567890,
           auth: {application_default: true}}
goals:
  purchase:
    source: shop
    when: {status: [paid]}
    send:
      google: {conversion_action: 1, custom_variables: {77: plan, 78: ip_address, 79: user_agent}}
"""


@pytest.mark.parametrize("key", ["a passphrase set by the operator", None])
def test_a_mapping_process_seals_with_this_processs_key(
    ledger: Ledger, db: Engine, tmp_path: Path, key: str | None
) -> None:
    sealing.configure(key)  # None: the key this process made for itself
    (tmp_path / "orders").mkdir()
    (tmp_path / "convsync.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "orders" / "a.csv").write_text(
        "order_id,created_at,status,gclid,plan,ip,ua\n"
        f"A-1,2026-11-20 10:01:00,paid,EAIaIQobChMIabcdef,gold,{IP},{AGENT}\n"
        f"A-2,2026-11-20 10:02:00,paid,EAIaIQobChMIabcdeg,silver,{IP},\n",
        encoding="utf-8",
    )
    dialect = ledger.dialect
    job = MapJob(
        loaded=load_config(tmp_path / "convsync.yaml", env={}),
        source="shop",
        goals=(),
        chunk_size=1,  # two chunks: the child keeps one key for all
        state=ledger.source_state("shop"),
        run_id="r",
        dialect=f"{dialect.name}+{dialect.driver}",
    )
    assert job.seal_key == sealing.current_key()
    assert job.seal_key not in repr(job)
    process = MappingProcess(job)
    try:
        for ready in process:
            ledger.write_chunk(
                ready.prepared,
                run_id="r",
                source="shop",
                rejections=ready.rejections,
                cursor=ready.cursor,
                files_done=ready.files_done,
                now=NOW,
            )
    finally:
        process.close()
    stored = _stored(db)
    assert stored.keys() == {"A-1", "A-2"}
    assert all(sealed is not None for _, sealed in stored.values())
    assert all(IP not in repr(v) and AGENT not in repr(v) for v in stored.values())
    claimed = {c.conversion.record_id: c.conversion.attributes for c in _claim(ledger)}
    assert claimed == {
        "A-1": {"plan": "gold", **SIGNALS},
        "A-2": {"plan": "silver", "ip_address": IP},
    }


# --- the sync run drops them after its deliver step ------------------------------------


def _sync(workdir: Path, ledger: Ledger, script: Script, **options: Any) -> None:
    loaded = load_config(workdir / "convsync.yaml", env={})
    dest = ScriptedDestination("vk", loaded.app.destinations["vk"], script)  # type: ignore[arg-type]
    pipeline = SyncPipeline(loaded, ledger, destinations={"vk": dest}, clock=Clock(), sleep=None)
    pipeline.run(SyncOptions(**options))


def _recorded_for_vk(workdir: Path, ledger: Ledger) -> None:
    write_orders(workdir, [])  # the run pulls nothing: the conversions are in the ledger
    sent, skipped = (
        replace(_with_signals(i), ids=Identifiers(vk_click_id=f"click{i}")) for i in ("1", "2")
    )
    _record(
        ledger,
        [sent, skipped],
        deliveries=[*plan([sent], ["vk"]), *plan([skipped], [], skipped=["vk"])],
    )


def _crash(rows: Sequence[OutboundRow]) -> list[RowOutcome]:
    raise KeyError("a bug in the uploader")


def _unavailable(rows: Sequence[OutboundRow]) -> list[RowOutcome]:
    raise DestinationUnavailable("invalid_token", "the OAuth token was revoked")


def test_a_run_drops_the_signals_its_deliveries_settled_and_a_dry_run_none(
    workdir: Path, ledger: Ledger, db: Engine
) -> None:
    _recorded_for_vk(workdir, ledger)
    _sync(workdir, ledger, deliver_all, dry_run=True, output=workdir / "plan.jsonl")
    assert [sealed is not None for _, sealed in _stored(db).values()] == [True, True]
    _sync(workdir, ledger, deliver_all)
    assert [sealed is not None for _, sealed in _stored(db).values()] == [False, False]


@pytest.mark.parametrize("script", [_unavailable, _crash])
def test_a_run_whose_destination_stopped_or_failed_still_drops_settled_signals(
    workdir: Path, ledger: Ledger, db: Engine, script: Script
) -> None:
    _recorded_for_vk(workdir, ledger)
    if script is _crash:
        with pytest.raises(KeyError):
            _sync(workdir, ledger, script)
    else:
        _sync(workdir, ledger, script)
    stored = _stored(db)
    assert stored["1"][1] is not None  # pending again, or still sending
    assert stored["2"][1] is None  # skipped everywhere: settled
