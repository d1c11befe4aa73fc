"""The effects table: one row per metric x comparison, every sign treatment - control.

The headline estimand is the difference of the headline units' means (`diff`): of session means
for agent-level metrics with session ids, of the values otherwise, and the mean of per-replicate
differences when the design is paired. `p_value` (method in `p_method`, t-reference df in `df`),
`ci_low`/`ci_high`, `hedges_g` (and its CI), `p_tost` and the arm means `mean_control` /
`mean_treatment` (the means of the headline units that enter `diff`: of the pairs used when
paired, so mean_treatment - mean_control = diff and relative change diff / mean_control stays on
one estimand) all refer to that estimand; see `analysis.headline` for the rule.
The means of the individual values (agent values pooled over sessions, every non-missing value),
an agent-level summary, are `mean` in `analysis.result.descriptives` (descriptives.csv); `sd_control` /
`sd_treatment` are the SDs of the individual values. `cliffs_delta`, `prob_superiority`, `p_welch`, `p_mannwhitney`
and the ordinal odds ratio are on individual values (agent values pooled over sessions, labelled in
`delta_on`). `p_holm` / `p_bh` adjust `p_value` over the family of all rows of the table.
A comparison that cannot be estimated (an arm with no values) is a row with `estimable` False and
the reason in `notes`; the other comparisons go on.
"""

from __future__ import annotations

import itertools
import logging
import zlib

import numpy as np
import pandas as pd

from analysis import clustered, counts, effect_sizes, headline, ordinal, paired, tests_basic
from analysis.io import Table
from analysis.multiple import benjamini_hochberg, holm
from analysis.validate import TableError, check_arm, validate_table

log = logging.getLogger(__name__)
NAN = float("nan")

COLUMNS = [
    "metric", "level", "scale", "control", "treatment", "estimable", "n_control", "n_treatment",
    "n_sessions_control", "n_sessions_treatment", "missing_control", "missing_treatment",
    "mean_control", "mean_treatment", "sd_control", "sd_treatment", "diff", "ci_low", "ci_high", "df",
    "p_welch", "p_mannwhitney", "p_permutation", "hedges_g", "g_ci_low", "g_ci_high", "g_on",
    "cliffs_delta", "delta_ci_low", "delta_ci_high", "prob_superiority", "delta_on",
    "p_value", "p_method", "unit", "p_holm", "p_bh", "equivalence_margin", "p_tost",
    "n_pairs", "p_paired_t", "p_wilcoxon", "p_paired_perm",
    "icc", "icc_ci_low", "icc_ci_high", "design_effect", "cluster_size",
    "p_mixed", "mixed_diff", "mixed_se", "mixed_df", "mixed_model",
    "p_cluster_boot", "cluster_boot_ci_low", "cluster_boot_ci_high",
    "odds_ratio", "or_ci_low", "or_ci_high", "p_ordinal", "ordinal_model",
    "rate_ratio", "rr_ci_low", "rr_ci_high", "p_count", "count_model",
    "sd_pooled", "sd_diff", "notes",
]


#: note of an unpaired analysis whose table could be paired (the user chose neither way)
PAIRING_HINT = ("replicates pair the arms: analysed unpaired; --paired gives the paired analysis (replicate r "
                "of each arm sharing personas and seed, as `trials run` does unless run.paired=false)")


def as_table(table: Table | pd.DataFrame) -> Table:
    """Accept a Table or a raw DataFrame (validated here)."""
    if isinstance(table, Table):
        return table
    df, notes = validate_table(table, "<DataFrame>")
    return Table(df=df, source="<DataFrame>", kind="table", notes=notes, arms=list(dict.fromkeys(df["arm"])))


def resolve_control(table: Table, control: str | None) -> str:
    """The control arm's name as written in the table (exact, else case-insensitive match); TableError if absent."""
    name = control or table.control or "control"
    return check_arm(table.df, name, str(table.source))


def comparison_pairs(table: Table, control: str, comparisons: str = "vs_control") -> list[tuple[str, str]]:
    """(control, treatment) arm pairs: each arm vs `control`, or every pair ('all_pairs')."""
    arms = table.arms or list(dict.fromkeys(table.df["arm"]))
    if comparisons == "vs_control":
        return [(control, a) for a in arms if a != control]
    if comparisons == "all_pairs":
        ordered = [control] + [a for a in arms if a != control]
        return list(itertools.combinations(ordered, 2))
    raise TableError(f"comparisons={comparisons!r}: use 'vs_control' or 'all_pairs'.")




