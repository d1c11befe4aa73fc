"""Paired analysis: replicate r of each arm shares personas and seed, so compare within replicate.

Sources: paired t-test and Wilcoxon signed-rank via scipy.stats; the sign-flip (within-pair)
permutation test of Fisher (1935), exact by enumeration up to `exact_max` pairs.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from analysis.tests_basic import RTOL, Estimate, no_spread, scale_of

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


def common_replicates(rows: pd.DataFrame, control: str, treatment: str) -> int:
    """How many replicate ids carry non-missing values in both arms (rows of one metric)."""
    have = rows.dropna(subset=["value", "replicate"])
    c = set(have.loc[have["arm"] == control, "replicate"])
    return len(c & set(have.loc[have["arm"] == treatment, "replicate"]))


def paired_t(diffs: np.ndarray, alpha: float = 0.05, scale: float | None = None) -> Estimate:
    """One-sample t-test of the paired differences (treatment - control) against 0, with CI, df n-1.

    When the differences have no spread (relative tolerance, `tests_basic.RTOL` of `scale`, by
    default the largest |difference|) the t statistic is undefined: the exact sign-flip p is
    returned (2 / 2^n for n equal non-zero differences; 1 when they are all 0), CI NaN, with a note.
    """
    d = np.asarray(diffs, float)
    n = len(d)
    mean = float(d.mean()) if n else NAN
    if n < 2:
        return Estimate(mean, NAN, NAN, NAN, "paired t-test", note="fewer than 2 pairs")
    scale = scale if scale is not None else scale_of(d)
    if no_spread(d, scale):
        if abs(mean) <= RTOL * scale:
            return Estimate(0.0, NAN, NAN, 1.0, "no variation (every pair has the same difference)",
                            note="no variation: every pair differs by 0 (p = 1, CI undefined)")
        # n equal non-zero differences: only the two sign vectors with all signs alike reach |mean|,
        # so the exact sign-flip p is 2 / 2^n for any n (no enumeration, no Monte Carlo floor)
        return Estimate(mean, NAN, NAN, 2.0 ** (1 - n), "exact sign-flip test (no variation in differences)",
                        note="every pair has the same difference: t-based CI undefined, exact sign-flip p")
    se = d.std(ddof=1) / math.sqrt(n)
    p = 2 * stats.t.sf(abs(mean / se), n - 1)
    half = stats.t.ppf(1 - alpha / 2, n - 1) * se
    return Estimate(mean, mean - half, mean + half, float(p), "paired t-test", n - 1, float(se))


def wilcoxon(diffs: np.ndarray) -> float:
    """Wilcoxon signed-rank p (scipy; zero differences dropped); 1 when every difference is 0."""
    d = np.asarray(diffs, float)
    if len(d) == 0:
        return NAN
    if np.all(np.abs(d) <= RTOL * scale_of(d)) or np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(d).pvalue)


def sign_flip_test(diffs: np.ndarray, n_perm: int = 10000, rng: np.random.Generator | None = None,
                   exact_max: int = 14, shift: float = 0.0, alternative: str = "two-sided") -> float:
    """Paired permutation (sign-flip) p for H0: mean difference = shift; exact for <= exact_max pairs.

    alternative: 'two-sided', 'greater' (mean > shift) or 'less'. Monte Carlo (+1 corrected) above
    exact_max pairs.
    """
    d = np.asarray(diffs, float) - shift
    n = len(d)
    if n == 0:
        return NAN
    obs = d.mean()
    tol = 1e-9 * max(1.0, float(np.abs(d).max()))

    def count(signs: np.ndarray) -> int:
        m = signs @ d / n
        if alternative == "two-sided":
            return int(np.count_nonzero(np.abs(m) >= abs(obs) - tol))
        if alternative == "greater":
            return int(np.count_nonzero(m >= obs - tol))
        return int(np.count_nonzero(m <= obs + tol))

    if n <= exact_max:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        return float(count(signs) / len(signs))
    rng = rng or np.random.default_rng(0)
    hits, done = 0, 0
    chunk = max(1, min(n_perm, 2_000_000 // n))
    while done < n_perm:
        b = min(chunk, n_perm - done)
        hits += count(rng.choice((-1.0, 1.0), size=(b, n)))
        done += b
    return (hits + 1) / (n_perm + 1)


def no_spread_pairs(d: np.ndarray) -> bool:
    """True when the paired differences are (numerically) all equal."""
    return no_spread(np.asarray(d, float), scale_of(d))
