"""Two-sample tests on independent values: Welch t, Mann-Whitney U, permutation (vectorised)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    """A difference (treatment - control) with its CI, p-value and the method that produced them."""

    diff: float
    ci_low: float
    ci_high: float
    p: float
    method: str
    df: float = NAN


def welch(control: np.ndarray, treatment: np.ndarray, alpha: float = 0.05) -> Estimate:
    """Welch's unequal-variance t-test on treatment - control, with its (1-alpha) CI."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    nc, nt = len(c), len(t)
    if nc < 2 or nt < 2:
        diff = t.mean() - c.mean() if nc and nt else NAN
        return Estimate(diff, NAN, NAN, NAN, "Welch t-test")
    diff = t.mean() - c.mean()
    vc, vt = c.var(ddof=1) / nc, t.var(ddof=1) / nt
    se = math.sqrt(vc + vt)
    if se == 0:
        return Estimate(diff, diff, diff, 1.0 if diff == 0 else 0.0, "Welch t-test")
    df = (vc + vt) ** 2 / (vc**2 / (nc - 1) + vt**2 / (nt - 1))
    tstat = diff / se
    p = 2 * stats.t.sf(abs(tstat), df)
    half = stats.t.ppf(1 - alpha / 2, df) * se
    return Estimate(diff, diff - half, diff + half, float(p), "Welch t-test", df)


def mann_whitney(control: np.ndarray, treatment: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (scipy's tie-corrected test)."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    if len(c) == 0 or len(t) == 0:
        return NAN
    if np.ptp(np.concatenate([c, t])) == 0:
        return 1.0
    return float(stats.mannwhitneyu(t, c, alternative="two-sided").pvalue)


def permutation_test(control: np.ndarray, treatment: np.ndarray, n_perm: int = 10000,
                     rng: np.random.Generator | None = None) -> float:
    """Two-sided permutation p-value for the difference in means (Monte Carlo, +1 corrected).

    Vectorised: all permutations are drawn as one (n_perm x n) index matrix, in chunks.
    """
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    nc, nt = len(c), len(t)
    if nc == 0 or nt == 0:
        return NAN
    rng = rng or np.random.default_rng(0)
    pooled = np.concatenate([c, t])
    n = nc + nt
    obs = abs(t.mean() - c.mean())
    total = pooled.sum()
    tol = 1e-12 * max(1.0, np.abs(pooled).max())
    hits = 0
    chunk = max(1, min(n_perm, 2_000_000 // n))
    done = 0
    while done < n_perm:
        b = min(chunk, n_perm - done)
        idx = np.argsort(rng.random((b, n)), axis=1)[:, :nt]
        st = pooled[idx].sum(axis=1)
        diffs = st / nt - (total - st) / nc
        hits += int(np.count_nonzero(np.abs(diffs) >= obs - tol))
        done += b
    return (hits + 1) / (n_perm + 1)
