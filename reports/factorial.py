"""The factorial section, for experiments whose arms are cells of factors (metrics columns
`factor_<name>`, manifest `factors`): the main-effect and interaction table from analysis'
`factorial.csv` (metric, term, estimate, ci_low, ci_high, p, ...) and an interaction plot from
`factorial_cells.csv` (estimated marginal means with CIs), or, when that file is absent, from the
raw cell means of the metrics table (labelled as such, no CIs)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.io import read_csv_labels
from reports import fmt
from reports.document import Block, Figure, Para, Table
from reports.figures import ARM_COLORS, _save
from reports.load import RunData

PREFIX = "factor_"


def factors(data: RunData) -> list[str]:
    """Factor names (without the prefix): the manifest's, else the metrics table's factor columns."""
    man = (data.manifest or {}).get("factors")
    if isinstance(man, dict) and man:
        return [str(f) for f in man]
    cols = [] if data.metrics is None else [c for c in data.metrics.columns if str(c).startswith(PREFIX)]
    return [c[len(PREFIX):] for c in cols]


def _read(path: Path) -> pd.DataFrame | None:
    return read_csv_labels(path) if path.exists() and path.stat().st_size else None


def term_label(term: str) -> str:
    """`factor_correction[on]:factor_variety[on]` -> `correction = on × variety = on`."""
    parts = []
    for part in str(term).split(":"):
        m = re.fullmatch(rf"(?:{PREFIX})?(.+?)\[(.+)\]", part)
        parts.append(f"{m.group(1)} = {m.group(2)}" if m else part.removeprefix(PREFIX))
    return " × ".join(parts)


def _parse_cell(cell: str) -> dict[str, str]:
    """`factor_correction=off, factor_variety=on` -> {"correction": "off", "variety": "on"}."""
    out = {}
    for item in str(cell).split(", "):
        if "=" in item:
            k, v = item.split("=", 1)
            out[k.strip().removeprefix(PREFIX)] = v.strip()
    return out


def cell_means(data: RunData, names: list[str]) -> tuple[pd.DataFrame, bool]:
    """(metric, <factor columns>, mean, ci_low, ci_high) and whether the CIs are model-based.
    From factorial_cells.csv when present; else raw means of the metrics table (CIs NaN)."""
    cells = _read(data.tables.dir / "factorial_cells.csv")
    if cells is not None and {"metric", "cell", "emm"} <= set(cells.columns):
        parsed = pd.DataFrame([_parse_cell(c) for c in cells["cell"]], index=cells.index)
        out = pd.concat([cells[["metric"]], parsed], axis=1)
        out["mean"] = cells["emm"]
        out["ci_low"], out["ci_high"] = cells.get("ci_low", np.nan), cells.get("ci_high", np.nan)
        return out, True
    m = data.metrics
    cols = [PREFIX + f for f in names]
    if m is None or not set(cols) <= set(m.columns):
        return pd.DataFrame(), False
    raw = m.dropna(subset=["value"]).groupby(["metric", *cols], sort=False)["value"].mean().reset_index()
    raw = raw.rename(columns={PREFIX + f: f for f in names}).rename(columns={"value": "mean"})
    raw["ci_low"] = raw["ci_high"] = np.nan
    return raw, False


def interaction_plot(means: pd.DataFrame, names: list[str], path: Path, model_based: bool,
                     alpha: float | None = 0.05) -> Path | None:
    """One panel per metric: the first factor on x, one line per level of the second factor; CIs at
    the analysis' level (1 - alpha)."""
    if means.empty or not names or not set(names[:2]) <= set(means.columns):
        return None
    xf, lf = names[0], names[1] if len(names) > 1 else None
    metrics = list(dict.fromkeys(means["metric"]))
    cols = min(3, len(metrics))
    rows = int(np.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    levels_x = sorted(means[xf].astype(str).unique())
    for ax, name in zip(axes.flat, metrics):
        sub = means[means["metric"] == name]
        for j, level in enumerate(sorted(sub[lf].astype(str).unique()) if lf else [None]):
            s = sub[sub[lf].astype(str) == level] if lf else sub
            s = s.set_index(s[xf].astype(str)).reindex(levels_x)
            y, lo, hi = s["mean"].to_numpy(float), s["ci_low"].to_numpy(float), s["ci_high"].to_numpy(float)
            err = np.vstack([np.nan_to_num(y - lo), np.nan_to_num(hi - y)])
            ax.errorbar(np.arange(len(levels_x)) + 0.04 * j, y, yerr=err, fmt="-o", capsize=3,
                        color=ARM_COLORS[j % len(ARM_COLORS)], label=f"{lf} = {level}" if lf else None)
        ax.set_xticks(range(len(levels_x)), levels_x)
        ax.set_xlabel(xf)
        ax.set_title(fmt.metric(name))
        ax.set_ylabel("marginal mean" if model_based else "cell mean")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    if lf:
        axes.flat[0].legend(frameon=False, fontsize=8)
    fig.suptitle("Interaction plot: " + (f"estimated marginal means, {fmt.ci_name(alpha, True)}" if model_based
                                         else "raw cell means (no CIs: factorial_cells.csv absent)"), fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def section_blocks(data: RunData, fig_dir: Path) -> list[Block]:
    """The blocks of the Factorial section, or [] when the experiment has no factors."""
    names = factors(data)
    terms = _read(data.tables.dir / "factorial.csv")
    if not names and terms is None:
        return []
    blocks: list[Block] = []
    if terms is not None and {"metric", "term", "estimate"} <= set(terms.columns):
        rows = [[fmt.metric(r["metric"]), term_label(r["term"]) or "(no model)",
                 fmt.with_ci(r["estimate"], r.get("ci_low"), r.get("ci_high")), fmt.pval(r.get("p")),
                 str(r.get("note") if isinstance(r.get("note"), str) else "")] for _, r in terms.iterrows()]
        models = "; ".join(dict.fromkeys(str(m) for m in terms.get("model", pd.Series(dtype=str)).dropna() if str(m)))
        blocks.append(Table(["Metric", "Term", f"Estimate [{fmt.ci_name(data.alpha)}]", "p", "Note"], rows,
                            "Main effects and interactions (factorial.csv). Treatment coding: a main effect is "
                            "the change from the factor's reference level with the other factors at theirs; an "
                            "interaction is a difference of differences." + (f" Model: {models}." if models else ""),
                            numeric={2, 3}))
    else:
        blocks.append(Para(f"Factors {', '.join(names)}: the analysis wrote no factorial.csv, so main effects and "
                           "interactions are not shown (run `trials analyze` with a version that fits factorial "
                           "models)."))
    means, model_based = cell_means(data, names)
    path = interaction_plot(means, names, fig_dir / "interaction.png", model_based, data.alpha) if len(names) >= 1 else None
    if path:
        blocks.append(Figure(path, "Interaction plot: parallel lines mean no interaction; "
                             + (f"marginal means from the factorial model with {fmt.ci_name(data.alpha, True)}." if model_based
                                else "raw cell means from the metrics table (no CIs)."), "900px"))
    return blocks
