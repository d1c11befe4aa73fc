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


def _trials(tmp_path: Path, *args: str):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "trials.cli", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env)


def test_resume_writes_no_empty_hydra_folder_beside_the_run(tmp_path):
    run = tmp_path / "runs" / "hello" / "first"
    proc = _trials(tmp_path, "run", "experiment=hello", "llm=scripted", "cache.mode=off", "run.replicates=2",
                   "run.analyze=false", "run.report=false", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    overrides = (run / ".hydra" / "overrides.yaml").read_text()
    shutil.rmtree(run / "jobs" / "control" / "1")
    proc = _trials(tmp_path, "run", f"run.resume_dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming: 1 of 2 jobs already done" in proc.stderr
    assert (run / "jobs" / "control" / "1" / "job.json").is_file()
    folders = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob(".hydra"))
    assert folders == ["runs/hello/first/.hydra"]  # nothing beside the run (was runs/brainstorm_variety/<ts>/)
    assert (run / ".hydra" / "overrides.yaml").read_text() == overrides  # the run's own record is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cache", "runs"] and [p.name for p in (tmp_path / "runs").iterdir()] == ["hello"]
