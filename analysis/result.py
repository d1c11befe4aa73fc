"""analyze(): effects + descriptives + missingness + power + trade-offs, and writing them to disk."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import clustered as cl
from analysis import power as pw
from analysis.balance import balance, warnings_of
from analysis.comparison import as_table, compare, rescaling, resolve_control
from analysis.factorial_model import factor_columns, factorial, marginal_means
from analysis.io import Table
from analysis.missing import mark_delivery, missingness  # noqa: F401 (missingness: public here too)
from analysis.tradeoff import tradeoffs

log = logging.getLogger(__name__)


@dataclass
class AnalysisResult:
    """Everything `analyze` computed: the tables written by `write` plus the family, notes and summary."""

    effects: pd.DataFrame
    descriptives: pd.DataFrame
    missing: pd.DataFrame
    power: pd.DataFrame
    tradeoffs: dict[str, list[str]]
    family: str
    notes: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    balance: pd.DataFrame = field(default_factory=pd.DataFrame)
    factorial: pd.DataFrame | None = None
    factorial_cells: pd.DataFrame | None = None

    def write(self, out_dir: str | Path) -> Path:
        """Write effects.csv, descriptives.csv, missing.csv, power.csv, balance.csv, tradeoffs.txt,
        summary.json, and factorial.csv + factorial_cells.csv when the table has factor columns."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("effects", "descriptives", "missing", "power", "balance", "factorial", "factorial_cells"):
            frame = getattr(self, name)
            if frame is not None:
                frame.to_csv(out / f"{name}.csv", index=False)
        lines = [row for t, ls in self.tradeoffs.items() for row in [f"{t}:", *(f"  {x}" for x in ls)]]
        (out / "tradeoffs.txt").write_text("\n".join(lines) + "\n")
        (out / "summary.json").write_text(json.dumps(_jsonable(self.summary), indent=2) + "\n")
        return out


def analyze(table: Table | pd.DataFrame, control: str | None = None, comparisons: str = "vs_control",
            alpha: float = 0.05, n_boot: int = 2000, n_perm: int = 10000, seed: int = 0,
            paired_design: bool | None = None, target_power: float = 0.8, mixed: bool = True,
            equivalence_margin: float | dict[str, float] | None = None,
            factors: list[str] | None = None) -> AnalysisResult:
    """Full analysis of a metric table: effects (see `compare`), descriptives, missingness, power
    of this design, the sample-ratio / completion check (`balance`), trade-offs, and, when the table
    has factor columns (`factor_*`, or `factors`), the factorial model terms and cell means."""
    table = as_table(table)
    ctrl = resolve_control(table, control)
    effects = compare(table, ctrl, comparisons, alpha, n_boot, n_perm, seed, paired_design, mixed,
                      equivalence_margin)
    effects = mark_delivery(effects, table.delivery)  # the manipulation check (analysis.missing)
    n_metrics = effects["metric"].nunique()
    n_comp = len(effects) // max(1, n_metrics)
    family = (f"{_family_count(effects, n_metrics, n_comp)} "
              f"({'every pair of arms' if comparisons == 'all_pairs' else 'each treatment vs ' + ctrl}); "
              "Holm (family-wise) and Benjamini-Hochberg (false discovery rate) adjust p_value")
    notes = list(table.notes)
    if effects.empty:
        notes.append(f"only one arm ({ctrl!r}): descriptives only, nothing to compare")
    bal = balance(table.df)
    notes += warnings_of(bal)
    notes += [f"{r.metric} ({r.treatment if comparisons == 'vs_control' else f'{r.treatment} vs {r.control}'}): "
              f"{r.notes}" for r in effects.itertuples() if r.notes]
    result = AnalysisResult(effects=effects, descriptives=descriptives(table.df), missing=missingness(table.df, ctrl),
                            power=power_table(effects, table.df, alpha, target_power, seed=seed),
                            tradeoffs=tradeoffs(effects, alpha), family=family, notes=notes, balance=bal)
    factors = factors if factors is not None else factor_columns(table.df)
    if factors:
        result.factorial = factorial(table, factors, alpha)
        result.factorial_cells = marginal_means(table, factors, alpha)
    result.summary = _summary(table, result, ctrl, comparisons, alpha, n_boot, n_perm, seed, paired_design)
    return result


