"""How much an LLM judge agrees with itself (repeated judgements, `experiment.judge_k >= 2`) and
with another judge (`judge_agreement`).

`judge_reliability(samples)` -> one row per proposition (`judge_reliability.csv`):
`proposition, n_items, k, n_scores, alpha_ordinal, share_disagree_3plus, mean_sd, notes, reliable`.

- `alpha_ordinal`: Krippendorff's alpha for ordinal data over the items (units) x repeats
  (coders) matrix of 0-9 scores, missing scores allowed (Krippendorff 2011, "Computing
  Krippendorff's alpha-reliability"; computed by the `krippendorff` package with the value
  domain 0..9). NaN with a reason when fewer than 2 items have 2 scores, or every score is the
  same (no variation: alpha is 0/0).
- `share_disagree_3plus`: share of items (with >= 2 scores) whose repeats differ by >= 3 points.
- `reliable`: alpha >= 0.667 (Krippendorff 2004, p. 241: the lowest conceivable limit for
  tentative conclusions; 0.8 for firm ones); empty when alpha is NaN.

`samples_from_transcript(path)` reads the judge events of a run's `transcript.jsonl` (their
`scores.samples` lists the k scores of one item).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

ALPHA_MIN = 0.667
COLUMNS = ["proposition", "n_items", "k", "n_scores", "alpha_ordinal", "share_disagree_3plus", "mean_sd",
           "reliable", "notes"]
DOMAIN = list(range(10))


def samples_from_transcript(path: str | Path) -> pd.DataFrame:
    """Long table `proposition, item, repeat, score` (score NaN = no usable reply) from the judge
    events of a transcript.jsonl that carry >= 2 samples. item = "<session>/<agent or session>"."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if '"samples"' not in line:
                continue
            e = json.loads(line)
            samples = (e.get("scores") or {}).get("samples") or []
            if e.get("kind") != "judge" or len(samples) < 2:
                continue
            item = f"{e.get('session', '')}/{e.get('agent') or '(session)'}"
            for i, s in enumerate(samples):
                rows.append({"proposition": e["type"], "item": item, "repeat": i,
                             "score": math.nan if s is None else float(s)})
    return pd.DataFrame(rows, columns=["proposition", "item", "repeat", "score"])


def ordinal_alpha(matrix: np.ndarray) -> tuple[float, str]:
    """Krippendorff's ordinal alpha of a coders x units matrix (NaN = missing) on the 0-9 domain;
    (NaN, reason) when undefined."""
    import krippendorff

    pairable = (~np.isnan(matrix)).sum(axis=0) >= 2
    if pairable.sum() < 2:
        return math.nan, "fewer than 2 items with >= 2 scores"
    values = matrix[:, pairable]
    if np.unique(values[~np.isnan(values)]).size < 2:
        return math.nan, "every score is the same: alpha is undefined (no variation to agree on)"
    return float(krippendorff.alpha(reliability_data=matrix[:, pairable], value_domain=DOMAIN,
                                    level_of_measurement="ordinal")), ""


def judge_reliability(samples: pd.DataFrame) -> pd.DataFrame:
    """Per proposition, from the long table of `samples_from_transcript`; see the module docstring."""
    rows = []
    for prop, sub in samples.groupby("proposition", sort=True):
        wide = sub.pivot_table(index="repeat", columns="item", values="score", aggfunc="first", dropna=False)
        matrix = wide.to_numpy(float)
        alpha, why = ordinal_alpha(matrix)
        valid = (~np.isnan(matrix)).sum(axis=0) >= 2
        spread = np.nanmax(matrix[:, valid], axis=0) - np.nanmin(matrix[:, valid], axis=0) if valid.any() else []
        sds = np.nanstd(matrix[:, valid], axis=0, ddof=1) if valid.any() else []
        rows.append({"proposition": prop, "n_items": int(matrix.shape[1]), "k": int(matrix.shape[0]),
                     "n_scores": int((~np.isnan(matrix)).sum()), "alpha_ordinal": alpha,
                     "share_disagree_3plus": float(np.mean(np.asarray(spread) >= 3)) if valid.any() else math.nan,
                     "mean_sd": float(np.mean(sds)) if valid.any() else math.nan,
                     "reliable": "" if math.isnan(alpha) else bool(alpha >= ALPHA_MIN), "notes": why})
    return pd.DataFrame(rows, columns=COLUMNS)


def write_judge_reliability(run_dir: str | Path, out_dir: str | Path | None = None) -> Path | None:
    """`<run_dir>/analysis/judge_reliability.csv` from the transcript; None (nothing written) when
    no judge event has repeated samples (judge_k = 1)."""
    root = Path(run_dir)
    transcript = root / "transcript.jsonl"
    if not transcript.is_file():
        return None
    samples = samples_from_transcript(transcript)
    if samples.empty:
        return None
    out = Path(out_dir) if out_dir else root / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    judge_reliability(samples).to_csv(out / "judge_reliability.csv", index=False)
    return out / "judge_reliability.csv"


