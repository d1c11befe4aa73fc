"""The HTML report in a real browser: headless Chromium loads report.html from disk, with no
console errors, every figure decoded, and a screenshot saved under the test's tmp_path.

Chromium and chromedriver come from Debian (`scripts/install-browser.sh`, run by `make test`).
If they are absent this test FAILS: the report's HTML would otherwise go unchecked in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_reports_support import make_run_dir, tt_22b

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

    paths = reports.render(tt_22b(), tmp_path / "tt")
    state = _check_page(driver, paths.html, tmp_path / "report-tt.png")
    assert state["n"] == 3


LAYOUT_JS = """
    const doc = document.documentElement;
    const headline = document.querySelector('table.headline');
    const box = headline ? headline.closest('.scroll') : null;
    const main = document.querySelector('main').getBoundingClientRect();
    const boxes = Array.from(document.querySelectorAll('.scroll, figure, .callout, p, ul, .excerpt'));
    return {page_scroll: doc.scrollWidth - doc.clientWidth, viewport: doc.clientWidth,
            summary_first: document.querySelector('section').id,
            summary_top: document.getElementById('summary').getBoundingClientRect().top,
            results_top: document.getElementById('results').getBoundingClientRect().top,
            box_overflow: box ? box.scrollWidth - box.clientWidth : -1,
            box_right: box ? box.getBoundingClientRect().right : -1, main_right: main.right,
            sticking_out: boxes.filter(b => b.getBoundingClientRect().right > main.right + 1).length,
            wins: document.querySelectorAll('td.win').length, losses: document.querySelectorAll('td.loss').length};
"""


@pytest.mark.parametrize("width", [900, 1400])
def test_report_layout_at_two_widths(driver, tmp_path, width):
    """Item 7: no horizontal page scroll at 900 px or 1400 px; the wide headline table scrolls inside
    its own box (never past the page); the summary comes before the headline results."""
    import reports

    paths = reports.render(tt_22b(), tmp_path / "tt")
    driver.set_window_size(width, 1200)
    driver.get(paths.html.as_uri())
    inner = driver.execute_script("return window.innerWidth")
    driver.set_window_size(width + (width - inner), 1200)  # the viewport itself is `width` px wide
    layout = driver.execute_script(LAYOUT_JS)
    assert layout["viewport"] <= width
    assert layout["page_scroll"] == 0, f"horizontal page scroll at {width} px: {layout}"
    assert layout["sticking_out"] == 0 and layout["box_right"] <= layout["main_right"] + 1, layout
    if width == 900:  # the 13-column headline table is wider than 900 px: it scrolls in its box
        assert layout["box_overflow"] > 0, layout
    assert layout["summary_first"] == "summary" and layout["summary_top"] < layout["results_top"]
    assert layout["wins"] and layout["losses"]  # the coloured verdict cells
    full = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(width + (width - inner), min(max(full, 800), 9000))
    shot = tmp_path / f"report-{width}.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    from PIL import Image

    assert Image.open(shot).size[0] == width + (width - inner)  # the screenshot is of that width
