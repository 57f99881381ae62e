"""The browser harness itself: Chromium renders a page served on 127.0.0.1 and Selenium
reads it back; whatever a page asks of the network is reported and never loads; the
phone layout is a phone's; screenshots land as PNG files; Selenium Manager never runs."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests import browser as harness
from tests.local_server import LocalServer, send

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

HEAD = '<meta charset="utf-8"><meta name="viewport" content="width=device-width">'

PAGES = {
    "/counts": f"""<!doctype html><html><head>{HEAD}<title>Counts</title></head><body>
        <h1>Конверсии</h1>
        <p>sent: <span id="sent">1 234</span></p>
        <p>pending: <span id="pending"></span></p>
        <script>document.getElementById("pending").textContent = String(6 * 7);</script>
        </body></html>""",
    "/external": f"""<!doctype html><html><head>{HEAD}
        <script src="http://cdn.example.org/a.js" onerror="window.cdnFailed = true"></script>
        </head><body>
        <img id="logo" src="https://example.com/x.png" alt="logo">
        <p id="done">rendered</p>
        </body></html>""",
    "/wide": f"""<!doctype html><html><head>{HEAD}</head><body>
        <div style="width: 600px">a table too wide for a phone</div></body></html>""",
}


class Pages(LocalServer):
    """Serves ``PAGES`` as HTML and records every path asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._lock = threading.Lock()
        super().__init__(self._handler_class(), "browser-pages")

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with pages._lock:
                    pages.paths.append(self.path)
                page = PAGES.get(self.path)
                if page is None:
                    send(self, 404, b"not found", {"Content-Type": "text/plain"})
                    return
                send(self, 200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def pages() -> Iterator[Pages]:
    with Pages() as server:
        yield server


@contextmanager
def serving(host: str) -> Iterator[tuple[str, list[str]]]:
    """A server on ``host`` that answers 403 to anything and records each request line
    (method and target): a page elsewhere than 127.0.0.1, or a proxy."""
    asked: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            asked.append(f"{self.command} {self.path}")
            self.close_connection = True
            # Chromium may hang up first (it also quits while asking)
            with suppress(ConnectionError):
                send(self, 403, b"refused", {"Content-Type": "text/plain"})

        do_GET = do_POST = do_CONNECT = _refuse

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Recorder)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (right after the signature)."""
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_page_on_127_0_0_1_renders_and_reads_back(
    browser: webdriver.Chrome, pages: Pages, request: pytest.FixtureRequest
) -> None:
    browser.get(pages.url("/counts"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Конверсии"
    assert browser.find_element(By.ID, "sent").text == "1 234"
    assert browser.find_element(By.ID, "pending").text == "42"  # its script ran
    assert browser.execute_script("return window.innerWidth") == harness.DESKTOP[0]
    assert harness.external_requests(browser) == []
    assert "/counts" in pages.paths
    assert request.node.get_closest_marker("browser") is not None


def test_what_a_page_asks_of_the_network_is_reported_and_never_loads(
    browser: webdriver.Chrome, pages: Pages
) -> None:
    browser.get(pages.url("/external"))
    assert browser.find_element(By.ID, "done").text == "rendered"
    assert sorted(harness.external_requests(browser)) == [
        "http://cdn.example.org/a.js",
        "https://example.com/x.png",
    ]
    logo = browser.find_element(By.ID, "logo")
    assert browser.execute_script("return arguments[0].complete", logo) is True
    assert browser.execute_script("return arguments[0].naturalWidth", logo) == 0
    assert browser.execute_script("return window.cdnFailed") is True
    # the log was emptied by the look above: a page that asks nothing adds nothing
    browser.get(pages.url("/counts"))
    assert harness.external_requests(browser) == []


def test_no_address_but_127_0_0_1_is_reached(browser: webdriver.Chrome, pages: Pages) -> None:
    """127.0.0.2 is this machine too, and Chromium's proxy never applies to loopback:
    only the resolver rules keep it (and so any IP address) out of reach."""
    with serving("127.0.0.2") as (elsewhere, reached):
        browser.get(pages.url("/counts"))
        error = browser.execute_async_script(
            """const done = arguments[arguments.length - 1];
            fetch(arguments[0], {cache: "no-store"}).then(() => done("loaded"), (e) => done(e.name));""",
            f"{elsewhere}/counts",
        )
    assert error == "TypeError"  # a network error
    assert reached == []
    assert harness.external_requests(browser) == [f"{elsewhere}/counts"]


@pytest.mark.browser
def test_what_gets_past_the_resolver_goes_to_the_proxy(pages: Pages) -> None:
    """Named hosts are not resolved by Chromium but handed to its proxy: here one that
    listens and records, in the harness one that refuses."""
    harness.require()
    with (
        serving("127.0.0.1") as (proxy, asked),
        harness.chromium(proxy_port=int(proxy.rsplit(":", 1)[1])) as driver,
    ):
        driver.get(pages.url("/external"))
        assert driver.find_element(By.ID, "done").text == "rendered"
    # Chromium asks hosts of its own too (accounts.google.com, update.googleapis.com, …),
    # --disable-background-networking notwithstanding: the refusing proxy stops those
    assert {"CONNECT example.com:443", "GET http://cdn.example.org/a.js"} <= set(asked)
    assert "/external" in pages.paths  # the page itself was reached directly


def test_the_phone_layout_is_390_wide_and_shows_what_overflows(
    browser: webdriver.Chrome, pages: Pages
) -> None:
    harness.use_phone(browser)
    browser.get(pages.url("/counts"))
    assert browser.execute_script("return window.innerWidth") == harness.PHONE[0]
    assert harness.horizontal_overflow(browser) == 0
    browser.get(pages.url("/wide"))
    assert harness.horizontal_overflow(browser) > 0

    harness.use_desktop(browser)
    browser.get(pages.url("/wide"))
    assert harness.horizontal_overflow(browser) == 0


def test_screenshots_are_whole_pages_in_the_artifacts_folder(
    browser: webdriver.Chrome, pages: Pages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(harness.ARTIFACTS_ENV, str(tmp_path / "artifacts"))
    browser.get(pages.url("/counts"))
    path = harness.save_screenshot(browser, "harness/counts [desktop]")
    assert path == tmp_path / "artifacts" / "harness-counts-desktop-.png"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert png_size(data)[0] == harness.DESKTOP[0]

    harness.use_phone(browser)
    browser.get(pages.url("/wide"))
    data = harness.save_screenshot(browser, "wide-phone").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert png_size(data)[0] > harness.PHONE[0]  # the whole page, overflow included


@pytest.mark.browser
def test_selenium_manager_never_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Selenium Manager downloads drivers and browsers; a stand-in put where Selenium
    looks for it records any call. Without a driver path Selenium does call it (so the
    stand-in would notice); the harness's Chromium starts without calling it."""
    harness.require()
    called = tmp_path / "called"
    stand_in = tmp_path / "selenium-manager"
    stand_in.write_text(f'#!/bin/sh\necho "$@" >> {called}\nexit 1\n')
    stand_in.chmod(0o755)
    monkeypatch.setenv("SE_MANAGER_PATH", str(stand_in))

    with pytest.raises(NoSuchDriverException):
        webdriver.Chrome(service=Service(), options=webdriver.ChromeOptions())
    assert called.read_text().startswith("--browser chrome")
    called.unlink()

    with harness.chromium() as driver:
        driver.get("about:blank")
    assert not called.exists()


@pytest.mark.parametrize(
    ("url", "external"),
    [
        ("http://127.0.0.1:8080/status", False),
        ("https://127.0.0.1/x.css", False),
        ("ws://127.0.0.1:9000/live", False),
        ("data:image/png;base64,iVBORw0KGgo=", False),
        ("about:blank", False),
        ("https://example.com/x.png", True),
        ("http://127.0.0.1.example.com/", True),
        ("http://localhost:8080/", True),
        ("http://[::1]:8080/", True),
        ("chrome://resources/js/util.js", True),
    ],
)
def test_what_counts_as_external(url: str, external: bool) -> None:
    assert harness.is_external(url) is external


def test_screenshots_go_to_test_artifacts_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(harness.ARTIFACTS_ENV, raising=False)
    assert harness.artifacts_dir() == harness.ROOT / "test-artifacts"
    assert (harness.ROOT / "pyproject.toml").is_file()


def test_without_chromium_the_reason_names_the_packages_and_make_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness, "CHROMEDRIVER", tmp_path / "chromedriver")
    reason = harness.missing()
    assert reason is not None
    assert str(tmp_path / "chromedriver") in reason
    assert "chromium chromium-driver" in reason
    assert "make test" in reason
