"""The status page in a real browser (headless Chromium, no network but 127.0.0.1): the
numbers a marketer reads are the ones ``convsync report --format json`` prints for the
same period, the page needs nothing from the internet, works without a script and reads
on a phone. Screenshots go to the test artifacts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests import browser as harness
from tests.integration.test_cli import convsync
from tests.statuspage.history import STOPPED
from tests.statuspage.served import Page, Seeded, seeded_folder, served

#: the stages the page and the report both give per goal × destination
STAGES = (
    "pulled", "conversions", "planned", "sent", "accepted", "matched", "waiting",
    "rejected", "skipped",
)  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    seeded: Seeded = seeded_folder(tmp_path_factory.mktemp("browser"))
    with served(seeded.folder) as page:
        yield page


def _report(page: Page, since: str) -> dict[str, Any]:
    url = f"sqlite:///{page.folder / 'ledger.db'}"
    done = convsync(
        "--database-url", url, "report", "--since", since, "--format", "json", cwd=page.folder
    )
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _value(cell: WebElement) -> str:
    return cell.get_attribute("data-value") or ""


def _page_rows(panel: WebElement) -> dict[tuple[str, str], dict[str, str]]:
    rows = {}
    for row in panel.find_elements(By.CSS_SELECTOR, "tr.funnel-row"):
        cells = {
            td.get_attribute("data-stage") or "": td
            for td in row.find_elements(By.CSS_SELECTOR, "td[data-stage]")
        }
        key = (row.get_attribute("data-goal") or "", row.get_attribute("data-destination") or "")
        rows[key] = {stage: _value(td) for stage, td in cells.items()}
        # what a person reads is the number the attribute holds (English: 1,234)
        for stage in ("conversions", "planned", "sent"):
            text = cells[stage].get_attribute("textContent") or ""
            assert text.replace(",", "") == rows[key][stage]
    return rows


def test_the_funnels_match_the_report(browser: webdriver.Chrome, page: Page) -> None:
    browser.get(page.base + "/?lang=en")
    panels = browser.find_elements(By.CSS_SELECTOR, "#funnel .panel")
    assert [p.get_attribute("data-period") for p in panels] == ["today", "7d", "30d"]
    for panel in panels:
        since = panel.get_attribute("data-since") or ""
        report = _report(page, since)
        shown = _page_rows(panel)
        expected = {(r["goal"], r["destination"]): r for r in report["goals"]}
        assert set(shown) == set(expected), since
        for key, row in expected.items():
            for stage in STAGES:
                if stage == "matched" and not row["reports_matching"]:
                    assert shown[key][stage] == ""  # "—": the platform does not tell
                    continue
                want = row[stage]
                assert shown[key][stage] == ("" if want is None else str(want)), (key, stage)
            rate = shown[key]["match_rate"]
            if row["match_rate"] is None:
                assert rate == ""
            else:
                assert round(float(rate), 4) == row["match_rate"]
    seven_days = _page_rows(panels[1])
    assert int(seven_days[("purchase", "google")]["rejected"]) > 0  # the history is not empty
    harness.save_screenshot(browser, "status-page-desktop")
    assert harness.external_requests(browser) == []


def test_the_period_tabs_work_without_a_script(browser: webdriver.Chrome, page: Page) -> None:
    browser.get(page.base + "/")
    assert browser.find_element(By.ID, "panel-7d").is_displayed()
    assert not browser.find_element(By.ID, "panel-30d").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "label[for=p-30d]").click()
    assert browser.find_element(By.ID, "panel-30d").is_displayed()
    assert not browser.find_element(By.ID, "panel-7d").is_displayed()
    scripts = browser.find_elements(By.TAG_NAME, "script")
    assert scripts == []


def test_a_stopped_destination_and_the_marked_day_are_in_sight(
    browser: webdriver.Chrome, page: Page
) -> None:
    browser.get(page.base + "/")
    vk = browser.find_element(By.CSS_SELECTOR, 'tr.destination[data-destination="vk"]')
    assert vk.get_attribute("data-status") == "failed"
    assert STOPPED in vk.text  # visible text, not only in the markup
    marked = browser.find_elements(By.CSS_SELECTOR, '.volume[data-goal="purchase"] rect.anomaly')
    assert len(marked) == 1 and marked[0].size["height"] > 0
    anomaly_notes = browser.find_elements(By.CSS_SELECTOR, '.volume[data-goal="purchase"] .anomaly')
    assert any("−80 %" in note.text for note in anomaly_notes)
    dots = browser.find_elements(By.CSS_SELECTOR, '.rate[data-destination="metrica"] circle.dot')
    assert len(dots) >= 29  # a verdict every settled day


def test_on_a_phone_nothing_scrolls_sideways_but_the_tables(
    browser: webdriver.Chrome, page: Page
) -> None:
    browser.get(page.base + "/?lang=ru")
    harness.use_phone(browser)
    assert "Воронка" in browser.find_element(By.ID, "funnel").text
    assert harness.horizontal_overflow(browser) == 0
    chart = browser.find_element(By.CSS_SELECTOR, ".volume svg")
    assert 300 <= chart.size["width"] <= 390  # scaled to the screen
    path = harness.save_screenshot(browser, "status-page-phone-ru")
    assert Path(path).stat().st_size > 10_000
    assert harness.external_requests(browser) == []
