"""Fixtures of the status page's browser tests: ``browser``, a headless Chromium with no
network but 127.0.0.1 (see ``tests/browser.py``).

One Chromium per test module (starting one takes about a second); each test gets it
back reset: desktop size, ``about:blank``, no cookies or cache, an empty request log.

Every test here that takes ``browser`` is marked ``browser``, so ``-m "not browser"``
leaves them out. Without Chromium and its driver they skip, naming the packages; under
CI (``CI`` set) they fail instead, since there ``make test`` installs them and a skip
would hide a broken install.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from tests import browser as harness

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()) and item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def shared_chromium() -> Iterator[webdriver.Chrome]:
    harness.require()
    with harness.chromium() as driver:
        yield driver


@pytest.fixture
def browser(shared_chromium: webdriver.Chrome) -> webdriver.Chrome:
    driver = shared_chromium
    driver.get("about:blank")
    harness.use_desktop(driver)
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    harness.requested_urls(driver)  # empties the log of what earlier tests loaded
    return driver