def compare(table: Table | pd.DataFrame, control: str | None = "control", comparisons: str = "vs_control",
            alpha: float = 0.05, n_boot: int = 2000, n_perm: int = 10000, seed: int = 0,
            paired_design: bool | None = None, mixed: bool = True,
            equivalence_margin: float | dict[str, float] | None = None) -> pd.DataFrame:
    """Effects table (DataFrame, one row per metric x comparison, columns COLUMNS; see module docstring).

    Inputs: a Table or tidy DataFrame (arm, replicate, session, agent, metric, value, ...); the
    control arm; 'vs_control' or 'all_pairs'; alpha of every CI; bootstrap resamples and permutation
    draws; a seed (each row draws from its own stream); paired_design overrides the table's; mixed
    fits the MixedLM; equivalence_margin (metric units; one number, or {metric: margin}) adds p_tost.
    Errors: TableError for an unknown control arm or an invalid table.
    """
    table = as_table(table)
    ctrl = resolve_control(table, control)
    is_paired = bool(table.paired if paired_design is None else paired_design)
    undecided = table.paired is None and paired_design is None  # nobody chose: say when pairing is possible
    rows = []
    for c, t in comparison_pairs(table, ctrl, comparisons):
        for metric in table.metrics:
            sub = table.df.loc[table.df["metric"] == metric]
            key = zlib.crc32(f"{metric}|{c}|{t}".encode())
            rng = np.random.default_rng([seed, key])
            margin = (equivalence_margin.get(metric) if isinstance(equivalence_margin, dict)
                      else equivalence_margin)
            row = compare_one(sub, metric, c, t, is_paired, alpha, n_boot, n_perm, rng, mixed, margin)
            if undecided and row["estimable"] and paired.common_replicates(sub, c, t) >= 2:
                row["notes"] = "; ".join(n for n in (row.get("notes") or "", PAIRING_HINT) if n)
            rows.append(row)
    out = pd.DataFrame(rows, columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS)
    out["p_holm"] = holm(out["p_value"].to_numpy(float))
    out["p_bh"] = benjamini_hochberg(out["p_value"].to_numpy(float))
    return out


#: columns in the metric's units: transformed back from the rescaled values (x unit, means + centre)
_MEANS = ("mean_control", "mean_treatment")
_SCALED = ("sd_control", "sd_treatment", "diff", "ci_low", "ci_high", "sd_pooled", "sd_diff", "mixed_diff",
           "mixed_se", "cluster_boot_ci_low", "cluster_boot_ci_high")


