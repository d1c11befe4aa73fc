"""The effects table: one row per metric x comparison, every sign treatment - control.

Headline p (`p_value`, named in `p_method`):
- paired design (replicate r of both arms shares personas and seed): paired t-test on the
  per-replicate differences (session means for agent-level metrics);
- agent-level metric with session ids: Welch t-test on session means (the session is the unit);
- otherwise Welch t-test on the values (for agent-level values without session ids this ignores
  clustering, and the note says so).
`p_welch` and `p_mannwhitney` are always on the individual values (comparable with TinyTroupe);
`p_permutation` permutes the headline unit (whole sessions when clustered).
`p_holm` / `p_bh` adjust `p_value` over the family of all rows of the table.
`diff` and `ci_low`/`ci_high` are the estimate and CI of the headline method; they equal
mean_treatment - mean_control unless sessions differ in size or some pairs are incomplete.
"""

from __future__ import annotations

import itertools
import logging
import zlib

import numpy as np
import pandas as pd

from analysis import clustered, effect_sizes, paired, tests_basic
from analysis.io import Table
from analysis.multiple import benjamini_hochberg, holm
from analysis.validate import TableError, check_arm, validate_table

log = logging.getLogger(__name__)
NAN = float("nan")

COLUMNS = [
    "metric", "level", "scale", "control", "treatment", "n_control", "n_treatment",
    "n_sessions_control", "n_sessions_treatment", "missing_control", "missing_treatment",
    "mean_control", "mean_treatment", "sd_control", "sd_treatment", "diff", "ci_low", "ci_high",
    "p_welch", "p_mannwhitney", "p_permutation", "hedges_g", "g_ci_low", "g_ci_high",
    "cliffs_delta", "delta_ci_low", "delta_ci_high", "prob_superiority",
    "p_value", "p_method", "unit", "p_holm", "p_bh",
    "n_pairs", "p_paired_t", "p_wilcoxon", "p_paired_perm",
    "icc", "design_effect", "cluster_size", "p_mixed", "mixed_diff", "mixed_model",
    "p_cluster_boot", "cluster_boot_ci_low", "cluster_boot_ci_high", "sd_pooled", "sd_diff", "notes",
]


def as_table(table: Table | pd.DataFrame) -> Table:
    """Accept a Table or a raw DataFrame (validated here)."""
    if isinstance(table, Table):
        return table
    df, notes = validate_table(table, "<DataFrame>")
    return Table(df=df, source="<DataFrame>", kind="table", notes=notes, arms=list(dict.fromkeys(df["arm"])))


def resolve_control(table: Table, control: str | None) -> str:
    name = control or table.control or "control"
    return check_arm(table.df, name, str(table.source))


def comparison_pairs(table: Table, control: str, comparisons: str = "vs_control") -> list[tuple[str, str]]:
    arms = table.arms or list(dict.fromkeys(table.df["arm"]))
    if comparisons == "vs_control":
        return [(control, a) for a in arms if a != control]
    if comparisons == "all_pairs":
        ordered = [control] + [a for a in arms if a != control]
        return list(itertools.combinations(ordered, 2))
    raise TableError(f"comparisons={comparisons!r}: use 'vs_control' or 'all_pairs'.")


def compare(table: Table | pd.DataFrame, control: str | None = "control", comparisons: str = "vs_control",
            alpha: float = 0.05, n_boot: int = 2000, n_perm: int = 10000, seed: int = 0,
            paired_design: bool | None = None, mixed: bool = True) -> pd.DataFrame:
    """Effects table for every metric x comparison (see module docstring for the methods)."""
    table = as_table(table)
    ctrl = resolve_control(table, control)
    is_paired = bool(table.paired if paired_design is None else paired_design)
    rows = []
    for c, t in comparison_pairs(table, ctrl, comparisons):
        for metric in table.metrics:
            sub = table.df.loc[table.df["metric"] == metric]
            key = zlib.crc32(f"{metric}|{c}|{t}".encode())
            rng = np.random.default_rng([seed, key])
            rows.append(compare_one(sub, metric, c, t, is_paired, alpha, n_boot, n_perm, rng, mixed))
    out = pd.DataFrame(rows, columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS)
    out["p_holm"] = holm(out["p_value"].to_numpy(float))
    out["p_bh"] = benjamini_hochberg(out["p_value"].to_numpy(float))
    return out


