"""Simulated answers vs real people's answers to the same question (validation against human data).

    human = read_human("gazpacho.csv", column="Vote", by="Gender Identity")   # -> answer[, group]
    table = validate_answers(sim, human, scale=(1, 5), margin=0.5, by="group")      # -> validation.csv rows

Per comparison (all answers, then each subgroup present on both sides) one row with:

- `n_sim, n_human, mean_sim, mean_human, sd_sim, sd_human`;
- `diff = mean_sim - mean_human` with its 95% CI from Welch's t (Welch 1947; statsmodels
  `CompareMeans.tconfint_diff(usevar="unequal")`), `p_welch`;
- `sd_ratio = sd_sim / sd_human` (< 1: the simulation compresses the variance);
- `ks_stat, ks_p`: two-sample Kolmogorov-Smirnov (scipy.stats.ks_2samp; exact/asymptotic as
  scipy picks; with many ties on a 1-5 scale it is conservative);
- `wasserstein`: earth mover's distance between the two empirical distributions, in scale units
  (scipy.stats.wasserstein_distance);
- `chi2, chi2_df, chi2_p`: Pearson's chi-square on the 2 x K table of answer categories
  (scipy.stats.chi2_contingency, no continuity correction; categories empty on both sides are
  dropped); `chi2_min_expected` and, because small expected counts (< 5, Cochran 1954) make the
  asymptotic p unreliable, `chi2_p_perm`: the same statistic's Monte-Carlo permutation p-value
  (scipy `PermutationMethod`, `n_perm` resamples);
- `margin, p_tost`: two one-sided Welch t-tests for equivalence within +-margin (Schuirmann 1987;
  statsmodels `ttost_ind(usevar="unequal")`);
- `extreme_sim, extreme_human`: share of answers at either end of the scale;
- `verdict`: "equivalent within M on the a-b scale" (p_tost < alpha), "different" (the Welch CI
  excludes 0 and equivalence is not shown), else "not shown equivalent"; `notes`: why any
  number is missing (NaN, never a guess).

Categorical answers (`categories=[...]`, e.g. a top choice "A".."E") get the counts, shares,
chi-square and its permutation p; the mean-based columns are NaN with the reason in `notes`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

ANSWER_KINDS = ("number", "top_choice", "category")
COLUMNS = ["group_by", "group", "n_sim", "n_human", "mean_sim", "mean_human", "sd_sim", "sd_human",
           "diff", "ci_low", "ci_high", "p_welch", "sd_ratio", "ks_stat", "ks_p", "wasserstein",
           "chi2", "chi2_df", "chi2_p", "chi2_min_expected", "chi2_p_perm", "margin", "p_tost",
           "extreme_sim", "extreme_human", "verdict", "notes"]


class ValidationInputError(ValueError):
    """Human data or a simulated table that cannot be compared; names the file, the column and the fix."""


# ----------------------------------------------------------------------------- reading human data
def read_human(path: str | Path, column: str, *, by: str | None = None, answer: str = "number",
               scale: Sequence[float] | None = None) -> pd.DataFrame:
    """Real answers from a .csv or .parquet file -> DataFrame `answer` (float for answer="number",
    str otherwise) [+ `group` when `by` names a column]. answer="top_choice" reads rankings such
    as "B-C-D-A-E" and keeps the first option. Rows with an empty answer are dropped (they are
    not answers); a non-numeric or out-of-scale number raises ValidationInputError naming the
    file, the column, the row and the fix."""
    p = Path(path).expanduser()
    if answer not in ANSWER_KINDS:
        raise ValidationInputError(f"answer={answer!r}: use one of {', '.join(ANSWER_KINDS)}")
    if not p.is_file():
        raise ValidationInputError(f"{p}: no such file; give the path of a .csv or .parquet file with "
                                   "one row per respondent")
    try:
        df = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds; the user needs the file name
        raise ValidationInputError(f"{p}: cannot be read as {'parquet' if p.suffix == '.parquet' else 'CSV'} "
                                   f"({type(exc).__name__}: {exc})") from None
    for name, role in ((column, "--column / validation.column"), (by, "--by / validation.by")):
        if name is not None and name not in df.columns:
            raise ValidationInputError(f"{p}: no column {name!r} ({role}); its columns are {list(df.columns)}")
    raw = df[column]
    keep = raw.notna() & (raw.astype(str).str.strip() != "")
    if not keep.any():
        raise ValidationInputError(f"{p}: column {column!r} has no answers (all {len(raw)} row(s) empty); "
                                   "fix the file, or name the column that holds the answers (--column / "
                                   "validation.column)")
    out = pd.DataFrame(index=df.index[keep])
    if answer == "number":
        num = pd.to_numeric(raw[keep], errors="coerce")
        bad = num[num.isna()]
        if len(bad):
            i = bad.index[0]
            raise ValidationInputError(f"{p}: column {column!r} row {i + 2} holds {_plain(raw[i])!r}, not a number; "
                                       "fix the file, or use answer=top_choice / category for text answers")
        if scale is not None:
            lo, hi = float(scale[0]), float(scale[1])
            off = num[(num < lo) | (num > hi)]
            if len(off):
                i = off.index[0]
                raise ValidationInputError(f"{p}: column {column!r} row {i + 2} holds {_plain(raw[i])!r}, outside the "
                                           f"scale {lo:g}-{hi:g}; fix the file or the scale (--scale / validation.scale)")
        out["answer"] = num.astype(float)
    else:
        text = raw[keep].astype(str).str.strip()
        out["answer"] = text.str.split("-").str[0].str.strip() if answer == "top_choice" else text
    if by is not None:
        out["group"] = df.loc[keep, by].astype(str).str.strip()
    return out.reset_index(drop=True)


def _plain(value):
    """A numpy scalar as the plain Python value (messages show 4, not np.int64(4))."""
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------------------------- one comparison
def _welch(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, str]:
    """(ci_low, ci_high, p) of mean(x) - mean(y), Welch; NaN with a reason when undefined."""
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    if len(x) < 2 or len(y) < 2:
        return math.nan, math.nan, math.nan, "Welch CI needs >= 2 answers on each side"
    if x.var(ddof=1) == 0 and y.var(ddof=1) == 0:
        return math.nan, math.nan, math.nan, "Welch CI undefined: no variation on either side"
    cm = CompareMeans(DescrStatsW(x), DescrStatsW(y))
    lo, hi = cm.tconfint_diff(alpha=0.05, usevar="unequal")
    _, p, _ = cm.ttest_ind(usevar="unequal")
    return float(lo), float(hi), float(p), ""


def _chi2(x: Sequence, y: Sequence, categories: Sequence, n_perm: int, seed: int) -> dict:
    cats = [c for c in categories if c in set(x) or c in set(y)]
    out = {"chi2": math.nan, "chi2_df": math.nan, "chi2_p": math.nan, "chi2_min_expected": math.nan,
           "chi2_p_perm": math.nan}
    if len(cats) < 2:
        return {**out, "_note": "chi-square needs >= 2 answer categories in use"}
    table = np.array([[sum(v == c for v in x) for c in cats], [sum(v == c for v in y) for c in cats]])
    if (table.sum(axis=1) == 0).any():  # a side with no answer in the categories: expected counts 0
        side = "simulated" if table[0].sum() == 0 else "human"
        return {**out, "_note": f"chi-square undefined: no {side} answer falls in the categories "
                                f"{', '.join(map(str, categories))}"}
    res = stats.chi2_contingency(table, correction=False)
    out.update(chi2=float(res.statistic), chi2_df=float(res.dof), chi2_p=float(res.pvalue),
               chi2_min_expected=float(res.expected_freq.min()))
    perm = stats.chi2_contingency(table, correction=False, method=stats.PermutationMethod(
        n_resamples=n_perm, rng=np.random.default_rng(seed)))
    out["chi2_p_perm"] = float(perm.pvalue)
    if out["chi2_min_expected"] < 5:
        out["_note"] = (f"chi-square: smallest expected count {out['chi2_min_expected']:.1f} < 5, "
                        "read chi2_p_perm (permutation) rather than chi2_p")
    return out


def compare_answers(sim: Sequence, human: Sequence, *, scale: Sequence[float] | None = (1, 5),
                    margin: float = 0.5, categories: Sequence[str] | None = None, alpha: float = 0.05,
                    n_perm: int = 9999, seed: int = 0) -> dict:
    """One comparison of simulated vs human answers (see the module docstring for every field).
    Numbers on `scale` (inclusive ends; its whole numbers are the chi-square categories), or
    labels when `categories` is given. Returns a dict with the COLUMNS keys except group_by/group."""
    notes: list[str] = []
    row: dict = {c: math.nan for c in COLUMNS if c not in ("group_by", "group", "verdict", "notes")}
    row["margin"] = float(margin) if categories is None else math.nan
    if categories is not None:
        xs, ys = [str(v) for v in sim if pd.notna(v)], [str(v) for v in human if pd.notna(v)]
        row.update(n_sim=len(xs), n_human=len(ys))
        notes.append("categorical answers: means, CI, KS, Wasserstein and TOST do not apply")
        cats = set(map(str, categories))
        for side, vals in (("simulated", xs), ("human", ys)):
            if outside := [v for v in vals if v not in cats]:
                notes.append(f"{len(outside)} {side} answer(s) outside the categories (e.g. {outside[0]!r}) "
                             "are left out of the chi-square")
        if xs and ys:
            chi = _chi2(xs, ys, list(categories), n_perm, seed)
            if "_note" in chi:
                notes.append(chi.pop("_note"))
            row.update(chi)
        else:
            notes.append("no answers on one side")
        row["verdict"] = ("not compared" if math.isnan(row["chi2_p_perm"]) else
                          "different" if row["chi2_p_perm"] < alpha else "not shown different")
        row["notes"] = "; ".join(notes)
        return row
    x = np.asarray([v for v in sim if pd.notna(v)], float)
    y = np.asarray([v for v in human if pd.notna(v)], float)
    row.update(n_sim=len(x), n_human=len(y))
    if not len(x) or not len(y):
        for side, v in (("sim", x), ("human", y)):  # the side with answers keeps its own numbers
            if len(v):
                row.update({f"mean_{side}": float(v.mean()), f"sd_{side}": float(v.std(ddof=1)) if len(v) > 1
                            else math.nan})
                if scale is not None:
                    row[f"extreme_{side}"] = float(np.mean((v == float(scale[0])) | (v == float(scale[1]))))
        empty = "simulated" if not len(x) else "human"
        row.update(verdict="not compared",
                   notes=f"no {empty} answers (n_{'sim' if not len(x) else 'human'} = 0): the comparison "
                         "statistics and that side's mean, SD and extreme share are NaN"
                         + ("; SD needs >= 2 answers" if len(x) == 1 or len(y) == 1 else ""))
        return row
    lo, hi = (float(scale[0]), float(scale[1])) if scale is not None else (min(x.min(), y.min()), max(x.max(), y.max()))
    row.update(mean_sim=float(x.mean()), mean_human=float(y.mean()), diff=float(x.mean() - y.mean()),
               sd_sim=float(x.std(ddof=1)) if len(x) > 1 else math.nan,
               sd_human=float(y.std(ddof=1)) if len(y) > 1 else math.nan,
               extreme_sim=float(np.mean((x == lo) | (x == hi))),
               extreme_human=float(np.mean((y == lo) | (y == hi))))
    row["ci_low"], row["ci_high"], row["p_welch"], why = _welch(x, y)
    if why:
        notes.append(why)
    if math.isnan(row["sd_human"]) or row["sd_human"] == 0:
        notes.append("sd_ratio undefined: the human answers have no variation (or n < 2)")
    else:
        row["sd_ratio"] = row["sd_sim"] / row["sd_human"]
    ks = stats.ks_2samp(x, y)
    row.update(ks_stat=float(ks.statistic), ks_p=float(ks.pvalue),
               wasserstein=float(stats.wasserstein_distance(x, y)))
    whole = np.arange(math.ceil(lo), math.floor(hi) + 1)
    if np.all(np.isin(x, whole)) and np.all(np.isin(y, whole)):
        chi = _chi2(list(x), list(y), list(whole.astype(float)), n_perm, seed)
        if "_note" in chi:
            notes.append(chi.pop("_note"))
        row.update(chi)
    else:
        notes.append("chi-square skipped: answers are not whole numbers of the scale")
    if not why:
        from statsmodels.stats.weightstats import ttost_ind

        p, _, _ = ttost_ind(x, y, -margin, margin, usevar="unequal")
        row["p_tost"] = float(p)
    else:
        notes.append("TOST undefined for the same reason as the Welch CI")
    row["verdict"] = verdict(row, alpha, (lo, hi))
    row["notes"] = "; ".join(notes)
    return row


def verdict(row: dict, alpha: float = 0.05, scale: Sequence[float] = (1, 5)) -> str:
    """Plain words for one comparison: equivalence first (TOST), then a difference (Welch CI)."""
    if row.get("p_tost", math.nan) < alpha:
        return f"equivalent within {row['margin']:g} on the {scale[0]:g}-{scale[1]:g} scale"
    if row.get("ci_low", math.nan) > 0 or row.get("ci_high", math.nan) < 0:
        return "different"
    if math.isnan(row.get("ci_low", math.nan)):
        return "not compared"
    return "not shown equivalent"


# ----------------------------------------------------------------------------- whole table
def validate_answers(sim: pd.DataFrame, human: pd.DataFrame, *, scale: Sequence[float] | None = (1, 5),
             margin: float = 0.5, by: str | None = None, categories: Sequence[str] | None = None,
             alpha: float = 0.05, n_perm: int = 9999, seed: int = 0) -> pd.DataFrame:
    """Both frames have `answer` (and `group` when `by` is given). Returns one row for all answers
    (group "all") and one per subgroup value present on both sides; subgroups on one side only
    are listed with NaN statistics and a note. Columns: COLUMNS."""
    for name, df in (("simulated", sim), ("human", human)):
        need = ["answer"] + (["group"] if by else [])
        if missing := [c for c in need if c not in df.columns]:
            raise ValidationInputError(f"the {name} table has no column(s) {missing}; "
                                       + ("the run's personas need the attribute named by --by" if by else ""))
    kw = dict(scale=scale, margin=margin, categories=categories, alpha=alpha, n_perm=n_perm, seed=seed)
    rows = [{"group_by": "", "group": "all", **compare_answers(sim["answer"], human["answer"], **kw)}]
    if by:
        for g in sorted(set(sim["group"]) | set(human["group"])):
            r = compare_answers(sim.loc[sim["group"] == g, "answer"], human.loc[human["group"] == g, "answer"], **kw)
            rows.append({"group_by": by, "group": g, **r})
    return pd.DataFrame(rows, columns=COLUMNS)