def rescaling(values: np.ndarray) -> tuple[float, float]:
    """(centre, unit): compare_one analyses (value - centre) / unit and transforms back; (0, 1) = as is.

    Every headline number is location-scale equivariant (diff, CI, SDs scale by `unit`, means shift
    by `centre`) or invariant (p, g and its CI, delta, ICC), so the transformation changes no result
    but the rounding: values ~1e160 or ~1e300 overflow in their squares (SDs, sums of squares), and
    values ~1e12 with an SD of 1 lose ~1e-4 of their means. `unit` is a power of 2 (exact) near the
    SD, `centre` the median (clustered.standardise); the centre is not taken when the spread is float
    noise at the values' magnitude (SD <= RTOL x |median|), which the tests must still see as none.
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) < 2 or not np.any(v):
        return 0.0, 1.0
    top = float(np.max(np.abs(v)))
    pre = clustered.power_of_two(top) if not 2.0**-400 < top < 2.0**400 else 1.0  # v - median stays finite
    w = v / pre
    centre, unit = clustered.standardise(w)
    if centre and not float(np.std((w - centre) / unit)) * unit > tests_basic.RTOL * abs(centre):
        centre, unit = 0.0, 1.0  # float noise: the tests see it at the values' own magnitude
    return centre * pre, unit * pre


def compare_one(sub: pd.DataFrame, metric: str, c: str, t: str, is_paired: bool, alpha: float,
                n_boot: int, n_perm: int, rng: np.random.Generator, mixed: bool = True,
                margin: float | None = None) -> dict:
    """One effects-table row for `metric`, treatment arm `t` against control arm `c`, computed on
    the values rescaled by `rescaling` and transformed back."""
    centre, unit = rescaling(sub["value"].to_numpy(float))
    if (centre, unit) == (0.0, 1.0):
        return _compare_one(sub, sub, metric, c, t, is_paired, alpha, n_boot, n_perm, rng, mixed, margin)
    scaled = sub.assign(value=(sub["value"] - centre) / unit)
    row = _compare_one(scaled, sub, metric, c, t, is_paired, alpha, n_boot, n_perm, rng, mixed,
                       margin / unit if margin else margin)
    overflow = []
    with np.errstate(over="ignore"):
        for k in (*_MEANS, *_SCALED):
            if k in row:
                back = row[k] * unit + (centre if k in _MEANS else 0.0)
                if np.isfinite(row[k]) and not np.isfinite(back):  # e.g. diff of -1e308 and +1e308
                    overflow.append(k)
                    back = NAN
                row[k] = back
    if overflow:
        top = float(np.nanmax(np.abs(sub["value"].to_numpy(float))))
        reason = (f"numeric overflow: values up to {top:.3g} give {', '.join(overflow)} beyond the float "
                  "range (1.8e308): NaN")
        row["notes"] = "; ".join(n for n in (str(row.get("notes") or ""), reason) if n)
    row["equivalence_margin"] = margin if margin else NAN
    return row


def _compare_one(sub: pd.DataFrame, raw: pd.DataFrame, metric: str, c: str, t: str, is_paired: bool,
                 alpha: float, n_boot: int, n_perm: int, rng: np.random.Generator, mixed: bool = True,
                 margin: float | None = None) -> dict:
    """compare_one on the rescaled rows `sub`; `raw` (same index) holds the table's values for the
    models whose input must be the values themselves (ordinal scores, counts)."""
    rc, rt = sub.loc[sub["arm"] == c], sub.loc[sub["arm"] == t]
    oc, ot = rc.dropna(subset=["value"]), rt.dropna(subset=["value"])
    xc, xt = oc["value"].to_numpy(float), ot["value"].to_numpy(float)
    level = sub["level"].mode().iat[0] if len(sub) else ""
    scale = ",".join(sorted(set(sub["scale"]) - {""}))
    notes: list[str] = []
    row: dict = {"metric": metric, "level": level, "scale": scale, "estimable": False,
                 "control": c, "treatment": t, "n_control": len(xc), "n_treatment": len(xt),
                 "missing_control": len(rc) - len(oc), "missing_treatment": len(rt) - len(ot),
                 "mean_control": _mean(xc), "mean_treatment": _mean(xt),
                 "sd_control": _sd(xc), "sd_treatment": _sd(xt),
                 "equivalence_margin": margin if margin else NAN}
    if len(xc) == 0 or len(xt) == 0:
        empty = [f"arm {name!r}" for name, x in ((c, xc), (t, xt)) if len(x) == 0]
        row["notes"] = f"not estimable: no non-missing values in {' and '.join(dict.fromkeys(empty))}"
        return row
    row["estimable"] = True

    has_sessions = bool((oc["session"] != "").all() and (ot["session"] != "").all())
    sizes = pd.concat([oc, ot]).groupby(["arm", "session"]).size() if has_sessions else pd.Series(dtype=int)
    is_clustered = has_sessions and bool((sizes > 1).any())
    if has_sessions:
        row["n_sessions_control"], row["n_sessions_treatment"] = oc["session"].nunique(), ot["session"].nunique()
    if is_clustered:
        unit_c, unit_t, unit = clustered.session_means(oc), clustered.session_means(ot), "session mean"
        gc, gt = clustered.group_codes(oc["session"]), clustered.group_codes(ot["session"])
    else:
        unit_c, unit_t = oc, ot
        unit = "agent value" if level == "agent" else "session" if level == "session" else "value"
        gc = gt = None
        if level == "agent" and not has_sessions:
            notes.append("no session ids: agent values treated as independent (p may be too small)")
    vc, vt = unit_c["value"].to_numpy(float), unit_t["value"].to_numpy(float)

    pairs = paired.pair_up(unit_c, unit_t) if is_paired else pd.DataFrame()
    use_paired = is_paired and len(pairs) >= 2
    if is_paired and not use_paired:
        notes.append("design is paired but fewer than 2 complete pairs: analysed unpaired")
    if use_paired:
        d = (pairs["treatment"] - pairs["control"]).to_numpy(float)
        head = headline.paired_diffs(d, tests_basic.scale_of(vc, vt), alpha, n_perm, rng, margin)
        est = head.est
        row.update(n_pairs=len(d), sd_diff=_sd(d), p_paired_t=est.p, p_wilcoxon=paired.wilcoxon(d),
                   p_paired_perm=head.p_permutation)
        method = f"{est.method} on per-replicate {'session means' if is_clustered else 'values'} ({len(d)} pairs)"
        dropped = max(len(unit_c), len(unit_t)) - len(d)
        if dropped > 0:
            notes.append(f"{dropped} unpaired unit(s) left out of the paired test")
        g_units = _paired_units(pairs, oc, ot)
        mean_c, mean_t = float(pairs["control"].mean()), float(pairs["treatment"].mean())
    else:
        head = headline.unpaired(vc, vt, alpha, n_perm, rng, margin)
        est = head.est
        what = "session means" if is_clustered else f"{unit}s"
        method = (f"{est.method} on agent values (no session ids)" if level == "agent" and not has_sessions
                  else f"{est.method} on {what} ({len(vc)} vs {len(vt)})")
        center = float(np.concatenate([xc, xt]).mean())  # centred sums of squares lose less to rounding
        g_units = (effect_sizes.Units.of_values(xc - center, gc), effect_sizes.Units.of_values(xt - center, gt))
        mean_c, mean_t = _mean(vc), _mean(vt)
    if est.note:
        notes.append(est.note)
    row.update(mean_control=mean_c, mean_treatment=mean_t)  # the headline units' means (see module docstring)
    row.update(diff=est.diff, ci_low=est.ci_low, ci_high=est.ci_high, df=est.df, p_value=est.p,
               p_method=method, unit=unit, p_permutation=head.p_permutation, p_tost=head.p_tost)

    welch_values = tests_basic.welch(xc, xt, alpha)
    row["p_welch"] = welch_values.p
    if not np.isfinite(welch_values.p):
        notes.append(f"p_welch NaN: {welch_values.note}")
    row["p_mannwhitney"] = tests_basic.mann_whitney(xc, xt)
    row["sd_pooled"] = _pooled_sd(xc, xt)  # of individual values; power() adds the ICC
    g, glo, ghi, gnote = effect_sizes.headline_g(*g_units, use_paired, est.diff, row["sd_pooled"], alpha,
                                                 scale=tests_basic.scale_of(xc, xt))
    t_on = ("paired t of the per-replicate differences" if use_paired  # effect_sizes.headline_g's t
            else "Welch t of the session means" if is_clustered else "Welch t of the values")
    row.update(hedges_g=g, g_ci_low=glo, g_ci_high=ghi,
               g_on=f"diff / pooled within-arm SD of the {'agent ' if level == 'agent' else ''}values; "
                    f"CI: noncentral-t inversion of the {t_on} (Steiger & Fouladi 1997)")
    if gnote:
        notes.append(gnote)
    delta, dlo, dhi, dnote = effect_sizes.delta_ci(xc, xt, gc, gt, alpha)
    row.update(cliffs_delta=delta, delta_ci_low=dlo, delta_ci_high=dhi,
               prob_superiority=effect_sizes.prob_superiority(xc, xt),
               delta_on=("agent values pooled over sessions (agent-level effect size)" if level == "agent"
                         else "individual values"))
    if dnote:
        notes.append(dnote)
    judge_k = (pd.to_numeric(pd.concat([oc["judge_k"], ot["judge_k"]]), errors="coerce").to_numpy(float)
               if "judge_k" in oc.columns else None)  # judgements averaged per value (run tables)
    rxc, rxt = raw.loc[oc.index, "value"].to_numpy(float), raw.loc[ot.index, "value"].to_numpy(float)
    rvc, rvt = ((clustered.session_means(raw.loc[oc.index])["value"].to_numpy(float),
                 clustered.session_means(raw.loc[ot.index])["value"].to_numpy(float)) if is_clustered
                else (rxc, rxt))
    _secondary_models(row, notes, scale, metric, rxc, rxt, rvc, rvt, gc, gt, alpha, judge_k)
    if is_clustered:
        _clustered_columns(row, notes, oc, ot, sizes, vc, vt, c, t, n_boot, alpha, rng, mixed)
    else:
        why = ("one value per session" if has_sessions else "no session ids")
        notes.append(f"icc, p_mixed and p_cluster_boot NaN: {why}, no clustering to model")
    if row["missing_control"] or row["missing_treatment"]:
        notes.append(f"missing values: {row['missing_control']} control, {row['missing_treatment']} treatment")
    row["notes"] = "; ".join(dict.fromkeys(notes))
    return row


def _paired_units(pairs: pd.DataFrame, oc: pd.DataFrame, ot: pd.DataFrame) -> tuple:
    """Units for the paired g: per complete pair (replicate, in `pairs` order), each arm's values in
    it, with the unit value `m` = that arm's per-replicate value in `pairs` (what `diff` averages)."""
    keep = set(pairs["replicate"])
    center = float(pd.concat([oc["value"], ot["value"]]).mean())

    def units(rows: pd.DataFrame, arm: str) -> effect_sizes.Units:
        r = rows.loc[rows["replicate"].isin(keep)].sort_values("replicate")
        u = effect_sizes.Units.of_values(r["value"].to_numpy(float) - center,
                                         pd.factorize(r["replicate"], sort=True)[0])
        return effect_sizes.Units(pairs[arm].to_numpy(float) - center, u.n, u.s, u.q)
    return units(oc, "control"), units(ot, "treatment")


