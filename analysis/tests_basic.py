"""Two-sample tests on independent values: Welch t, Mann-Whitney U, permutation (vectorised)."""

from __future__ import annotations

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


def welch_arrays(control: np.ndarray, treatment: np.ndarray, alpha: float = 0.05):
    """Vectorised Welch test along the last axis: returns (diff, ci_low, ci_high, p, df) arrays.

    Used directly by the calibration simulations (thousands of experiments at once).
    """
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    nc, nt = c.shape[-1], t.shape[-1]
    diff = t.mean(axis=-1) - c.mean(axis=-1)
    vc, vt = c.var(axis=-1, ddof=1) / nc, t.var(axis=-1, ddof=1) / nt
    se = np.sqrt(vc + vt)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (vc + vt) ** 2 / (vc**2 / (nc - 1) + vt**2 / (nt - 1))
        tstat = diff / se
    p = 2 * stats.t.sf(np.abs(tstat), df)
    half = stats.t.ppf(1 - alpha / 2, df) * se
    zero = se == 0  # no variance at all: the difference is exact
    p = np.where(zero, np.where(diff == 0, 1.0, 0.0), p)
    half = np.where(zero, 0.0, half)
    return diff, diff - half, diff + half, p, df


def welch(control: np.ndarray, treatment: np.ndarray, alpha: float = 0.05) -> Estimate:
    """Welch's unequal-variance t-test on treatment - control, with its (1-alpha) CI."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    if len(c) < 2 or len(t) < 2:
        diff = t.mean() - c.mean() if len(c) and len(t) else NAN
        return Estimate(float(diff), NAN, NAN, NAN, "Welch t-test")
    diff, lo, hi, p, df = welch_arrays(c, t, alpha)
    return Estimate(float(diff), float(lo), float(hi), float(p), "Welch t-test", float(df))


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
