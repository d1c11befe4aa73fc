"""Static figures (matplotlib, Agg): forest plot of standardized effects, per-arm distributions,
the trade-off chart and, for sweeps, metric vs the swept parameter. Each function writes one PNG
and returns its path (or None when there is nothing to draw)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.fmt import ci_name, label, metric, num, signed  # noqa: E402

DPI = 110
ARM_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]
plt.rcParams.update({
    "font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25, "figure.facecolor": "white",
})


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _err(est: pd.Series, lo: pd.Series, hi: pd.Series) -> np.ndarray:
    """Asymmetric error bars; NaN bounds draw no whisker."""
    low = (est - lo).clip(lower=0).fillna(0).to_numpy(float)
    high = (hi - est).clip(lower=0).fillna(0).to_numpy(float)
    return np.vstack([low, high])


def arm_color(arms: list[str], arm: str) -> str:
    return ARM_COLORS[arms.index(arm) % len(ARM_COLORS)] if arm in arms else "#333333"


def forest(effects: pd.DataFrame, arms: list[str], path: Path, alpha: float | None = 0.05) -> Path | None:
    """Hedges' g with its CI for every metric x comparison; filled = Holm-adjusted p < alpha (the
    analysis' alpha, which also sets the CIs' level; 0.05 for the fill when it is not recorded)."""
    eff = effects.dropna(subset=["hedges_g"]) if "hedges_g" in effects else effects.iloc[0:0]
    if eff.empty:
        return None
    many = eff["treatment"].nunique() > 1
    eff = eff.iloc[::-1].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.42 * len(eff)))
    for ref in (0.2, 0.5, 0.8):
        for sign in (-1, 1):
            ax.axvline(sign * ref, color="#bbbbbb", lw=0.7, ls=":")
    ax.axvline(0, color="#333333", lw=1)
    ys = np.arange(len(eff))
    threshold = 0.05 if alpha is None else alpha
    for tr in eff["treatment"].unique():
        sub = eff[eff["treatment"] == tr]
        color = arm_color(arms, str(tr))
        lo, hi = sub.get("g_ci_low", sub["hedges_g"]), sub.get("g_ci_high", sub["hedges_g"])
        ax.errorbar(sub["hedges_g"], ys[sub.index], xerr=_err(sub["hedges_g"], lo, hi), fmt="none",
                    ecolor=color, elinewidth=1.6, capsize=3)
        sig = sub.get("p_holm", pd.Series(np.nan, index=sub.index)) < threshold
        ax.scatter(sub["hedges_g"], ys[sub.index], s=46, zorder=3, color=np.where(sig, color, "white"),
                   edgecolors=color, linewidths=1.6, label=str(tr))
    names = [metric(m) + (f"  ({t})" if many else "") for m, t in zip(eff["metric"], eff["treatment"])]
    ax.set_yticks(ys, names)
    has_ci = (eff[["g_ci_low", "g_ci_high"]].notna().all(axis=1) if {"g_ci_low", "g_ci_high"} <= set(eff.columns)
              else pd.Series(False, index=eff.index))
    ci_text = (ci_name(alpha) if bool(has_ci.all()) else f"{ci_name(alpha)} where computed (bare points: no CI)"
               if bool(has_ci.any()) else "no CIs computed")
    ax.set_xlabel(f"Hedges' g (treatment − control), {ci_text}   ·   dotted: ±0.2 / ±0.5 / ±0.8")
    ax.set_title(f"Standardized effects (filled: Holm-adjusted p < {threshold:g})")
    ax.grid(axis="y", alpha=0)
    if many:
        ax.legend(frameon=False, loc="best", fontsize=9)
    return _save(fig, path)


def _scale(sub: pd.DataFrame) -> str:
    """The metric's declared scale ("0-9", "count", ...) or ""."""
    return str(sub["scale"].dropna().iloc[0]) if "scale" in sub and sub["scale"].notna().any() else ""


def _is_score(sub: pd.DataFrame) -> bool:
    scale = _scale(sub)
    if scale:
        return scale == "0-9"
    vals = sub["value"].dropna()
    return bool(len(vals)) and vals.between(0, 9).all() and "qty" not in str(sub["metric"].iloc[0]).lower()