def _secondary_models(row: dict, notes: list[str], scale: str, metric: str, xc, xt, vc, vt, gc, gt,
                      alpha: float, judge_k: np.ndarray | None = None) -> None:
    """Ordinal (proportional odds) for integer scores on rating scales, rate ratio for counts; NaN
    columns otherwise (with the reason in notes for rating-scale values that are not scores)."""
    values = np.concatenate([xc, xt])
    if ordinal.is_ordinal(scale, values):
        why = ordinal.not_scores(scale, values, judge_k)
        if why:
            notes.append(why)
            return
        fit = ordinal.proportional_odds(xc, xt, gc, gt, alpha)
        row.update({k: fit[k] for k in ("odds_ratio", "or_ci_low", "or_ci_high", "p_ordinal", "ordinal_model")})
        if fit["ordinal_note"]:
            notes.append(str(fit["ordinal_note"]))
    elif counts.is_count(scale, metric, values):
        fit = counts.rate_ratio(vc, vt, alpha)
        row.update({k: fit[k] for k in ("rate_ratio", "rr_ci_low", "rr_ci_high", "p_count", "count_model")})
        if fit["count_note"]:
            notes.append(str(fit["count_note"]))
    else:
        what = (f"the ordinal model is fitted on the scales {', '.join(ordinal.ORDINAL_SCALES)} only "
                f"and the rate ratio on counts; scale {scale!r} is neither" if ordinal.scale_range(scale)
                else f"scale {scale!r} is neither a rating scale nor counts" if scale
                else "no scale given and the values are neither integer scores 0-10 nor non-negative integer counts")
        notes.append(f"odds_ratio/p_ordinal and rate_ratio/p_count NaN: {what}")