def judge_agreement(a: Sequence[float], b: Sequence[float], weights: str = "quadratic") -> dict:
    """Agreement of two judges scoring the same items 0-9 (e.g. a cheap judge vs a strong one):
    weighted Cohen's kappa (Cohen 1968; sklearn-free: statsmodels `cohens_kappa` with linear or
    quadratic weights on the 0..9 categories), Krippendorff's ordinal alpha, n and exact-agreement
    share. Items where either score is missing are dropped. NaN with `notes` when undefined."""
    from statsmodels.stats.inter_rater import cohens_kappa

    x, y = np.asarray(a, float), np.asarray(b, float)
    if x.shape != y.shape:
        raise ValueError(f"judge_agreement: a has {x.size} scores, b has {y.size}; give both judges' scores "
                         "of the same items in the same order")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep].astype(int), y[keep].astype(int)
    out = {"n": int(keep.sum()), "exact_agreement": float(np.mean(x == y)) if len(x) else math.nan,
           "kappa_weighted": math.nan, "weights": weights, "alpha_ordinal": math.nan, "notes": ""}
    if len(x) < 2:
        out["notes"] = "fewer than 2 items scored by both judges"
        return out
    table = np.zeros((10, 10))
    np.add.at(table, (x, y), 1)
    res = cohens_kappa(table, wt="linear" if weights == "linear" else "quadratic")
    out["kappa_weighted"] = float(res.kappa)
    out["alpha_ordinal"], out["notes"] = ordinal_alpha(np.vstack([x, y]).astype(float))
    if math.isnan(out["kappa_weighted"]):
        out["notes"] = out["notes"] or "kappa undefined: no variation in the scores"
    return out


# ----------------------------------------------------------------------------- judge vs labels
def auc_with_ci(scores: Sequence[float], labels: Sequence[bool], *, n_boot: int = 2000, seed: int = 0,
                confidence: float = 0.95) -> dict:
    """Area under the ROC curve of `scores` for `labels` (True = positive), ties counted one half:
    AUC = U / (n_pos * n_neg), U the Mann-Whitney statistic of the positives (Hanley & McNeil 1982;
    the tests check it against scipy.stats.mannwhitneyu). CI: percentile bootstrap over items, pairs resampled together
    (Efron & Tibshirani 1993; scipy.stats.bootstrap). Items with a missing score are dropped and
    counted in `n_missing`. NaN with `notes` when a class is empty."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    keep = ~np.isnan(s)
    s, y = s[keep], y[keep]
    out = {"auc": math.nan, "auc_ci_low": math.nan, "auc_ci_high": math.nan, "n": int(len(s)),
           "n_pos": int(y.sum()), "n_neg": int((~y).sum()), "n_missing": int((~keep).sum()), "notes": ""}
    if not y.any() or y.all():
        out["notes"] = "AUC needs scored items of both classes"
        return out

    def auc(sc: np.ndarray, lab: np.ndarray, axis: int = -1) -> np.ndarray:
        # U of the positives from midranks (ties one half), vectorised over bootstrap resamples
        lab = np.asarray(lab).astype(bool)
        n_pos, n_neg = lab.sum(axis=axis), (~lab).sum(axis=axis)
        u = (stats.rankdata(sc, axis=axis) * lab).sum(axis=axis) - n_pos * (n_pos + 1) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)

    out["auc"] = float(auc(s, y))
    with warnings.catch_warnings():  # a NaN CI is reported in `notes` below
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        boot = stats.bootstrap((s, y), auc, paired=True, vectorized=True, n_resamples=n_boot,
                               confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    out["auc_ci_low"], out["auc_ci_high"] = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    if math.isnan(out["auc_ci_low"]):
        out["notes"] = "bootstrap CI undefined: some resamples hold one class only (too few items)"
    return out


def accuracy_with_ci(predicted: Sequence[bool], labels: Sequence[bool], confidence: float = 0.95) -> dict:
    """Share of items where `predicted` equals `labels`, with the Wilson score interval (Wilson
    1927; statsmodels proportion_confint(method="wilson")). Items with predicted None are dropped."""
    from statsmodels.stats.proportion import proportion_confint

    pairs = [(bool(p), bool(t)) for p, t in zip(predicted, labels) if p is not None]
    n, hits = len(pairs), sum(p == t for p, t in pairs)
    if not n:
        return {"accuracy": math.nan, "acc_ci_low": math.nan, "acc_ci_high": math.nan, "n": 0,
                "notes": "no scored items"}
    lo, hi = proportion_confint(hits, n, alpha=1 - confidence, method="wilson")
    return {"accuracy": hits / n, "acc_ci_low": float(lo), "acc_ci_high": float(hi), "n": n, "notes": ""}
