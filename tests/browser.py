"""Headless Chromium for the browser tests: Debian's ``chromium`` driven through its
``chromedriver`` by Selenium, cut off from every network but 127.0.0.1, with the
requests a page made read back from the DevTools performance log.

No network, in two layers (both checked on Chromium 156):

- ``--host-resolver-rules`` resolves every host but 127.0.0.1 to nothing, IP literals
  included (``net::ERR_NAME_NOT_RESOLVED``);
- ``--proxy-server`` points at a loopback port that is bound but never listens, so
  whatever the resolver rules would let through is refused there
  (``net::ERR_PROXY_CONNECTION_FAILED``); Chromium always bypasses its proxy for
  loopback, so the page under test is reached directly.

Selenium Manager (which downloads drivers and browsers) is never invoked: a driver path
given to ``Service`` makes Selenium skip it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = "chromium chromium-driver"

DESKTOP = (1280, 2000)
PHONE = (390, 844)  # an iPhone 12–15's viewport in CSS pixels

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS_ENV = "CONVSYNC_TEST_ARTIFACTS"

FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in CI, and containers without user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a container's /dev/shm is often 64 MB
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)

# what a page may load without the network: its own server and inline content
_LOCAL_SCHEMES = frozenset({"data", "about"})
_LOOPBACK_SCHEMES = frozenset({"http", "https", "ws", "wss"})


def missing() -> str | None:
    """Why no browser test can run here, or ``None`` when Chromium and its driver are
    installed."""
    absent = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not absent:
        return None
    return (
        f"{' and '.join(absent)} not installed: `make test` installs Debian's {PACKAGES}"
        f" (as root or with passwordless sudo), or run `apt-get install {PACKAGES}` as root"
    )


def require() -> None:
    """Skips the calling test when Chromium is missing; under CI (``CI`` set) fails it
    instead: there ``make test`` installs Chromium, and a skip would hide a broken
    install."""
    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI runs the browser tests, it never skips them")
    pytest.skip(reason)


def chrome_options(user_data_dir: Path, proxy_port: int) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    options.add_argument(f"--proxy-server=http://127.0.0.1:{proxy_port}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return options


@contextmanager
def _refusing_port() -> Iterator[int]:
    """A loopback port that refuses every connection while the context lasts: bound, so
    nothing else can listen there, but never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextmanager
def chromium(proxy_port: int | None = None) -> Iterator[webdriver.Chrome]:
    """A headless Chromium in a fresh profile, quit (and its profile removed) on exit.
    ``proxy_port``: where a test listens to see what would have left the machine; by
    default a port that refuses."""
    with (
        tempfile.TemporaryDirectory(
            prefix="convsync-chromium-", ignore_cleanup_errors=True
        ) as profile,
        _refusing_port() as refusing,
    ):
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)),
            options=chrome_options(Path(profile), proxy_port or refusing),
        )
        try:
            # it starts on its new-tab page, whose chrome:// requests would be in the log
            driver.get("about:blank")
            requested_urls(driver)
            yield driver
        finally:
            driver.quit()


def use_desktop(driver: webdriver.Chrome) -> None:
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.set_window_size(*DESKTOP)


def use_phone(driver: webdriver.Chrome) -> None:
    """Lays pages out as a phone does: 390 CSS pixels wide, honouring ``<meta
    name=viewport>`` (a page without it is laid out 980 px wide and shrunk, as on a real
    phone). Takes effect at once, on the page already open too."""
    width, height = PHONE
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )


def horizontal_overflow(driver: webdriver.Chrome) -> int:
    """How many CSS pixels the page is wider than the layout viewport (0: nothing to
    scroll sideways). ``window.innerWidth`` would not tell: a phone zooms out to fit a
    page too wide for it, and the visual viewport grows with it."""
    overflow = driver.execute_script(
        "const root = document.documentElement; return root.scrollWidth - root.clientWidth"
    )
    return max(0, int(overflow))


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the browser requested (or opened a WebSocket to) since the last call:
    reading the performance log empties it."""
    urls: list[str] = []
    # selenium leaves get_log unannotated
    entries = driver.get_log("performance")  # type: ignore[no-untyped-call]
    for entry in entries:
        event = json.loads(entry["message"])["message"]
        if event["method"] == "Network.requestWillBeSent":
            urls.append(event["params"]["request"]["url"])
        elif event["method"] == "Network.webSocketCreated":
            urls.append(event["params"]["url"])
    return urls


def is_external(url: str) -> bool:
    """Whether fetching ``url`` needs a network: anything but 127.0.0.1 and inline
    content."""
    parts = urlsplit(url)
    if parts.scheme in _LOCAL_SCHEMES:
        return False
    return not (parts.scheme in _LOOPBACK_SCHEMES and parts.hostname == "127.0.0.1")


def external_requests(driver: webdriver.Chrome) -> list[str]:
    """The URLs requested since the last look at the log that would need a network."""
    return [url for url in requested_urls(driver) if is_external(url)]


def artifacts_dir() -> Path:
    """``$CONVSYNC_TEST_ARTIFACTS``, else ``test-artifacts/`` at the repository root."""
    return Path(os.environ.get(ARTIFACTS_ENV) or ROOT / "test-artifacts")


def save_screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """The whole page (not just the viewport) as ``<artifacts>/<name>.png``."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    folder = artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
