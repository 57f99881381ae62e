"""The webhook endpoint over a real socket: what it takes, what it refuses, and that an
acknowledged record is in the ledger."""

from __future__ import annotations

import json
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.exc import OperationalError

from convsync.core.errors import UserError
from convsync.service.runner import webhooks_served
from convsync.service.webhooks.server import GIL_SWITCH_INTERVAL_S
from convsync.store.ledger import Ledger
from convsync.sync.pipeline import SyncPipeline
from convsync.sync.summary import SyncOptions
from tests.integration.fakes import ScriptedDestination
from tests.integration.webhooks.conftest import CONFIG, TOKENS, Served, load

SITE = {"X-Convsync-Token": TOKENS["SITE_TOKEN"]}


def order(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"o-{n}",
        "created_at": "2026-11-27 12:30:00",
        "status": "paid",
        "total": "1500.50",
        "currency": "RUB",
        "email": f"Buyer{n}@Example.com",
        "rb_clickid": f"rb-{n}",
        **extra,
    }


def post(served: Served, source: str, **kwargs: Any) -> requests.Response:
    return requests.post(served.endpoint(source), timeout=10, **kwargs)


def test_a_json_order_is_recorded_before_it_is_acknowledged(served: Served) -> None:
    response = post(served, "site", json=order(1), headers=SITE)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "accepted",
        "new": 1,
        "duplicate": 0,
        "rejected": 0,
        "no_goal": 0,
    }
    assert [tuple(r) for r in served.conversions()] == [("o-1", "order")]
    assert served.count("deliveries") == 1
    (stored,) = served.stored()
    # 12:30 in Moscow (the top-level time zone) is 09:30 UTC; the e-mail is only a hash
    assert stored["occurred_at"].replace(tzinfo=None) == datetime(2026, 11, 27, 9, 30)
    assert stored["utc_offset_min"] == 180
    assert stored["value"] == "1500.50"
    assert stored["ids"]["vk_click_id"] == "rb-1"
    assert "Example.com" not in json.dumps(stored["ids"]) and stored["ids"].get("email_sha256")


def test_a_repeated_submission_is_acknowledged_and_recorded_once(served: Served) -> None:
    first = post(served, "site", json=order(7), headers=SITE)
    again = post(served, "site", json=order(7, total="9999"), headers=SITE)

    assert first.json()["new"] == 1
    assert again.status_code == 200
    assert again.json()["duplicate"] == 1 and again.json()["new"] == 0
    assert len(served.conversions()) == 1
    assert served.count("deliveries") == 1


def test_a_json_array_is_several_records(served: Served) -> None:
    response = post(served, "site", json=[order(1), order(2), order(1)], headers=SITE)

    body = response.json()
    assert (body["new"], body["duplicate"]) == (2, 1)
    assert [r[0] for r in served.conversions()] == ["o-1", "o-2"]


def test_a_record_no_goal_takes_is_acknowledged_and_not_recorded(served: Served) -> None:
    response = post(served, "site", json=order(3, status="cart"), headers=SITE)

    assert response.status_code == 200
    assert response.json()["no_goal"] == 1
    assert served.conversions() == []


def test_a_record_every_goal_rejects_is_422_and_on_the_failures_list(served: Served) -> None:
    response = post(served, "site", json=order(4, total="a lot"), headers=SITE)

    assert response.status_code == 422
    body = response.json()
    assert body["status"] == "rejected"
    assert body["problems"][0]["id"] == "o-4"
    assert body["problems"][0]["field"] == "total"
    assert "'a lot' is not an amount" in body["problems"][0]["reason"]
    assert served.conversions() == []
    assert served.count("record_rejections") == 1


def test_a_record_whose_id_is_an_email_is_422_and_the_email_is_kept_nowhere(
    served: Served,
) -> None:
    response = post(served, "site", json=order(5, id="buyer.five@example.com"), headers=SITE)

    assert response.status_code == 422
    [problem] = response.json()["problems"]
    assert problem["error"] == "identity_in_wrong_column"
    assert served.conversions() == []
    assert served.count("record_rejections") == 1
    with served.ledger._engine.connect() as connection:
        stored = [
            " ".join(str(v) for v in row)
            for row in connection.exec_driver_sql("SELECT * FROM record_rejections")
        ]
    assert stored and not any("five@example.com" in text for text in stored)


