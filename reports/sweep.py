"""Sweep reports: a multirun directory holding several run directories (and, when the runner
wrote it, sweep_summary.csv). Each point's statistics come from its own analysis tables; the
report plots metric change vs the swept parameter, with CIs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import yaml

from reports import figures, fmt
from reports.caveats import caveats
from reports.document import Bullets, Callout, Document, Figure, Para, Table
from reports.load import ReportError, RunData, is_run_dir, load
from reports.output import ReportPaths, write
from reports.runinfo import flatten
from reports.tables import relative_text

IGNORED = ("hydra", "resume", "out_dir", "output", "run_dir", "sweep_dir")


def run_dirs(root: Path, depth: int = 3) -> list[Path]:
    """Run directories at most `depth` levels below `root`, sorted."""
    found: list[Path] = []
    frontier = [root]
    for _ in range(depth):
        nxt = []
        for d in frontier:
            for child in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")):
                (found if is_run_dir(child) else nxt).append(child)
        frontier = nxt
    return sorted(found)


def is_sweep_dir(path: Path) -> bool:
    if not path.is_dir() or is_run_dir(path):
        return False
    return (path / "sweep_summary.csv").exists() or len(run_dirs(path)) >= 2


def overrides(run_dir: Path) -> dict[str, Any] | None:
    """The command-line overrides Hydra recorded for one sweep point (`.hydra/overrides.yaml`:
    `experiment=hello`, `llm.temperature=0.3`), values parsed as YAML (numbers stay numbers);
    None when the point has no readable record."""
    path = run_dir / ".hydra" / "overrides.yaml"
    try:
        items = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(items, list):
        return None
    out: dict[str, Any] = {}
    for item in map(str, items):
        key, sep, value = item.partition("=")
        if not sep or key.lstrip("+~").startswith("hydra."):
            continue
        try:
            out[key.lstrip("+~")] = yaml.safe_load(value) if value else value
        except yaml.YAMLError:
            out[key.lstrip("+~")] = value
    return out


def _differing(dicts: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = sorted({k for d in dicts for k in d})
    out = {}
    for key in keys:
        if any(part in key for part in IGNORED):
            continue
        values = [d.get(key) for d in dicts]
        if len({repr(v) for v in values}) > 1:
            out[key] = values
    return out


def swept(points: list[RunData]) -> dict[str, list[Any]]:
    """The swept parameters: the overrides whose values differ between the points (the `-m` keys,
    from each point's `.hydra/overrides.yaml`), not every config key that differs as a consequence
    (a swept `experiment=` changes dozens). Without that record (points copied or made by hand):
    the config keys whose values differ."""
    recorded = [overrides(p.source) for p in points]
    if all(r is not None for r in recorded):
        found = _differing([r for r in recorded if r is not None])
        if found:
            return found
    return _differing([flatten(p.config or {}) for p in points])


def short_names(keys: list[str]) -> dict[str, str]:
    """Each dotted key by its shortest trailing part that no other key ends with: `group_size` when
    unique, else `arms.treatment.group_size` vs `arms.control.group_size` (never two same labels)."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if not any(other != key and (other == tail or other.endswith("." + tail)) for other in keys):
                break
        out[key] = tail
    return out


def _param_values(params: dict[str, list[Any]], n: int) -> tuple[str, list[Any]]:
    if not params:
        return "run", [f"run {i}" for i in range(n)]
    if len(params) == 1:
        (key, values), = params.items()
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        return key, values if numeric else [str(v) for v in values]
    names = short_names(list(params))
    return " / ".join(params), [", ".join(f"{names[k]}={v[i]}" for k, v in params.items()) for i in range(n)]


STAT_COLUMNS = ("diff", "ci_low", "ci_high", "hedges_g", "p_value", "mean_control", "mean_treatment")


def _fingerprint(data: RunData) -> str | None:
    """The numbers a sweep point produced: its effects, or (no comparisons, e.g. one arm) its metric
    values; None when it has neither."""
    eff = data.tables.effects
    if not eff.empty:
        cols = [c for c in ("metric", "treatment", *STAT_COLUMNS) if c in eff.columns]
        return eff[cols].round(12).to_csv(index=False)
    m = data.metrics
    if m is not None and not m.empty and {"arm", "metric", "value"} <= set(m.columns):
        cols = [c for c in ("arm", "replicate", "agent", "metric", "value") if c in m.columns]
        return m[cols].round(12).to_csv(index=False)
    return None


def identical_groups(points: list[RunData], values: list[Any]) -> list[list[Any]]:
    """Groups (of 2+) of sweep points that produced exactly the same numbers: a sign that the swept
    parameter changed nothing (an unused key, a cached or scripted reply)."""
    groups: dict[str, list[Any]] = {}
    for data, value in zip(points, values):
        key = _fingerprint(data)
        if key is not None:
            groups.setdefault(key, []).append(value)
    return [g for g in groups.values() if len(g) > 1]


def _point_report(data: RunData) -> Path | None:
    """The point's own report.html; rendered now when the run has none yet."""
    html = data.source / "report.html"
    if not html.exists():
        from reports.build import build

        write(build(data, data.source / "figures"), data.source, data.tables.dir)
    return html if html.exists() else None


def href(relative: Path) -> str:
    """A relative path as a URL path: spaces, `?`, `#`, `%`, `:` ... percent-escaped (a sweep
    point's folder is named after its values, e.g. `llm.model=gpt 4o?`), `/` kept."""
    return quote(relative.as_posix(), safe="/=,")


def render_sweep(root: Path, out_dir: str | Path | None = None) -> ReportPaths:
    root = root.resolve()
    points = [load(d) for d in run_dirs(root)]
    if not points:
        raise ReportError(f"{root}: a sweep directory with no run directories below it")
    out = Path(out_dir).resolve() if out_dir else root
    out.mkdir(parents=True, exist_ok=True)
    param, values = _param_values(swept(points), len(points))
    rows, effects, links = [], [], {}
    for i, (value, data) in enumerate(zip(values, points)):
        eff = data.tables.effects.assign(param=value, run=str(data.source.relative_to(root)))
        effects.append(eff)
        man = data.manifest or {}
        html = _point_report(data)
        rows.append([str(value), str(data.source.relative_to(root)), str(man.get("status", "?")),
                     f"{man.get('n_failed', 0)} / {man.get('n_jobs_total', '?')}", str(len(eff)),
                     "report.html" if html else "not rendered"])
        if html:
            links[(i, 5)] = href(Path(os.path.relpath(html, out)))
    allfx = pd.concat(effects, ignore_index=True)
    if not pd.api.types.is_numeric_dtype(allfx["param"]):  # strings, lists, booleans: a categorical axis
        allfx["param"] = allfx["param"].astype(str).astype(object)
    doc = Document(f"Sweep report: {fmt.label(param)}", f"{len(points)} runs under {root}")
    over = doc.section("Overview", "overview")
    over.blocks.append(Para(f"Swept parameter: {param}. Each run has its own report and analysis tables."))
    over.blocks.append(Table([fmt.label(param), "Run directory", "Status", "Failed jobs", "Comparisons", "Report"],
                             rows, "One row per sweep point; each links to its own report.", links=links))
    same = identical_groups(points, values)
    if same:
        over.blocks.append(Callout("Identical results", [
            f"Sweep points {', '.join(map(str, g))} of {param} gave exactly the same results (effects, or metric "
            "values when there are no comparisons): the swept setting changed no number (an unused key, cached "
            "replies, or the scripted backend ignoring it)." for g in same]))
    if (root / "sweep_summary.csv").exists():
        over.blocks.append(Para(f"The runner's summary table: {root / 'sweep_summary.csv'}."))
    doc.section("How far to trust this sweep", "caveats").blocks.append(Callout("Caveats", caveats(points[0])))
    res = doc.section("Effects across the sweep", "results")
    alphas = sorted({p.alpha for p in points}, key=repr)
    alpha = alphas[0] if len(alphas) == 1 else None  # mixed levels: each row's CI is at its own run's
    ci = fmt.ci_name(alpha)
    res.blocks.append(Table(
        [fmt.label(param), "Metric", "Treatment", f"Difference [{ci}]", "Relative change", f"Hedges' g [{ci}]",
         "p", "p (Holm)"],
        [[str(r["param"]), fmt.metric(r["metric"]), str(r["treatment"]),
          fmt.with_ci(r["diff"], r["ci_low"], r["ci_high"]), relative_text(r),
          fmt.with_ci(r.get("hedges_g"), r.get("g_ci_low"), r.get("g_ci_high")), fmt.pval(r.get("p_value")),
          fmt.pval(r.get("p_holm"))] for _, r in allfx.iterrows()],
        "Differences are treatment − control within each run (the runs' own effects.csv); relative change = "
        "difference / |mean control|." + ("" if alpha is not None else " The runs' analyses differ in alpha "
                                          "or do not record it: each CI is at its own run's level (its summary.json)."),
        numeric={3, 4, 5, 6, 7}))
    fig = figures.sweep(allfx, param, out / "figures" / "sweep.png")
    figs = doc.section("Figures", "figures")
    figs.blocks.append(Figure(fig, f"Change (treatment − control) vs {fmt.label(param)}, {fmt.ci_name(alpha, True)}.", "900px")
                       if fig else Para("Nothing to plot (no comparisons)."))
    notes = doc.section("Notes", "notes")
    notes.blocks.append(Bullets([f"{d.source.relative_to(root)}: {n}" for d in points for n in d.notes]
                                or ["No notes from the analysis."]))
    return write(doc, out, out)
