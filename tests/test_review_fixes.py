"""Small user-facing defects from the last review (CLI, run, reports, preflight): one test each."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest

import reports
from test_reports_support import make_run_dir


def _quick_analysis(run: Path, control: str | None = "control") -> None:
    import analysis

    analysis.analyze(analysis.load_table(run), control=control, n_boot=200, n_perm=500, mixed=False).write(
        run / "analysis")


def test_sweep_report_links_are_url_escaped(tmp_path):
    """A sweep point's folder is named after its values: spaces, `?` and `#` must not break the link
    (a raw `#` starts a fragment, `?` a query, a space ends a Markdown link)."""
    import re

    run = make_run_dir(tmp_path / "src", failed=None)
    _quick_analysis(run)
    root = tmp_path / "multirun"
    names = ["llm.model=gpt 4o", "llm.model=what?#1"]
    for name, temp in zip(names, (0.3, 0.9)):
        point = root / name
        shutil.copytree(run, point)
        cfg = (point / "config.yaml").read_text().replace("temperature: 0.7", f"temperature: {temp}")
        (point / "config.yaml").write_text(cfg)
    paths = reports.render(root)
    html, md = paths.html.read_text(), paths.markdown.read_text()
    hrefs = re.findall(r'<a href="([^"]+)">report.html</a>', html)
    assert hrefs == ["llm.model=gpt%204o/report.html", "llm.model=what%3F%231/report.html"]
    assert all((root / unquote(h)).is_file() for h in hrefs)
    assert "[report.html](llm.model=gpt%204o/report.html)" in md
    assert "[report.html](llm.model=what%3F%231/report.html)" in md