def test_tilda_form_fields_and_cookies(served: Served) -> None:
    form = {
        "Name": "Анна",
        "Email": "anna@example.com",
        "Phone": "+7 (912) 345-67-89",
        "tranid": "1234567:890",
        "formid": "form42",
        "rb_clickid": "rb-tilda",
        "COOKIES": "_ym_uid=1699999999123456789; _ga=GA1.1.1.2",
    }
    response = post(served, "forms", data=form, params={"token": TOKENS["FORMS_TOKEN"]})

    assert response.status_code == 200, response.text
    assert response.json()["new"] == 1
    (stored,) = served.stored()
    assert stored["record_id"] == "1234567:890"
    assert stored["ids"]["metrica_client_id"] == "1699999999123456789"
    assert stored["ids"]["vk_click_id"] == "rb-tilda"
    assert stored["ids"].get("email_sha256") and stored["ids"].get("phone_sha256")


def test_tildas_test_post_is_answered_and_not_recorded(served: Served) -> None:
    response = post(served, "forms", data={"test": "test"}, params={"token": TOKENS["FORMS_TOKEN"]})

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "test": True}
    assert served.conversions() == []


def test_amocrm_status_webhook_with_several_leads(served: Served) -> None:
    def lead(i: int, lead_id: str, status: str) -> dict[str, str]:
        p = f"leads[status][{i}]"
        return {
            f"{p}[id]": lead_id,
            f"{p}[status_id]": status,
            f"{p}[pipeline_id]": "555",
            f"{p}[old_status_id]": "100",
            f"{p}[price]": "25000",
            f"{p}[last_modified]": "1795000000",
            f"{p}[custom_fields][0][id]": "801",
            f"{p}[custom_fields][0][name]": "RB_CLICKID",
            f"{p}[custom_fields][0][values][0][value]": f"rb-{lead_id}",
        }

    form = {**lead(0, "9001", "142"), **lead(1, "9002", "143"), "account[subdomain]": "shop"}
    response = post(served, "crm", data=form, params={"token": TOKENS["AMO_TOKEN"]})

    assert response.status_code == 200, response.text
    assert (response.json()["new"], response.json()["no_goal"]) == (1, 1)
    (stored,) = served.stored()
    assert (stored["record_id"], stored["value"]) == ("9001:142", "25000")
    assert stored["ids"]["vk_click_id"] == "rb-9001"
    # last_modified is Unix seconds
    assert stored["occurred_at"] == datetime.fromtimestamp(1795000000, UTC)


def test_bitrix24_token_in_the_body(served: Served) -> None:
    form = {
        "id": "77",
        "sum": "990",
        "rb": "rb-b24",
        "auth[application_token]": TOKENS["B24_TOKEN"],
    }
    assert post(served, "b24", data=form).status_code == 200
    form["auth[application_token]"] = "guess"
    assert post(served, "b24", data={**form, "id": "78"}).status_code == 403
    assert [r[0] for r in served.conversions()] == ["77"]