def _stacked(ax: plt.Axes, sub: pd.DataFrame, arms: list[str]) -> None:
    """0-9 scores: one bar per arm split into the share of each score (rounded)."""
    cmap = plt.get_cmap("RdYlGn")
    shares = np.zeros((len(arms), 10))
    for i, arm in enumerate(arms):
        raw = sub.loc[sub["arm"] == arm, "value"].dropna()
        vals = raw.round().clip(0, 9).astype(int)
        if len(vals):
            shares[i] = vals.value_counts(normalize=True).reindex(range(10), fill_value=0).to_numpy()
            ax.text(1.02, i, f"mean {num(raw.mean())}", va="center", fontsize=8,
                    transform=ax.get_yaxis_transform())
    lefts = np.cumsum(shares, axis=1) - shares
    for score in range(10):  # one call per score keeps drawing fast
        ax.barh(np.arange(len(arms)), shares[:, score], left=lefts[:, score], color=cmap(score / 9),
                edgecolor="white", lw=0.5, height=0.6)
        for i in np.flatnonzero(shares[:, score] >= 0.07):
            ax.text(lefts[i, score] + shares[i, score] / 2, i, str(score), ha="center", va="center", fontsize=7.5,
                    color="white" if score in (0, 1, 8, 9) else "black")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of scores (0 = red … 9 = green)")


def _dots(ax: plt.Axes, sub: pd.DataFrame, arms: list[str], stacked: bool) -> None:
    """Counts: a dot per observation, identical values stacked; other scales: a jittered strip."""
    rng = np.random.default_rng(0)
    for i, arm in enumerate(arms):
        vals = sub.loc[sub["arm"] == arm, "value"].dropna().to_numpy(float)
        if not len(vals):
            continue
        if stacked:
            xs, ys = [], []
            for v, k in zip(*np.unique(vals, return_counts=True)):
                xs += [v] * k
                ys += list(i - 0.3 + 0.6 * (np.arange(k) + 0.5) / max(k, 1))
        else:
            xs, ys = vals, i + rng.uniform(-0.22, 0.22, len(vals))
        ax.scatter(xs, ys, s=24, alpha=0.75, color=arm_color(arms, arm), edgecolors="none")
        ax.plot([vals.mean()] * 2, [i - 0.35, i + 0.35], color="#222222", lw=2)
    ax.set_xlabel("value (bar = mean)")


def distributions(metrics: pd.DataFrame | None, arms: list[str], path: Path) -> Path | None:
    """Small multiples, one panel per metric, one row per arm."""
    if metrics is None or metrics.empty or not {"arm", "metric", "value"} <= set(metrics.columns):
        return None
    names = list(dict.fromkeys(metrics["metric"]))
    arms = [a for a in arms if a in set(metrics["arm"])] or list(dict.fromkeys(metrics["arm"]))
    cols = 2 if len(names) > 1 else 1
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 0.6 + (0.55 * len(arms) + 1.0) * rows),
                             squeeze=False)
    for ax, name in zip(axes.flat, names):
        sub = metrics[metrics["metric"] == name]
        if _is_score(sub):
            _stacked(ax, sub, arms)
        else:
            _dots(ax, sub, arms, stacked=_scale(sub) == "count" or np.allclose(sub["value"].dropna() % 1, 0))
        ax.set_yticks(range(len(arms)), arms)
        ax.set_ylim(len(arms) - 0.5, -0.5)
        ax.set_title(metric(name))
        ax.grid(axis="y", alpha=0)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    return _save(fig, path)


def pick_tradeoff(effects: pd.DataFrame) -> tuple[str, str] | None:
    """Automatic fallback when no pair is named: the metric with the largest |g|, and the largest
    |g| of opposite sign (else the next)."""
    eff = effects.dropna(subset=["hedges_g"]) if "hedges_g" in effects else effects.iloc[0:0]
    if eff["metric"].nunique() < 2:
        return None
    per = eff.groupby("metric", sort=False)["hedges_g"].mean()
    x = per.abs().idxmax()
    rest = per.drop(x)
    opposite = rest[np.sign(rest) == -np.sign(per[x])]
    y = (opposite if len(opposite) else rest).abs().idxmax()
    return str(x), str(y)


MARKERS = ["o", "s", "D", "^", "v", "P", "X", "*"]