def compare_one(sub: pd.DataFrame, metric: str, c: str, t: str, is_paired: bool, alpha: float,
                n_boot: int, n_perm: int, rng: np.random.Generator, mixed: bool = True) -> dict:
    """One effects-table row for `metric`, treatment arm `t` against control arm `c`."""
    rc, rt = sub.loc[sub["arm"] == c], sub.loc[sub["arm"] == t]
    oc, ot = rc.dropna(subset=["value"]), rt.dropna(subset=["value"])
    xc, xt = oc["value"].to_numpy(float), ot["value"].to_numpy(float)
    level = sub["level"].mode().iat[0] if len(sub) else ""
    notes: list[str] = []
    row: dict = {"metric": metric, "level": level, "scale": ",".join(sorted(set(sub["scale"]) - {""})),
                 "control": c, "treatment": t, "n_control": len(xc), "n_treatment": len(xt),
                 "missing_control": len(rc) - len(oc), "missing_treatment": len(rt) - len(ot),
                 "mean_control": _mean(xc), "mean_treatment": _mean(xt),
                 "sd_control": _sd(xc), "sd_treatment": _sd(xt)}
    if len(xc) == 0 or len(xt) == 0:
        row["notes"] = f"no non-missing values in {'control' if len(xc) == 0 else 'treatment'}: not compared"
        return row

    has_sessions = bool((oc["session"] != "").all() and (ot["session"] != "").all())
    sizes = pd.concat([oc, ot]).groupby(["arm", "session"]).size() if has_sessions else pd.Series(dtype=int)
    is_clustered = has_sessions and bool((sizes > 1).any())
    if has_sessions:
        row["n_sessions_control"], row["n_sessions_treatment"] = oc["session"].nunique(), ot["session"].nunique()
    if is_clustered:
        uc, ut = clustered.session_means(oc), clustered.session_means(ot)
        unit_c, unit_t, unit = uc, ut, "session mean"
    else:
        unit_c, unit_t, unit = oc, ot, "agent value" if level == "agent" else "session" if level == "session" else "value"
        if level == "agent" and not has_sessions:
            notes.append("no session ids: agent values treated as independent (p may be too small)")

    # Pairing: replicate r of each arm forms a pair.
    pairs = paired.pair_up(unit_c, unit_t) if is_paired else pd.DataFrame()
    use_paired = is_paired and len(pairs) >= 2
    if is_paired and not use_paired:
        notes.append("design is paired but fewer than 2 complete pairs: analysed unpaired")
    if use_paired:
        d = (pairs["treatment"] - pairs["control"]).to_numpy(float)
        est = paired.paired_t(d, alpha)
        row.update(n_pairs=len(d), sd_diff=_sd(d), p_paired_t=est.p, p_wilcoxon=paired.wilcoxon(d),
                   p_paired_perm=paired.sign_flip_test(d, n_perm, rng))
        what = "per-replicate session means" if is_clustered else "session-level differences"
        method = f"paired t-test on {what} ({len(d)} pairs)"
        dropped = max(len(unit_c), len(unit_t)) - len(d)
        if dropped > 0:
            notes.append(f"{dropped} unpaired unit(s) left out of the paired test")
    else:
        est = tests_basic.welch(unit_c["value"].to_numpy(float), unit_t["value"].to_numpy(float), alpha)
        method = (f"Welch t-test on session means ({len(unit_c)} vs {len(unit_t)} sessions)" if is_clustered
                  else "Welch t-test on agent values (no session ids)" if level == "agent" and not has_sessions
                  else "Welch t-test")
    row.update(diff=est.diff, ci_low=est.ci_low, ci_high=est.ci_high, p_value=est.p, p_method=method, unit=unit)

    row["p_welch"] = tests_basic.welch(xc, xt, alpha).p
    row["p_mannwhitney"] = tests_basic.mann_whitney(xc, xt)
    row["p_permutation"] = tests_basic.permutation_test(
        unit_c["value"].to_numpy(float), unit_t["value"].to_numpy(float), n_perm, rng)
    row["hedges_g"] = effect_sizes.hedges_g(xc, xt)
    row["sd_pooled"] = _pooled_sd(xc, xt)  # of individual values; power() adds the ICC
    row["cliffs_delta"] = effect_sizes.cliffs_delta(xc, xt)
    row["prob_superiority"] = effect_sizes.prob_superiority(xc, xt)
    gc = clustered.group_codes(oc["session"]) if is_clustered else None
    gt = clustered.group_codes(ot["session"]) if is_clustered else None
    boot = effect_sizes.bootstrap(xc, xt, groups_c=gc, groups_t=gt, n_boot=n_boot, alpha=alpha, rng=rng)
    row.update({k: boot[k] for k in ("g_ci_low", "g_ci_high", "delta_ci_low", "delta_ci_high")})

    if is_clustered:
        both = pd.concat([oc, ot])
        m = float(sizes.mean())
        icc = clustered.icc_anova(both["value"].to_numpy(), (both["arm"] + "\x00" + both["session"]).to_numpy(),
                                  both["arm"].to_numpy())
        row.update(icc=icc, design_effect=clustered.design_effect(icc, m), cluster_size=m,
                   p_cluster_boot=clustered.cluster_bootstrap_t(uc["value"].to_numpy(), ut["value"].to_numpy(),
                                                                n_boot, rng),
                   cluster_boot_ci_low=boot["diff_ci_low"],
                   cluster_boot_ci_high=boot["diff_ci_high"])
        if mixed:
            fit = clustered.mixed_model(both, c, t)
            row.update(p_mixed=fit["p"], mixed_diff=fit["diff"], mixed_model=fit.get("spec", ""))
    if row["missing_control"] or row["missing_treatment"]:
        notes.append(f"missing values: {row['missing_control']} control, {row['missing_treatment']} treatment")
    row["notes"] = "; ".join(notes)
    return row


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else NAN


def _sd(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if len(x) > 1 else NAN


def _pooled_sd(c: np.ndarray, t: np.ndarray) -> float:
    if len(c) + len(t) < 3:
        return NAN
    ss = ((c - c.mean()) ** 2).sum() + ((t - t.mean()) ** 2).sum()
    return float(np.sqrt(ss / (len(c) + len(t) - 2)))