def _family_count(effects: pd.DataFrame, n_metrics: int, n_comp: int) -> str:
    """'6 tests = 6 metrics x 1 comparison(s)', or, when rows have no p-value, '1 test = 2 metrics x
    1 comparison(s) - 1 not estimable': the family Holm and BH adjust is the rows with a p-value."""
    n_tests = int(effects["p_value"].notna().sum())
    tests = f"{n_tests} test{'' if n_tests == 1 else 's'}"
    grid = f"{n_metrics} metric{'' if n_metrics == 1 else 's'} x {n_comp} comparison(s)"
    if n_tests == len(effects):
        return f"{tests} = {grid}"
    no_p = effects["p_value"].isna()
    not_estimable = int((no_p & ~effects["estimable"].astype(bool)).sum())
    other = int(no_p.sum()) - not_estimable
    why = [f"{not_estimable} not estimable" if not_estimable else "", f"{other} without a p-value" if other else ""]
    return f"{tests} = {grid} - {' - '.join(w for w in why if w)}"


def descriptives(df: pd.DataFrame) -> pd.DataFrame:
    """Per arm x metric: n, missing, sessions, mean, sd, se, median, quartiles, min, max."""
    rows = []
    for (arm, metric), sub in df.groupby(["arm", "metric"], sort=False):
        x = sub["value"].dropna().to_numpy(float)
        sessions = sub.loc[sub["value"].notna() & (sub["session"] != ""), "session"].nunique()
        centre, unit = rescaling(x)  # values ~1e300: means, SDs and quartiles without overflow
        z = (x - centre) / unit
        q = np.percentile(z, [25, 50, 75]) * unit + centre if len(x) else [math.nan] * 3
        sd = float(z.std(ddof=1)) * unit if len(x) > 1 else math.nan
        rows.append({"arm": arm, "metric": metric, "level": sub["level"].iat[0], "n": len(x),
                     "missing": int(sub["value"].isna().sum()), "n_sessions": sessions,
                     "mean": float(z.mean()) * unit + centre if len(x) else math.nan, "sd": sd,
                     "se": sd / math.sqrt(len(x)) if len(x) > 1 else math.nan,
                     "median": q[1], "q25": q[0], "q75": q[2],
                     "min": float(x.min()) if len(x) else math.nan, "max": float(x.max()) if len(x) else math.nan})
    return pd.DataFrame(rows, columns=["arm", "metric", "level", "n", "missing", "n_sessions", "mean", "sd", "se",
                                       "median", "q25", "q75", "min", "max"])


POWER_COLUMNS = ["metric", "control", "treatment", "unit", "n_this_run", "sessions_control", "sessions_treatment",
                 "observed_effect", "sd", "sd_diff", "icc", "icc_ci_high", "cluster_size", "design_effect", "alpha",
                 "target_power", "n_needed", "mde_this_run", "mde_icc_high", "power_method", "note"]


