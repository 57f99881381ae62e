"""The dry-run plan's entries: a skipped conversion's line is the one every entry has."""

from __future__ import annotations

import json

from convsync.core.errors import RowSkipped
from convsync.core.model import Identifiers, no_identifier
from convsync.destinations.vk_ads.config import VkAdsTarget
from convsync.sync.plan import PlanWriter, _entry, plan_conversion

from .destinations.contract import NOW
from .destinations.test_vk_ads import make_conversion, make_destination


def test_a_skipped_conversion_has_the_line_and_entry_of_any_held_row() -> None:
    vk = make_destination()
    quoted = make_conversion(order_id='A-"1001"/ё', ids=Identifiers(yclid="123"))
    [entry] = plan_conversion(
        quoted, {"vk": VkAdsTarget(goal="buy")}, {"vk": vk}, NOW, with_line=True
    )
    expected = _entry(
        vk, quoted, None, RowSkipped(*no_identifier("vk_ads")), queued=False, with_line=True
    )
    assert entry == expected
    assert json.loads(entry[4] or "") == {
        "destination": "vk",
        "type": "vk_ads",
        "goal": "purchase",
        "conversion_key": "c-1",
        "order_id": 'A-"1001"/ё',
        "skipped": {"code": "no_identifier", "message": "no identifier vk_ads can match"},
    }
    [without_line] = plan_conversion(
        quoted, {"vk": VkAdsTarget(goal="buy")}, {"vk": vk}, NOW, with_line=False
    )
    assert without_line == (*expected[:4], None, *expected[5:])


def test_the_writer_counts_each_kind_and_keeps_the_first_order_ids_of_each_reason() -> None:
    vk = make_destination()
    writer = PlanWriter(None)
    for i in range(5):
        conversion = make_conversion(order_id=f"A-{i}", ids=Identifiers())
        [entry] = plan_conversion(
            conversion, {"vk": VkAdsTarget(goal="buy")}, {"vk": vk}, NOW, with_line=False
        )
        writer.add(entry)
    [sent] = plan_conversion(
        make_conversion(), {"vk": VkAdsTarget(goal="buy")}, {"vk": vk}, NOW, with_line=False
    )
    writer.add(sent)
    assert writer.counts == {("vk", "purchase"): {"skipped": 5, "send": 1}}
    held = writer.held[("vk", "purchase", "skipped", "no_identifier")]
    assert (held.count, held.examples) == (5, ["A-0", "A-1", "A-2"])
    assert held.message == "no identifier vk_ads can match"