def _clustered_columns(row: dict, notes: list[str], oc, ot, sizes, vc, vt, c: str, t: str, n_boot: int,
                       alpha: float, rng: np.random.Generator, mixed: bool) -> None:
    """ICC (with its F-based CI), design effect, cluster bootstrap-t and the MixedLM."""
    both = pd.concat([oc, ot])
    m = float(sizes.mean())
    icc = clustered.icc_anova(both["value"].to_numpy(), (both["arm"] + "\x00" + both["session"]).to_numpy(),
                              both["arm"].to_numpy())
    n0 = clustered.adjusted_size([sizes.loc[a].to_numpy(float) for a in (c, t)])
    lo, hi = clustered.icc_ci(icc, len(sizes), len(both), n0, 2, alpha)
    row.update(icc=icc, icc_ci_low=lo, icc_ci_high=hi, design_effect=clustered.design_effect(icc, m), cluster_size=m)
    p, blo, bhi, bnote = clustered.cluster_bootstrap_t(vc, vt, n_boot, rng, alpha)
    row.update(p_cluster_boot=p, cluster_boot_ci_low=blo, cluster_boot_ci_high=bhi)
    if bnote:
        notes.append(bnote)
    if row["n_sessions_control"] < 2 or row["n_sessions_treatment"] < 2:
        notes.append("one session in an arm: the arm effect cannot be separated from the session effect")
    if not mixed:
        notes.append("p_mixed NaN: the MixedLM was not asked for (mixed=False)")
    else:
        fit = clustered.mixed_model(both, c, t)
        row.update(p_mixed=fit["p"], mixed_diff=fit["diff"], mixed_se=fit["se"], mixed_df=fit["df"],
                   mixed_model=fit["spec"])
        if fit["note"]:
            notes.append(str(fit["note"]))


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else NAN


def _sd(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if len(x) > 1 else NAN


def _pooled_sd(c: np.ndarray, t: np.ndarray) -> float:
    if len(c) + len(t) < 3:
        return NAN
    ss = ((c - c.mean()) ** 2).sum() + ((t - t.mean()) ** 2).sum()
    return float(np.sqrt(ss / (len(c) + len(t) - 2)))