def power_table(effects: pd.DataFrame, df: pd.DataFrame | None = None, alpha: float = 0.05, target: float = 0.8,
                n_sims: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per effects row: this run's minimum detectable effect and the sessions per arm needed for
    `target` power at the observed effect, from the design that actually ran.

    Unpaired: Monte Carlo power of the headline Welch test on session means with this run's own
    session sizes (`analysis.power.simulated_power`), at the ICC estimate and at its upper 95%
    bound (`mde_icc_high`: the MDE if sessions are as alike as the data allow). Paired: exact
    noncentral t on the per-replicate differences. NaN with a note for one session per arm.
    `df` is the validated metric table (for the session sizes); without it all sizes are taken
    equal to cluster_size.
    """
    rows = []
    for r in effects.itertuples():
        is_paired = bool(r.n_pairs > 0) if np.isfinite(r.n_pairs) else False
        clustered = r.unit == "session mean"
        icc = float(r.icc) if clustered else 0.0
        icc_hi = float(r.icc_ci_high) if clustered else 0.0
        m = float(r.cluster_size) if clustered else 1.0
        sizes_c, sizes_t = _sizes(df, r, clustered, m)
        effect = abs(float(r.diff)) if np.isfinite(r.diff) else math.nan
        # the power computations are scale-equivariant: run in units of a power of 2 near the SD
        # (exact) so values ~1e300 do not overflow in the simulated variances; mde x u after
        u = cl.power_of_two(r.sd_pooled) if np.isfinite(r.sd_pooled) and r.sd_pooled > 0 else 1.0
        sd_u, eff_u, sd_diff_u = r.sd_pooled / u, effect / u, float(r.sd_diff) / u
        base = {"metric": r.metric, "control": r.control, "treatment": r.treatment, "sd": r.sd_pooled,
                "sessions_control": len(sizes_c), "sessions_treatment": len(sizes_t), "observed_effect": effect,
                "icc": icc, "icc_ci_high": icc_hi, "cluster_size": m, "design_effect": cl.design_effect(icc, m),
                "alpha": alpha, "target_power": target, "note": ""}
        if is_paired:
            n, sd_diff = float(r.n_pairs), float(r.sd_diff)
            base.update(unit="pairs of replicates", n_this_run=n, sd_diff=sd_diff,
                        n_needed=pw.replicates_needed(eff_u, sd_u, icc, m, alpha, target, sd_diff_u),
                        mde_this_run=pw.mde(n, sd_u, icc, m, alpha, target, sd_diff_u) * u, mde_icc_high=math.nan,
                        power_method="paired t, exact noncentral t on the per-replicate differences")
        else:
            unit = ("sessions per arm" if clustered or r.level == "session"
                    else "agent values per arm (no sessions)")
            base.update(unit=unit, n_this_run=float(min(len(sizes_c), len(sizes_t))), sd_diff=None,
                        n_needed=pw.design_n_needed(eff_u, m, sd_u, icc, alpha, target, n_sims, seed),
                        mde_this_run=pw.design_mde(sizes_c, sizes_t, sd_u, icc, alpha, target, n_sims, seed) * u,
                        mde_icc_high=(pw.design_mde(sizes_c, sizes_t, sd_u, icc_hi, alpha, target, n_sims, seed) * u
                                      if clustered and np.isfinite(icc_hi) else math.nan),
                        power_method=f"simulated Welch on session means, this run's session sizes ({n_sims} draws)")
            if min(len(sizes_c), len(sizes_t)) < 2:
                base["note"] = ("one session in an arm: the arm effect is confounded with the session; "
                                "no power without replicates")
        base["note"] = "; ".join(n for n in [base["note"], *_power_notes(base, effect, is_paired, target)] if n)
        if not r.estimable:  # an arm without values: the reason is the effects row's, not "one session"
            base.update(n_needed=math.nan, mde_this_run=math.nan, mde_icc_high=math.nan, note=str(r.notes))
        rows.append(base)
    return pd.DataFrame(rows, columns=POWER_COLUMNS)


def _power_notes(row: dict, effect: float, is_paired: bool, target: float) -> list[str]:
    """The reasons for NaN in n_needed and mde_this_run (never inf: a NaN always says why)."""
    if is_paired:
        spread, name, max_n, unit = row["sd_diff"], "SD of the per-replicate differences", pw.MAX_N, "pairs"
    else:
        spread, name, max_n, unit = row["sd"], "SD", pw.DESIGN_MAX_N, row["unit"]
    n = row["n_this_run"] if is_paired else min(row["sessions_control"], row["sessions_treatment"])
    notes = [pw.n_needed_note(row["n_needed"], effect, spread, row["icc"], target, max_n, unit)]
    if not (not is_paired and n < 2):  # one session in an arm already has its note
        notes.append(pw.mde_note(row["mde_this_run"], n, spread, row["icc"], target, name).replace(
            "mde NaN", "mde_this_run NaN", 1))
    if not np.isfinite(row["mde_icc_high"]) and not (not is_paired and n < 2):
        if is_paired:
            notes.append("mde_icc_high NaN: paired design (the per-replicate differences already hold the "
                         "session effect; no ICC enters their power)")
        elif not row["cluster_size"] > 1:  # not clustered: cluster_size 1
            notes.append("mde_icc_high NaN: one value per unit (no sessions of several values): no ICC")
        elif not np.isfinite(row["icc_ci_high"]):
            notes.append("mde_icc_high NaN: the ICC's upper bound is not estimable")
        else:
            notes.append(pw.mde_note(row["mde_icc_high"], n, spread, row["icc_ci_high"], target, name).replace(
                "mde NaN", "mde_icc_high NaN", 1))
    return notes


def _sizes(df: pd.DataFrame | None, r, clustered: bool, m: float) -> tuple[np.ndarray, np.ndarray]:
    """Agents per session in each arm for this row (all 1 for unclustered values)."""
    if not clustered:
        return np.ones(int(r.n_control)), np.ones(int(r.n_treatment))
    if df is None:
        return np.full(int(r.n_sessions_control), m), np.full(int(r.n_sessions_treatment), m)
    sub = df.loc[(df["metric"] == r.metric) & df["value"].notna()]
    def arm(a: str) -> np.ndarray:
        return sub.loc[sub["arm"] == a].groupby("session").size().to_numpy(float)
    return arm(r.control), arm(r.treatment)


def _summary(table: Table, res: AnalysisResult, ctrl: str, comparisons: str, alpha: float, n_boot: int,
             n_perm: int, seed: int, paired_design: bool | None) -> dict:
    headline: dict[str, list[dict]] = {}
    for r in res.effects.itertuples():
        label = r.treatment if comparisons == "vs_control" else f"{r.treatment} vs {r.control}"
        headline.setdefault(label, []).append({
            "metric": r.metric, "diff": r.diff, "ci": [r.ci_low, r.ci_high], "hedges_g": r.hedges_g,
            "p_value": r.p_value, "p_method": r.p_method, "df": r.df, "p_holm": r.p_holm, "p_bh": r.p_bh,
            "p_tost": r.p_tost, "estimable": bool(r.estimable),
            "significant_holm": bool(r.p_holm < alpha) if np.isfinite(r.p_holm) else None})
    return {
        "source": str(table.source), "input_kind": table.kind, "control": ctrl, "arms": table.arms,
        "comparisons": comparisons, "paired": bool(table.paired if paired_design is None else paired_design),
        "alpha": alpha, "family": res.family, "headline": headline, "tradeoffs": res.tradeoffs,
        "notes": res.notes,
        "methods": {
            "sign": "every difference and effect size is treatment minus control",
            "p_value": "paired t-test on per-replicate differences when paired; otherwise on the headline units "
                       "(session means for agent-level metrics with session ids): Welch t-test when both arms "
                       "have the same number of units, studentized permutation test (CI by test inversion) "
                       "when they differ; exact permutation / sign-flip p when there is no variation",
            "df": "degrees of freedom of the headline t reference (Welch-Satterthwaite, pairs - 1); "
                  "NaN for permutation tests",
            "p_welch/p_mannwhitney": "on individual values (agent-level: ignores clustering; for comparison "
                                     "with TinyTroupe)",
            "p_permutation": f"studentized permutation test on the headline units (exact up to 20000 splits, "
                             f"else {n_perm} random); sign-flip within pairs when paired",
            "hedges_g": f"headline diff / pooled within-arm SD of the individual values (Hedges 2007 d_T; d_av "
                        f"when paired), J-corrected; CI by noncentral-t inversion of the Welch t of the headline "
                        f"units (paired t when paired; Steiger & Fouladi 1997), rescaled to that SD (>= 8 units per arm)",
            "mean_control/mean_treatment": "means of the headline units that enter diff (session means; the "
                                           "per-replicate values of the pairs used when paired), so "
                                           "mean_treatment - mean_control = diff; descriptives.csv: mean of the "
                                           "individual (agent) values per arm",
            "cliffs_delta": "on individual values (agent values pooled over sessions); CI from cluster-summed "
                            "placements (DeLong 1988, Obuchowski 1997) and Cliff's (1993) interval",
            "p_tost": "two one-sided tests of |diff| >= equivalence_margin on the headline estimand",
            "clustered": "ICC by one-way ANOVA (arm fixed) with F-based CI, design effect 1+(m-1)ICC, MixedLM "
                         "(REML, best finite converged fit over several optimizers) with random intercepts "
                         "for session (+ persona when agents recur across sessions; Wald t with sessions-2 "
                         "df), symmetric studentized cluster bootstrap: p and CI from the same t*",
            "ordinal": "proportional-odds model (statsmodels OrderedModel, logit), session-clustered sandwich SE; "
                       "only for integer scores on the declared scale",
            "counts": "rate ratio from a quasi-Poisson GLM on the headline units (Pearson dispersion, t on n-2 df)",
            "balance": "chi-square tests that completed sessions and non-missing values are balanced across arms",
            "power": "Monte Carlo power of the headline Welch test on session means with this run's session "
                     "sizes, at the ICC and at its upper 95% bound; exact noncentral t when paired",
        },
    }


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