@pytest.mark.parametrize(
    ("headers", "params", "status", "error"),
    [
        ({}, {}, 401, "no_token"),
        ({"X-Convsync-Token": "site-secret-Zq9"}, {}, 403, "wrong_token"),
        ({"Authorization": "Bearer nope"}, {}, 403, "wrong_token"),
        ({}, {"token": TOKENS["FORMS_TOKEN"]}, 403, "wrong_token"),  # another source's
        ({"Authorization": f"Bearer {TOKENS['SITE_TOKEN']}"}, {}, 200, None),
        ({}, {"token": TOKENS["SITE_TOKEN"]}, 200, None),
    ],
)
def test_tokens(
    served: Served, headers: dict[str, str], params: dict[str, str], status: int, error: str | None
) -> None:
    response = post(served, "site", json=order(5), headers=headers, params=params)

    assert response.status_code == status
    if error:
        assert response.json()["error"] == error
        assert served.conversions() == []


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        (
            {"data": b'{"id": "x",', "headers": {"Content-Type": "application/json"}},
            400,
            "malformed",
        ),
        (
            {"data": b"\xff\xfe{}", "headers": {"Content-Type": "application/json"}},
            400,
            "malformed",
        ),
        ({"data": b"id=1", "headers": {"Content-Type": "text/plain"}}, 415, "content_type"),
        ({"json": {"total": "1"}}, 422, "no_id"),
        ({"json": ["not a record"]}, 422, "not_a_record"),
        ({"json": order(6, created_at="yesterday-ish")}, 422, "bad_time"),
        ({"json": order(6, note="x" * 5000)}, 413, "too_large"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(
    served: Served, kwargs: dict[str, Any], status: int, error: str
) -> None:
    kwargs = dict(kwargs)  # the parameters are shared by the SQLite and PostgreSQL runs
    headers = {**SITE, **kwargs.pop("headers", {})}
    response = post(served, "site", headers=headers, **kwargs)

    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["reason"]
    assert served.conversions() == []


def test_an_oversize_chunked_body_is_refused(served: Served) -> None:
    def chunks() -> Any:
        yield b'{"id": "big", "note": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = post(
        served, "site", data=chunks(), headers={**SITE, "Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert served.conversions() == []


def test_routes_and_methods(served: Served) -> None:
    assert requests.get(served.endpoint("site"), headers=SITE, timeout=5).status_code == 405
    assert post(served, "nope", json=order(1), headers=SITE).status_code == 404
    assert requests.post(served.url + "/other", timeout=5).status_code == 404


def test_concurrent_senders_with_duplicates(served: Served) -> None:
    # 40 senders post 200 orders, each order twice (from two different senders)
    def send(n: int) -> tuple[int, dict[str, Any]]:
        with requests.post(served.endpoint("site"), json=order(n), headers=SITE, timeout=30) as r:
            return r.status_code, r.json()

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(send, [n % 100 for n in range(200)]))

    assert {status for status, _ in answers} == {200}
    assert sum(body["new"] for _, body in answers) == 100
    assert sum(body["duplicate"] for _, body in answers) == 100
    assert len(served.conversions()) == 100
    assert served.count("deliveries") == 100


class _FailingOnce:
    """The ledger, except that its next write fails as a dropped database would."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)

    def write_chunk(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return self.ledger.write_chunk(*args, **kwargs)


def test_a_ledger_failure_is_503_and_the_sender_retries(served: Served) -> None:
    recorder = served.server.app.recorder  # type: ignore[attr-defined]
    recorder.ledger = _FailingOnce(served.ledger)

    failed = post(served, "site", json=order(8), headers=SITE)
    retried = post(served, "site", json=order(8), headers=SITE)

    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "30"
    assert retried.status_code == 200 and retried.json()["new"] == 1
    assert len(served.conversions()) == 1


def test_the_log_never_holds_the_body_the_query_or_the_token(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    from convsync.core.logging import configure_logging

    configure_logging("json", "DEBUG")
    post(served, "site", json=order(9), headers=SITE)
    post(
        served,
        "forms",
        data={"Email": "x@example.com", "tranid": "1"},
        params={"token": "bad-guess-123"},
    )
    post(served, "site", data=b"{broken", headers={**SITE, "Content-Type": "application/json"})
    out = capsys.readouterr()
    text = out.out + out.err

    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    received = [line for line in lines if line.get("event", "").startswith("webhook")]
    assert [line["status"] for line in received] == [200, 403, 400]
    assert received[0]["source"] == "site" and received[0]["new"] == 1
    for secret in (
        *TOKENS.values(),
        "bad-guess-123",
        "buyer9@example.com",
        "Buyer9",
        "x@example.com",
        "{broken",
    ):
        assert secret not in text


class _Held:
    """The ledger, except that writes wait until ``release`` is set."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.writing = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)

    def write_chunk(self, *args: Any, **kwargs: Any) -> Any:
        self.writing.set()
        assert self.release.wait(10)
        return self.ledger.write_chunk(*args, **kwargs)


def test_a_request_in_hand_when_the_server_stops_is_recorded_and_answered(served: Served) -> None:
    held = _Held(served.ledger)
    served.server.app.recorder.ledger = held  # type: ignore[attr-defined]
    with ThreadPoolExecutor(2) as pool:
        sent = pool.submit(post, served, "site", json=order(10), headers=SITE)
        assert held.writing.wait(10)
        stopping = pool.submit(served.server.stop)
        held.release.set()
        stopping.result(timeout=30)
        response = sent.result(timeout=30)

    assert response.status_code == 200 and response.json()["new"] == 1
    assert len(served.conversions()) == 1
    with pytest.raises(requests.ConnectionError):
        post(served, "site", json=order(11), headers=SITE)


def test_a_scheduled_run_delivers_what_webhooks_recorded(tmp_path: Path, ledger: Ledger) -> None:
    loaded = load(tmp_path)
    vk = ScriptedDestination("vk", loaded.app.destinations["vk"])  # type: ignore[arg-type]
    pipeline = SyncPipeline(loaded, ledger, destinations={"vk": vk})
    with webhooks_served(loaded, ledger, pipeline) as server:
        url = f"http://127.0.0.1:{server.port}/webhooks/site"
        for n in (1, 2):
            assert requests.post(url, json=order(n), headers=SITE, timeout=10).status_code == 200
        summary = pipeline.run(SyncOptions())
        # a second post of an order already delivered changes nothing
        again = requests.post(url, json=order(1), headers=SITE, timeout=10)

    assert summary.status == "ok"
    assert sorted(p["click"] for batch in vk.batches for p in batch) == ["rb-1", "rb-2"]
    assert again.json()["duplicate"] == 1
    assert summary.sources["site"]["pulled"] == 0  # nothing to pull: they came in already


def test_a_port_in_use_is_a_clear_error(tmp_path: Path, ledger: Ledger) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        text = CONFIG.replace("port: 0", f"port: {port}")
        loaded = load(tmp_path, text)
        served = webhooks_served(loaded, ledger, SyncPipeline(loaded, ledger))
        with pytest.raises(UserError, match=rf"127.0.0.1:{port}.*webhooks.port"):
            served.__enter__()


def test_a_request_that_breaks_the_writer_fails_alone(served: Served) -> None:
    recorder = served.server.app.recorder  # type: ignore[attr-defined]
    held = _Held(served.ledger)
    recorder.ledger = held
    mapper = recorder.mappers["site"]
    real_map = mapper.map

    def map_or_break(records: Any) -> Any:
        if any(r.record_id == "o-666" for r in records):
            raise RuntimeError("a bug met by one record")
        return real_map(records)

    mapper.map = map_or_break
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(post, served, "site", json=order(1), headers=SITE)
        assert held.writing.wait(10)  # the writer holds order 1; the next three queue up
        others = [
            pool.submit(post, served, "site", json=order(n), headers=SITE) for n in (666, 2, 3)
        ]
        for _ in range(1000):  # up to 10 s for the three to be queued behind order 1
            if recorder._queue.qsize() >= 3:
                break
            threading.Event().wait(0.01)
        assert recorder._queue.qsize() == 3
        held.release.set()
        statuses = [first.result(30).status_code] + [f.result(30).status_code for f in others]

    assert statuses == [200, 503, 200, 200]
    assert [r[0] for r in served.conversions()] == ["o-1", "o-2", "o-3"]


def test_the_gil_switch_interval_is_short_while_serving_and_restored_after(
    tmp_path: Path, ledger: Ledger
) -> None:
    before = sys.getswitchinterval()
    loaded = load(tmp_path)
    with webhooks_served(loaded, ledger, SyncPipeline(loaded, ledger)) as server:
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_S)
        answered = requests.post(
            f"http://127.0.0.1:{server.port}/webhooks/site",
            json=order(1),
            headers=SITE,
            timeout=10,
        )
        assert answered.status_code == 200
    assert sys.getswitchinterval() == pytest.approx(before)
