"""Plan lines and the ledger's JSON columns: orjson's text is the standard library's, and
what orjson cannot encode still is."""

from __future__ import annotations

import json

from convsync.core.jsontext import dumps


def _stdlib(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def test_a_plan_line_is_the_standard_librarys_text() -> None:
    line = {
        "destination": "vk",
        "type": "vk_ads",
        "order_id": "Заказ-1",  # written as itself, not \\u escapes
        "payload": {"value": 29356.17, "count": 3, "ok": True, "none": None, "ids": ["a"]},
    }
    assert dumps(line) == _stdlib(line)


def test_an_integer_beyond_64_bits_falls_back_to_the_standard_library() -> None:
    big = {"value": 2**70}
    assert dumps(big) == _stdlib(big) == '{"value":1180591620717411303424}'