def tradeoff(effects: pd.DataFrame, arms: list[str], metrics: tuple[str, str], path: Path,
             units: tuple[str, str] = ("", ""), higher_is_better: tuple[bool, bool] = (True, True),
             alpha: float | None = 0.05) -> Path | None:
    """One point per treatment: change in x vs change in y (raw units, `units` on the axes), CI (level 1 - alpha)
    whiskers where a CI exists. Treatments are told apart by colour and marker and named in a
    legend outside the axes with their values, so labels never overlap, even when points coincide."""
    x, y = metrics
    ex = effects[effects["metric"] == x].set_index("treatment")
    ey = effects[effects["metric"] == y].set_index("treatment")
    common = [t for t in ex.index if t in ey.index]
    if not common:
        return None
    fig, ax = plt.subplots(figsize=(6.6, 4.6))
    ax.axhline(0, color="#333333", lw=1)
    ax.axvline(0, color="#333333", lw=1)
    any_ci = False
    seen: dict[tuple[float, float], str] = {}
    for i, tr in enumerate(common):
        a, b = ex.loc[tr], ey.loc[tr]
        color = arm_color(arms, str(tr))
        xe = _err(pd.Series([a["diff"]]), pd.Series([a.get("ci_low", np.nan)]), pd.Series([a.get("ci_high", np.nan)]))
        ye = _err(pd.Series([b["diff"]]), pd.Series([b.get("ci_low", np.nan)]), pd.Series([b.get("ci_high", np.nan)]))
        any_ci = any_ci or bool(np.isfinite([a.get("ci_low", np.nan), b.get("ci_low", np.nan)]).any())
        where = (round(float(a["diff"]), 2), round(float(b["diff"]), 2))
        same = f" = same point as {seen[where]}" if where in seen else ""
        seen.setdefault(where, str(tr))
        # hollow markers of shrinking size: coinciding treatments stay visible as nested outlines
        ax.errorbar([a["diff"]], [b["diff"]], xerr=xe, yerr=ye, color=color, fmt=MARKERS[i % len(MARKERS)],
                    ms=max(13 - 3 * i, 5), mfc="none", mew=2, capsize=4, elinewidth=1.4, alpha=0.9,
                    label=f"{tr}: ({signed(a['diff'])}, {signed(b['diff'])}){same}")
    ux, uy = (f" [{u}]" if u else "" for u in units)
    bx, by = ("better →" if h else "← better" for h in higher_is_better)
    ax.set_xlabel(f"change in {metric(x)}{ux}\n(treatment − control; {bx})")
    ax.set_ylabel(f"change in {metric(y)}{uy}\n({'better ↑' if higher_is_better[1] else 'better ↓'})")
    ax.set_title("Trade-off" + (f" ({ci_name(alpha, True)})" if any_ci else " (no CIs computed)"))
    ax.margins(0.25)
    ax.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
              title="treatment: (Δx, Δy)", title_fontsize=9)
    return _save(fig, path)


def _wrap(text: str, width: int) -> str:
    """A long axis label or tick broken onto lines of at most `width` characters (at `, ` `/` and spaces)."""
    return "\n".join(textwrap.wrap(str(text), width, break_on_hyphens=False)) or str(text)


def sweep(points: pd.DataFrame, param: str, path: Path) -> Path | None:
    """`points`: param value, metric, treatment, diff, ci_low, ci_high (one row per run x effect)."""
    if points.empty:
        return None
    names = list(dict.fromkeys(points["metric"]))
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    treatments = list(dict.fromkeys(points["treatment"]))
    categorical = not pd.api.types.is_numeric_dtype(points["param"])
    # long labels are wrapped, written once below the panels, and the figure grows by their lines;
    # constrained layout then makes room for them (tight_layout gave up on long ones with a warning)
    width = 4.2 * cols
    xlabel = _wrap(label(param), int(11 * width))
    ticks = [_wrap(v, 18) for v in dict.fromkeys(points["param"].astype(str))] if categorical else []
    tick_lines = max((t.count("\n") + 1 for t in ticks), default=1)
    height = 3.2 * rows + 0.18 * (xlabel.count("\n") + 1) + 0.16 * (tick_lines - 1) * rows
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, layout="constrained")
    # categorical values: one shared position per value (in sweep order), so every treatment lines up
    slots = {v: i for i, v in enumerate(dict.fromkeys(points["param"].astype(str)))} if categorical else {}
    for ax, name in zip(axes.flat, names):
        sub = points[points["metric"] == name]
        for j, tr in enumerate(treatments):
            s = sub[sub["treatment"] == tr]
            s = s.assign(_x=s["param"].astype(str).map(slots)) if categorical else s.assign(_x=s["param"].astype(float))
            s = s.sort_values("_x")
            if s.empty:
                continue
            ax.errorbar(s["_x"].to_numpy(float), s["diff"], yerr=_err(s["diff"], s["ci_low"], s["ci_high"]),
                        fmt="-o", capsize=3, color=ARM_COLORS[(j + 1) % len(ARM_COLORS)], label=str(tr))
        if categorical:
            ax.set_xticks(list(slots.values()), ticks)
        ax.axhline(0, color="#333333", lw=1)
        ax.set_title(_wrap(metric(name), 40))
        ax.set_ylabel("treatment − control")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    if len(treatments) > 1:
        axes.flat[0].legend(frameon=False, fontsize=8)
    fig.supxlabel(xlabel, fontsize=10)
    return _save(fig, path)
