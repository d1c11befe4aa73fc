"""The HTML report in a real browser: headless Chromium loads report.html from disk, with no
console errors, every figure decoded, and a screenshot saved under the test's tmp_path.

Chromium and chromedriver come from Debian (`scripts/install-browser.sh`, run by `make test`).
If they are absent this test FAILS: the report's HTML would otherwise go unchecked in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_reports_support import TT_22B, make_run_dir

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,2400"]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"headless Chromium is required for the report browser test but {CHROMIUM} or "
                    f"{CHROMEDRIVER} is missing. Run `bash scripts/install-browser.sh` (needs apt-get) "
                    "and rerun the tests.", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chrome-profile')}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    yield drv
    drv.quit()


def _check_page(driver, html: Path, shot: Path) -> dict:
    driver.get(html.as_uri())
    state = driver.execute_script("""
        const imgs = Array.from(document.images);
        return {ready: document.readyState, n: imgs.length, title: document.title,
                bad: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
                external: Array.from(document.querySelectorAll('[src],[href]'))
                    .map(e => e.getAttribute('src') || e.getAttribute('href'))
                    .filter(u => /^(https?:)?\\/\\//.test(u)),
                sections: Array.from(document.querySelectorAll('h2')).map(h => h.textContent)};
    """)
    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, f"console errors in {html}: {severe}"
    assert state["ready"] == "complete"
    assert not state["bad"], f"figures that did not decode: {state['bad']}"
    assert not state["external"], f"the report fetches from the network: {state['external']}"
    full_height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(max(full_height, 800), 9000))
    assert driver.save_screenshot(str(shot)), "screenshot failed"
    assert shot.stat().st_size > 10_000
    return state


def test_run_report_renders_in_chromium(driver, tmp_path):
    import reports

    paths = reports.render(make_run_dir(tmp_path))
    state = _check_page(driver, paths.html, tmp_path / "report-run.png")
    assert state["n"] == 3  # forest, trade-off, distributions
    assert "Headline results" in state["sections"] and "Quality of the run" in state["sections"]


def test_tinytroupe_report_renders_in_chromium(driver, tmp_path):
    import reports

    paths = reports.render(TT_22B, tmp_path / "tt")
    state = _check_page(driver, paths.html, tmp_path / "report-tt.png")
    assert state["n"] == 3
