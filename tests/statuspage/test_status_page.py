"""The status page over HTTP, as ``convsync run`` serves it: what it shows of a known
history, in which language, to whom, and what it never shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from convsync.service.statuspage.access import COOKIE
from convsync.service.statuspage.data import gather
from convsync.store.ledger import Ledger
from tests.integration import conftest as integration
from tests.statuspage.history import (
    DROPPED_TO,
    ENV,
    PLANTED_EMAIL,
    PLANTED_PHONE,
    PURCHASES_A_DAY,
    STOPPED,
    utc_now,
)
from tests.statuspage.served import Seeded, seeded_folder, served

pg_url = integration.pg_url
TOKEN = "page-token-0123456789abcdef"
UI_TOKEN = f"ui:\n  language: ru\n  auth: {{token: {TOKEN}}}\n"
UI_BASIC = "ui:\n  auth: {username: marketer, password: s3cret-pass}\n"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seeded_folder(tmp_path_factory.mktemp("seeded"))


@pytest.fixture
def page_url(seeded: Seeded, tmp_path: Path) -> Iterator[str]:
    with served(seeded.copy_to(tmp_path)) as page:
        yield page.base


def _get(url: str, **kwargs: object) -> requests.Response:
    return requests.get(url, timeout=30, allow_redirects=False, **kwargs)  # type: ignore[arg-type]


def _cells(html: str, goal: str, destination: str, period: str) -> dict[str, str]:
    panel = html.split(f'id="panel-{period}"', 1)[1].split("</div>\n    </div>", 1)[0]
    row = panel.split(f'data-goal="{goal}" data-destination="{destination}"', 1)[1]
    row = row.split("</tr>", 1)[0]
    return dict(re.findall(r'data-stage="(\w+)" data-value="([^"]*)"', row))


def test_the_page_shows_the_history_and_the_stopped_destination(
    page_url: str, seeded: Seeded
) -> None:
    answer = _get(page_url + "/")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    html = answer.text
    # one destination of three stopped: degraded (all stopped would be failed)
    assert 'id="service-status" data-status="degraded"' in html
    vk = html.split('data-destination="vk" data-status="failed"', 1)[1].split("</tr>", 1)[0]
    assert STOPPED in vk
    # the 30 days' funnel: every purchase but today's settled at google, 1 in 10 rejected
    cells = _cells(html, "purchase", "google", "30d")
    days = seeded.history.days[-30:]
    total = sum(DROPPED_TO if d == seeded.history.dropped else PURCHASES_A_DAY for d in days)
    assert int(cells["conversions"]) == int(cells["planned"]) == total
    # settled days (not today): 2 of each day's 20 rejected, none of the dropped day's 4
    full_days = [d for d in days[:-1] if d != seeded.history.dropped]
    assert int(cells["rejected"]) == 2 * len(full_days)
    # metrica: every settled delivery has a verdict, 3 of each 4 matched
    metrica = _cells(html, "purchase", "metrica", "30d")
    matched, accepted = int(metrica["matched"]), int(metrica["accepted"])
    assert float(metrica["match_rate"]) == pytest.approx(matched / accepted) == 0.75


def test_the_dropped_day_alone_is_marked(page_url: str, seeded: Seeded) -> None:
    html = _get(page_url + "/").text
    purchase = html.split('class="volume" data-goal="purchase"', 1)[1].split("</svg>", 1)[0]
    marked = re.findall(r'class="bar anomaly"[^>]*data-day="([\d-]+)" data-count="(\d+)"', purchase)
    assert marked == [(seeded.history.dropped.isoformat(), str(DROPPED_TO))]
    lead = html.split('class="volume" data-goal="lead"', 1)[1].split("</svg>", 1)[0]
    assert "anomaly" not in lead  # 3 a day is under volume_drop's min_usual: never judged


def test_nothing_personal_or_secret_is_shown(page_url: str) -> None:
    html = _get(page_url + "/").text + _get(page_url + "/?lang=ru").text
    assert "order p" in html  # the failures name their orders …
    for leak in (PLANTED_EMAIL, "example.com", PLANTED_PHONE, "916 123", *ENV.values()):
        assert leak not in html  # … but not what a careless CRM put beside them
    assert "&lt;email&gt;" in html and "&lt;phone&gt;" in html


def test_russian_on_request_and_by_config(seeded: Seeded, tmp_path: Path) -> None:
    with served(seeded.copy_to(tmp_path / "en")) as page:
        english = _get(page.base + "/").text
        russian = _get(page.base + "/?lang=ru").text
    assert '<html lang="en">' in english and "Funnel" in english
    assert '<html lang="ru">' in russian and "Воронка" in russian and "сбой" in russian
    with served(seeded.copy_to(tmp_path / "ru", UI_TOKEN)) as page:
        by_config = _get(page.base + "/", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert '<html lang="ru">' in by_config


def test_beyond_localhost_without_auth_the_page_is_refused_but_probes_are_not(
    seeded: Seeded, tmp_path: Path
) -> None:
    with served(seeded.copy_to(tmp_path), host="0.0.0.0") as page:
        refused = _get(page.base + "/")
        health = _get(page.base + "/healthz")
        metrics = _get(page.base + "/metrics")
    assert refused.status_code == 403
    assert "ui.auth" in refused.text and "<" not in refused.text
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert metrics.status_code == 200 and "convsync_up" in metrics.text


def test_a_token_signs_in_once_and_a_cookie_keeps_it(seeded: Seeded, tmp_path: Path) -> None:
    with served(seeded.copy_to(tmp_path, UI_TOKEN), host="0.0.0.0") as page:
        assert _get(page.base + "/").status_code == 401
        assert _get(page.base + "/?token=wrong-token-0123456789").status_code == 401
        signed_in = _get(page.base + f"/?token={TOKEN}&lang=en")
        assert signed_in.status_code == 303
        assert signed_in.headers["Location"] == "/?lang=en"  # the token leaves the address
        cookie = signed_in.cookies[COOKIE]
        assert TOKEN not in cookie and "HttpOnly" in signed_in.headers["Set-Cookie"]
        again = _get(page.base + "/?lang=en", cookies={COOKIE: cookie})
        assert again.status_code == 200 and "Funnel" in again.text
        assert _get(page.base + "/", cookies={COOKIE: "forged"}).status_code == 401
        bearer = _get(page.base + "/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200
        assert _get(page.base + "/healthz").status_code == 200  # probes need no token


def test_basic_auth_asks_the_browser_for_a_password(seeded: Seeded, tmp_path: Path) -> None:
    with served(seeded.copy_to(tmp_path, UI_BASIC), host="0.0.0.0") as page:
        asked = _get(page.base + "/")
        wrong = _get(page.base + "/", auth=("marketer", "wrong-pass"))
        right = _get(page.base + "/", auth=("marketer", "s3cret-pass"))
    assert asked.status_code == 401 and asked.headers["WWW-Authenticate"].startswith("Basic")
    assert wrong.status_code == 401
    assert right.status_code == 200


def test_read_only_and_nothing_else_served(page_url: str) -> None:
    posted = requests.post(page_url + "/", timeout=30)
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
    assert _get(page_url + "/admin").status_code == 404


def test_a_ledger_that_cannot_be_read_answers_503_and_the_server_goes_on(
    seeded: Seeded, tmp_path: Path
) -> None:
    with served(seeded.copy_to(tmp_path)) as page:
        page.ledger.close()
        for leftover in tmp_path.glob("ledger.db*"):
            leftover.unlink()  # the next connection finds an empty database: no tables
        broken = _get(page.base + "/")
        assert broken.status_code == 503
        assert "status page failed" in broken.text and "Traceback" not in broken.text
        assert _get(page.base + "/healthz").status_code in (200, 503)  # still answering


@pytest.mark.postgres
def test_postgresql_gives_the_page_the_same_numbers(
    pg_url: str, seeded: Seeded, tmp_path: Path
) -> None:
    on_pg = seeded_folder(tmp_path, pg_url)
    from convsync.config.loader import load_config

    loaded = load_config(tmp_path / "convsync.yaml", env=ENV)
    now = utc_now()
    health = {"status": "ok", "destinations": {}}
    with Ledger.open(pg_url) as pg, Ledger.open(f"sqlite:///{seeded.folder / 'ledger.db'}") as lite:
        a, b = gather(loaded.app, pg, health, now), gather(loaded.app, lite, health, now)
    assert on_pg.history.today == seeded.history.today
    assert a.volumes == b.volumes and a.rates == b.rates
    assert [list(p.funnel) for p in a.periods] == [list(p.funnel) for p in b.periods]
    assert any(d.anomaly for d in a.volumes["purchase"])
    assert a.periods[2].funnel and any(day.rate for day in a.rates["metrica"])  # not empty


def test_a_silent_source_is_named_with_why(seeded: Seeded) -> None:
    from convsync.config.loader import load_config
    from convsync.service.statuspage.render import render

    loaded = load_config(seeded.folder / "convsync.yaml", env=ENV)
    why = "no new records for 3 d (the last recorded 2026-12-01 10:00 UTC), longer than …"
    health = {"status": "degraded", "sources": {"crm": {"status": "degraded", "reason": why}}}
    with Ledger.open(f"sqlite:///{seeded.folder / 'ledger.db'}", read_only=True) as ledger:
        html = render(gather(loaded.app, ledger, health, utc_now()), "ru")
    block = html.split('data-source="crm"', 1)[1].split("</div>", 1)[0]
    assert "Источник crm" in block and why in block


def test_google_ads_upload_summaries_stand_in_for_matches(seeded: Seeded, tmp_path: Path) -> None:
    from convsync.store.platform_reports import PlatformDay

    folder = seeded.copy_to(tmp_path)
    yesterday = seeded.history.today - timedelta(days=1)
    with Ledger.open(f"sqlite:///{folder / 'ledger.db'}") as ledger:
        day = PlatformDay("purchase", 111, yesterday, 70, 10, 5, {"CLICK_NOT_FOUND": 0.2})
        ledger.save_platform_summaries("google", [day], read_on=yesterday, now=utc_now())
    with served(folder) as page:
        html = _get(page.base + "/").text
    row = html.split('id="panel-7d"', 1)[1].split('data-destination="google"', 1)[1]
    matched = row.split('data-stage="matched"', 1)[1].split("</td>", 1)[0]
    assert matched.endswith(">70*")
    rate = row.split('data-stage="match_rate" data-value="', 1)[1].split('"', 1)[0]
    assert float(rate) == pytest.approx(70 / 80)
    note = row.split('class="reasons"', 1)[1].split("</td>", 1)[0]
    assert "70 successful, 10 failed, 5 pending" in note
    assert f"alerts of {yesterday.isoformat()}: CLICK_NOT_FOUND 20.0 %" in note


def test_report_names_the_stopped_destination_and_why(seeded: Seeded, tmp_path: Path) -> None:
    import json

    from tests.integration.test_cli import convsync

    folder = seeded.copy_to(tmp_path)
    env = {**ENV, "CONVSYNC_DATABASE_URL": f"sqlite:///{folder / 'ledger.db'}"}
    table = convsync("report", cwd=folder, env=env)
    assert table.returncode == 0, table.stderr
    assert "Destinations: google ok, metrica ok, vk failed" in table.stdout
    assert f"vk: {STOPPED}" in " ".join(table.stdout.split())
    document = json.loads(convsync("report", "--format", "json", cwd=folder, env=env).stdout)
    assert document["health"]["status"] == "degraded"
    assert document["health"]["destinations"]["vk"]["reason"] == STOPPED
    # without a readable config the report still reads the ledger, and says what it lacks
    (folder / "convsync.yaml").write_text("sources: [\n", encoding="utf-8")
    broken = convsync("report", cwd=folder, env=env)
    assert broken.returncode == 0 and "Funnel" in broken.stdout
    assert "the destinations' state is not shown" in broken.stderr
