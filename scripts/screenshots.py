"""Regenerates the README's report screenshots (docs/report-summary.png, docs/report-tradeoff.png)
from the TinyTroupe paper's 2.2b result file, in headless Chromium at 1100 px.

    PYTHONPATH=. python scripts/screenshots.py [--input FILE] [--out docs]

Needs Chromium + chromedriver (`bash scripts/install-browser.sh`) and selenium."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TT_22B = (ROOT.parent / "shared" / "tinytroupe-data" / "paper_results"
          / "brainstorming_and_focus_group_quantitative_experimentation_2.2b.json")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(TT_22B), help="run directory, metrics table or TinyTroupe .json")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where the PNGs go")
    parser.add_argument("--width", type=int, default=1100)
    args = parser.parse_args(argv)

    import reports
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = reports.render(args.input, Path(tmp) / "report")
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for flag in [*FLAGS, f"--window-size={args.width},1400", f"--user-data-dir={tmp}/profile"]:
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            driver.get(paths.html.as_uri())
            shots = {"report-summary.png": driver.find_element(By.ID, "summary"),
                     "report-tradeoff.png": driver.find_element(By.CSS_SELECTOR, 'img[alt^="Trade-off"]')
                     .find_element(By.XPATH, "..")}
            for name, element in shots.items():
                driver.execute_script("arguments[0].scrollIntoView()", element)
                element.screenshot(str(out / name))
                print(f"wrote {out / name}")
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
