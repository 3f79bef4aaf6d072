"""The report in a real browser: it loads nothing from anywhere, raises no error, runs no planted
script, shows its sections, and its table sort works.

Headless Chromium through Playwright, with Debian's /usr/bin/chromium (CI installs it with apt;
no ``playwright install``). A full-page screenshot is saved under the test's tmp_path and copied
to tests/report/_artifacts/report.png when that folder is writable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlsmith.report import write_report
from mlsmith.report._html import SECTIONS

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "_artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_SCHEMES = ("file:", "data:", "about:")


@pytest.fixture(scope="module")
def browser() -> Any:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing: pip install playwright")
    with sync_playwright() as p:
        # Playwright gives the browser a fresh temporary profile (--user-data-dir)
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


class PageLog:
    """Console errors, page errors, dialogs and every request of one page."""

    def __init__(self, page: Any) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.console_errors.append(m.text)
                if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def check(self) -> None:
        assert self.console_errors == []
        assert self.page_errors == []
        assert self.dialogs == []
        foreign = [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]
        assert foreign == [], f"the report asked the network for {foreign}"
        assert self.requests, "no request recorded: the page did not load"


def open_report(browser: Any, report: Path) -> tuple[Any, Any, PageLog]:
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  java_script_enabled=True, offline=True)
    page = context.new_page()
    log = PageLog(page)
    page.goto(report.resolve().as_uri(), wait_until="load")
    return context, page, log


def test_report_renders_cleanly_in_chromium(browser, full_runs, copy_of, tmp_path) -> None:
    run = copy_of(full_runs["penguins"])
    report = write_report(run)
    context, page, log = open_report(browser, report)
    try:
        for sid, title in SECTIONS:
            heading = page.locator(f"section#{sid} > h2")
            assert heading.is_visible(), sid
            assert heading.inner_text() == title
        assert page.locator("header h1").inner_text() == "Report: predicting species"
        # every inline figure is laid out with a real size
        sizes = page.eval_on_selector_all(
            "figure svg, figure img", "els => els.map(e => e.getBoundingClientRect().width)")
        assert len(sizes) >= 8 and min(sizes) > 100
        # the leaderboard sorts when a header is clicked
        table = page.locator("table.leaderboard")
        header = table.locator("th", has_text="CV log_loss")
        first = table.locator("tbody tr").first.locator("td.model").inner_text()
        header.click()
        assert header.get_attribute("aria-sort") == "ascending"
        header.click()
        assert header.get_attribute("aria-sort") == "descending"
        assert table.locator("tbody tr").first.locator("td.model").inner_text() != first
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 50_000
        log.check()
    finally:
        context.close()
    if _writable(ARTIFACTS):
        shutil.copyfile(shot, ARTIFACTS / "report.png")


def test_a_long_leaderboard_fits_the_page(browser, long_search_run, tmp_path) -> None:
    """At 1200 px: one line per leaderboard row, no table wider than the content column, and
    every row one click away in a closed <details>."""
    report = write_report(long_search_run, tmp_path / "long.html")
    context = browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
    page = context.new_page()
    log = PageLog(page)
    try:
        page.goto(report.resolve().as_uri(), wait_until="load")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1200
        main_width = page.evaluate("document.querySelector('main').clientWidth")
        table = page.locator("table.leaderboard")
        assert table.bounding_box()["width"] <= main_width
        heights = table.evaluate("t => Array.from(t.tBodies[0].rows, r => r.offsetHeight)")
        assert 25 <= len(heights) < 40 and max(heights) < 34  # one line each
        details = page.locator("details.board-all")
        assert details.is_visible() and not details.evaluate("d => d.open")
        assert not page.locator("table.board-all").is_visible()
        details.locator("summary").click()
        full = page.locator("table.board-all")
        assert full.is_visible() and full.bounding_box()["width"] <= main_width
        assert full.evaluate("t => t.tBodies[0].rows.length") == 150
        assert max(full.evaluate("t => Array.from(t.tBodies[0].rows, r => r.offsetHeight)")) < 34
        log.check()
    finally:
        context.close()


def test_planted_script_does_not_run(browser, big_run, copy_of, tmp_path, hostile) -> None:
    run = copy_of(big_run)
    report = write_report(run, tmp_path / "big.html")
    context, page, log = open_report(browser, report)
    try:
        name, _ = hostile
        # the hostile column name is shown as text, and no alert() fired
        finding = page.locator("#audit .finding").first
        assert finding.is_visible() and f"{name} is an id" in finding.inner_text()
        assert page.evaluate("document.scripts.length") == 1
        log.check()
    finally:
        context.close()


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)
