"""`render(path)`: one call from a run directory (or table, TinyTroupe JSON, sweep) to report files."""

from __future__ import annotations

from pathlib import Path

from reports.build import build
from reports.load import load
from reports.output import ReportPaths, write
from reports.sweep import is_sweep_dir, render_sweep


def render(path: str | Path, out_dir: str | Path | None = None, control: str | None = None,
           paired: bool | None = None, force: bool = False) -> ReportPaths:
    """Writes report.md, report.html and figures/*.png into the run directory (or `out_dir`).
    A multirun directory (several run dirs, sweep_summary.csv) gets a sweep report.
    `control` / `paired` recompute the analysis as `trials analyze --control/--paired` would (into the
    run directory itself only with `force`, else `out_dir` is needed)."""
    if is_sweep_dir(Path(path)):
        return render_sweep(Path(path), out_dir)
    data = load(path, out_dir, control=control, paired=paired, force=force)
    out = data.out_dir
    fig_dir = out / "figures"
    out.mkdir(parents=True, exist_ok=True)
    doc = build(data, fig_dir)
    return write(doc, out, data.tables.dir)
