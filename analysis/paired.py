"""Paired analysis: replicate r of each arm shares personas and seed, so compare within replicate."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from analysis.tests_basic import Estimate

NAN = float("nan")


def pair_up(control: pd.DataFrame, treatment: pd.DataFrame) -> pd.DataFrame:
    """Per-replicate means of each arm, joined on replicate; columns replicate, control, treatment.

    Inputs are rows of one metric with columns replicate, value (NaNs already dropped). Agent-level
    values are first averaged per replicate (= per session when one session per replicate).
    """
    c = control.dropna(subset=["replicate"]).groupby("replicate")["value"].mean()
    t = treatment.dropna(subset=["replicate"]).groupby("replicate")["value"].mean()
    both = pd.concat({"control": c, "treatment": t}, axis=1, join="inner").reset_index()
    return both.sort_values("replicate").reset_index(drop=True)


def paired_t(diffs: np.ndarray, alpha: float = 0.05) -> Estimate:
    """One-sample t-test of the paired differences (treatment - control) against 0, with CI."""
    d = np.asarray(diffs, float)
    n = len(d)
    mean = float(d.mean()) if n else NAN
    if n < 2:
        return Estimate(mean, NAN, NAN, NAN, "paired t-test")
    se = d.std(ddof=1) / math.sqrt(n)
    if se == 0:
        return Estimate(mean, mean, mean, 1.0 if mean == 0 else 0.0, "paired t-test", n - 1)
    p = 2 * stats.t.sf(abs(mean / se), n - 1)
    half = stats.t.ppf(1 - alpha / 2, n - 1) * se
    return Estimate(mean, mean - half, mean + half, float(p), "paired t-test", n - 1)


def wilcoxon(diffs: np.ndarray) -> float:
    """Wilcoxon signed-rank p (scipy; zero differences dropped, Pratt-free default)."""
    d = np.asarray(diffs, float)
    if len(d) == 0:
        return NAN
    if np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(d).pvalue)


def sign_flip_test(diffs: np.ndarray, n_perm: int = 10000, rng: np.random.Generator | None = None,
                   exact_max: int = 14) -> float:
    """Two-sided paired permutation (sign-flip) p for mean difference; exact for <= exact_max pairs."""
    d = np.asarray(diffs, float)
    n = len(d)
    if n == 0:
        return NAN
    obs = abs(d.mean())
    tol = 1e-12 * max(1.0, np.abs(d).max())
    if n <= exact_max:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        means = np.abs(signs @ d) / n
        return float(np.count_nonzero(means >= obs - tol) / len(means))
    rng = rng or np.random.default_rng(0)
    hits, done = 0, 0
    chunk = max(1, min(n_perm, 2_000_000 // n))
    while done < n_perm:
        b = min(chunk, n_perm - done)
        signs = rng.choice((-1.0, 1.0), size=(b, n))
        hits += int(np.count_nonzero(np.abs(signs @ d) / n >= obs - tol))
        done += b
    return (hits + 1) / (n_perm + 1)
