"""The headline estimate, CI, p and equivalence test for one comparison, on the headline units.

Rule (each choice holds its level in benchmarks/calibration.py):
- paired design: paired t-test on the per-replicate differences (df = pairs - 1);
- unpaired, equal numbers of units per arm, at least 10 each (or at most 4 each, too few splits for
  a permutation p): Welch t-test (with equal n the t-test is robust to skew and unequal variances;
  Welch 1947, df by Welch-Satterthwaite);
- unpaired, unequal numbers of units, or 5-9 per arm: studentized permutation test (Welch's t permuted; exact under
  exchangeability and asymptotically valid under unequal variances, Janssen 1997, Chung & Romano
  2013), exact over all splits when there are at most 20000, with the CI from inverting the same
  test (Ernst 2004). Welch's test over-rejects for skewed counts in unbalanced designs (4 v 16
  sessions: 9-10 % at alpha 0.05) and under-rejects them in small balanced ones (2.8 % at 8 v 8);
- more than 2000 units: Welch (the two agree asymptotically).
- no variation at all: the exact permutation / sign-flip p (see tests_basic.no_variation).
Equivalence (TOST, Schuirmann 1987) uses the same units and reference: t-based for Welch and
paired, two one-sided studentized permutation tests for the permutation headline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from analysis import paired, tests_basic
from analysis.tests_basic import Estimate

NAN = float("nan")


WELCH_MIN_UNITS = 10  # balanced arms of at least this many units: Welch (skewed counts: 0.031-0.034 at 10-12)
MIN_SPLITS = 200  # a permutation p needs at least this many splits to resolve alpha = 0.05 usefully


def use_welch(nc: int, nt: int) -> bool:
    """Welch for equal arms of >= WELCH_MIN_UNITS units, or equal arms too small for a useful
    permutation distribution (C(n, n_t) < MIN_SPLITS, e.g. 4 v 4); permutation otherwise."""
    if nc != nt:
        return False
    return nc >= WELCH_MIN_UNITS or math.comb(nc + nt, nt) < MIN_SPLITS


@dataclass(frozen=True)
class Headline:
    """The headline Estimate (diff, CI, p, df, method), the permutation p on the same units and p_tost."""

    est: Estimate
    p_permutation: float  # permutation p on the same units (within pairs when paired)
    p_tost: float


def unpaired(c: np.ndarray, t: np.ndarray, alpha: float, n_perm: int, rng: np.random.Generator,
             margin: float | None = None) -> Headline:
    """Headline for two independent samples of units (session means, session values or values)."""
    c, t = np.asarray(c, float), np.asarray(t, float)
    welch = tests_basic.welch(c, t, alpha)
    if min(len(c), len(t)) < 2:
        return Headline(welch, tests_basic.permutation_test(c, t, n_perm, rng), NAN)
    if tests_basic.both_constant(c, t):  # Welch's t undefined: the exact permutation p (any n)
        est = tests_basic.no_variation(c, t)
        return Headline(est, est.p, NAN)
    if len(c) + len(t) > tests_basic.PERM_MAX_UNITS:
        # large samples: Welch and the studentized permutation test agree asymptotically (Janssen 1997)
        note = (f"more than {tests_basic.PERM_MAX_UNITS} units: Welch t-test used as headline, "
                "permutation test not run")
        est = replace(welch, method="Welch t-test (large sample)", note=note)
        return Headline(est, NAN, tests_basic.tost_t(welch.diff, welch.se, welch.df, margin or NAN))
    idx, exact = tests_basic.split_indices(len(c), len(t), n_perm, rng)
    p_perm = tests_basic.permutation_test(c, t, studentized=True, idx=idx, exact=exact)
    if use_welch(len(c), len(t)):
        return Headline(welch, p_perm, tests_basic.tost_t(welch.diff, welch.se, welch.df, margin or NAN))
    lo, hi = tests_basic.permutation_ci(c, t, alpha, idx, exact, start=(welch.ci_low, welch.ci_high))
    kind = "exact" if exact else tests_basic.monte_carlo_label(len(idx))
    why = "unequal arms" if len(c) != len(t) else f"fewer than {WELCH_MIN_UNITS} units per arm"
    est = replace(welch, p=p_perm, ci_low=lo, ci_high=hi, df=NAN,
                  method=f"studentized permutation test ({kind}; {why})")
    p_tost = tests_basic.tost_permutation(c, t, margin, idx, exact) if margin else NAN
    return Headline(est, p_perm, p_tost)


def paired_diffs(d: np.ndarray, scale: float, alpha: float, n_perm: int, rng: np.random.Generator,
                 margin: float | None = None) -> Headline:
    """Headline for per-replicate differences d (treatment - control); scale = size of the data."""
    est = paired.paired_t(d, alpha, scale=scale)
    # no spread in d: paired_t already holds the exact sign-flip p (any number of pairs)
    p_perm = est.p if est.note and len(d) >= 2 else paired.sign_flip_test(d, n_perm, rng)
    p_tost = tests_basic.tost_t(est.diff, est.se, est.df, margin or NAN) if not est.note else NAN
    return Headline(est, p_perm, p_tost)
