"""Two-sample tests on independent values: Welch t, Mann-Whitney U, permutation tests (vectorised).

Sources: Welch (1947) via the Welch-Satterthwaite df; Mann-Whitney via scipy.stats.mannwhitneyu;
the studentized permutation test (permuting Welch's t) of Janssen (1997) and Chung & Romano (2013),
exact by enumeration when the number of splits is small, Monte Carlo (+1 corrected, Phipson &
Smyth 2010) otherwise; its CI by test inversion (Ernst 2004, "Permutation methods", sec. 3.3).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

NAN = float("nan")
# Float-noise floor: an SD (or difference) below RTOL x the largest |value| is rounding noise (e.g. 3/5 v
# 6/10, SD ~1e-17). RTOL is 1024 units of double precision (2.3e-13): a value of magnitude M is only
# resolved to ~eps x M, and sums/means of a few thousand values add at most ~1000 such roundings. Values
# around 1e12 with an SD of 1 (1e-12 relative) are real variation, well above it.
RTOL = 1024 * float(np.finfo(float).eps)
EXACT_MAX = 20000  # enumerate every split when C(n, n_t) is at most this
PERM_MAX_UNITS = 2000  # above this many units in total, permutation tests are not run (Welch is used)


@dataclass(frozen=True)
class Estimate:
    """A difference (treatment - control) with its CI, p-value, the t-reference df and the method."""

    diff: float
    ci_low: float
    ci_high: float
    p: float
    method: str
    df: float = NAN
    se: float = NAN
    note: str = ""


def scale_of(*arrays: np.ndarray) -> float:
    """The size of the data (largest |value|, at least 1e-300) that tolerances are relative to."""
    m = max((float(np.max(np.abs(a))) for a in arrays if len(a)), default=0.0)
    return max(m, 1e-300)


def no_spread(x: np.ndarray, scale: float) -> bool:
    """True when x has fewer than 2 values or its SD is float noise relative to `scale`."""
    return len(x) < 2 or float(np.std(x)) <= RTOL * scale


def welch_arrays(control: np.ndarray, treatment: np.ndarray, alpha: float = 0.05):
    """Vectorised Welch test along the last axis: returns (diff, ci_low, ci_high, p, df) arrays.

    Used directly by the calibration simulations (thousands of experiments at once). Where both
    arms have no spread the p, CI and df are NaN (undefined); `welch` handles that case exactly.
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
    return diff, diff - half, diff + half, p, df


def welch(control: np.ndarray, treatment: np.ndarray, alpha: float = 0.05) -> Estimate:
    """Welch's unequal-variance t-test on treatment - control, with its (1-alpha) CI and df.

    Inputs: two 1-D arrays (any unit). With no spread in either arm the t statistic is undefined
    (0/0 or d/0): p, CI and df are NaN with the reason in `note`; `no_variation` gives the exact
    permutation p for that case.
    """
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    if len(c) < 2 or len(t) < 2:
        diff = t.mean() - c.mean() if len(c) and len(t) else NAN
        return Estimate(float(diff), NAN, NAN, NAN, "Welch t-test", note="fewer than 2 units in an arm")
    if both_constant(c, t):
        return Estimate(float(t.mean() - c.mean()), NAN, NAN, NAN, "Welch t-test",
                        note="Welch t undefined: both arms have SD 0")
    diff, lo, hi, p, df = welch_arrays(c, t, alpha)
    se = math.sqrt(c.var(ddof=1) / len(c) + t.var(ddof=1) / len(t))
    return Estimate(float(diff), float(lo), float(hi), float(p), "Welch t-test", float(df), se)


def both_constant(c: np.ndarray, t: np.ndarray) -> bool:
    """True when neither arm has spread beyond float noise (`no_spread` at the data's scale)."""
    scale = scale_of(c, t)
    return no_spread(c, scale) and no_spread(t, scale)


def no_variation(c: np.ndarray, t: np.ndarray) -> Estimate:
    """Both arms constant: diff is exact; p is the exact permutation p of the mean difference.

    The pooled sample holds two values (n_c of the control's a, n_t of the treatment's b), so the
    mean difference of a split depends only on k, the number of b's it puts in the treatment arm:
    diff(k) = (b - a)(k/n_t - (n_t - k)/n_c), with k hypergeometric under H0. p is the hypergeometric
    mass of the k with |diff(k)| >= |diff(n_t)| - exact for any n, no enumeration needed (the
    permutation test of Fisher 1935; for two values it is Fisher's exact test of the 2x2 table
    arm x value): 2 / C(24, 12) for 12 v 12.
    """
    c, t = np.asarray(c, float), np.asarray(t, float)
    diff = float(t.mean() - c.mean())
    if abs(diff) <= RTOL * scale_of(c, t):
        return Estimate(0.0, NAN, NAN, 1.0, "no variation (every unit has the same value)",
                        note="no variation: every unit has the same value (p = 1, CI undefined)")
    nc, nt = len(c), len(t)
    k = np.arange(max(0, nt - nc), nt + 1)
    d = k / nt - (nt - k) / nc  # diff(k) / (b - a)
    hits = k[np.abs(d) >= abs(d[-1]) * (1 - 1e-12)]
    p = float(min(1.0, stats.hypergeom(nc + nt, nt, nt).pmf(hits).sum()))
    return Estimate(diff, NAN, NAN, p, "exact permutation test (no within-arm variation)",
                    note="no within-arm variation: t-based CI and standardised effects undefined")


def mann_whitney(control: np.ndarray, treatment: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (scipy's tie-corrected test); 1 when all values are equal."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    if len(c) == 0 or len(t) == 0:
        return NAN
    if np.ptp(np.concatenate([c, t])) <= RTOL * scale_of(c, t):
        return 1.0
    return float(stats.mannwhitneyu(t, c, alternative="two-sided").pvalue)


def split_indices(nc: int, nt: int, n_perm: int, rng: np.random.Generator | None) -> tuple[np.ndarray, bool]:
    """(B x nt) indices of the pooled sample forming the treatment arm, and whether they are exhaustive.

    All C(n, nt) splits when that is <= max(EXACT_MAX, n_perm), else n_perm random splits.
    """
    n = nc + nt
    total = math.comb(n, nt)
    if total <= max(EXACT_MAX, n_perm):
        return np.array(list(itertools.combinations(range(n), nt)), dtype=np.int64).reshape(total, nt), True
    rng = rng or np.random.default_rng(0)
    step = max(1, 4_000_000 // n)  # draw in chunks: at most ~32 MB of temporaries at a time
    parts = [np.argsort(rng.random((min(step, n_perm - s), n)), axis=1)[:, :nt].astype(np.int32)
             for s in range(0, n_perm, step)]
    return np.concatenate(parts), False


def monte_carlo_label(n_resamples: int) -> str:
    """How a Monte Carlo permutation p is described: its resamples and its floor 1/(B+1) (Phipson &
    Smyth 2010), so nobody reads it as exact."""
    return f"Monte Carlo, {n_resamples:,} random splits; p >= 1/{n_resamples + 1:,}"


def _stat(pooled: np.ndarray, idx: np.ndarray, nc: int, nt: int, studentized: bool) -> np.ndarray:
    """Mean difference (or Welch t) of treatment = pooled[idx] vs the rest, per row of idx."""
    total, total2 = pooled.sum(), (pooled**2).sum()
    xt = pooled[idx]
    st, st2 = xt.sum(axis=1), (xt**2).sum(axis=1)
    mt, mc = st / nt, (total - st) / nc
    diff = mt - mc
    if not studentized:
        return diff
    vt = np.maximum(st2 - nt * mt**2, 0) / (nt - 1)
    vc = np.maximum((total2 - st2) - nc * mc**2, 0) / (nc - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return diff / np.sqrt(vt / nt + vc / nc)


def permutation_test(control: np.ndarray, treatment: np.ndarray, n_perm: int = 10000,
                     rng: np.random.Generator | None = None, *, studentized: bool = False,
                     shift: float = 0.0, alternative: str = "two-sided",
                     idx: np.ndarray | None = None, exact: bool | None = None) -> float:
    """Permutation p for H0: treatment - control = `shift` (treatment shifted by -shift first).

    Statistic: mean difference, or Welch's t when `studentized` (valid under unequal variances,
    Chung & Romano 2013). Exact over all splits when feasible (see `split_indices`), else Monte
    Carlo with the +1 correction. alternative: 'two-sided', 'greater' (diff > shift), 'less'.
    Returns NaN for an empty arm (or fewer than 2 per arm when studentized).
    """
    c, t = np.asarray(control, float), np.asarray(treatment, float) - shift
    nc, nt = len(c), len(t)
    if nc == 0 or nt == 0 or (studentized and min(nc, nt) < 2):
        return NAN
    if idx is None:
        idx, exact = split_indices(nc, nt, n_perm, rng)
    pooled = np.concatenate([c, t])
    pooled = pooled - pooled.mean()  # centred: the sums of squares in _stat stay exact for values ~1e12
    obs_idx = np.arange(nc, nc + nt)[None, :]
    tol = 1e-9 * max(1.0, float(np.abs(pooled).max()))
    obs = _stat(pooled, obs_idx, nc, nt, studentized)[0]
    if not np.isfinite(obs):  # studentized with no spread anywhere: fall back to the mean difference
        return permutation_test(c, t, n_perm, rng, studentized=False, alternative=alternative, idx=idx, exact=exact)
    hits = 0
    for start in range(0, len(idx), max(1, 2_000_000 // max(nt, 1))):
        s = _stat(pooled, idx[start:start + 2_000_000 // max(nt, 1)], nc, nt, studentized)
        s = np.nan_to_num(s, nan=0.0)
        if alternative == "two-sided":
            hits += int(np.count_nonzero(np.abs(s) >= abs(obs) - tol))
        elif alternative == "greater":
            hits += int(np.count_nonzero(s >= obs - tol))
        else:
            hits += int(np.count_nonzero(s <= obs + tol))
    return hits / len(idx) if exact else (hits + 1) / (len(idx) + 1)


def permutation_ci(control: np.ndarray, treatment: np.ndarray, alpha: float, idx: np.ndarray,
                   exact: bool, studentized: bool = True, start: tuple[float, float] | None = None) -> tuple[float, float]:
    """(1-alpha) CI for the shift treatment - control: the shifts the permutation test does not reject.

    Test inversion with the same splits for every shift (Ernst 2004). With tied values p(shift)
    jumps and the shifts not rejected need not form an interval, so each bound is the outermost
    crossing of p(shift) = alpha: a grid from the estimate out to a bracket widened until rejected
    (shift 0 always on it, so a CI excluding 0 means the test at 0 rejects), then bisection between
    the outermost grid shift not rejected and the next one out. The CI is the hull of the shifts
    not rejected (to the grid's resolution); it can contain 0 while p(0) < alpha only when the
    p function dips below alpha at 0 and rises again beyond it.
    """
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    diff = float(t.mean() - c.mean())
    width = (max(abs(start[0] - diff), abs(start[1] - diff)) if start and all(map(np.isfinite, start))
             else float(np.std(np.concatenate([c, t]))) + 1e-12)

    def accepted(s: float) -> bool:
        return permutation_test(c, t, studentized=studentized, shift=s, idx=idx, exact=exact) >= alpha

    bounds = []
    for sign in (-1.0, 1.0):
        far = diff + sign * width
        for _ in range(40):
            if not accepted(far):
                break
            far = diff + 2 * (far - diff)
        else:
            bounds.append(NAN)
            continue
        grid = list(np.linspace(diff, far, _CI_GRID + 1)[1:-1])
        if sign * (0.0 - diff) > 0 and sign * (far - 0.0) > 0:  # 0 lies between the estimate and `far`
            grid.append(0.0)
        inner = max((g for g in grid if accepted(g)), key=lambda g: sign * (g - diff), default=diff)
        outer = min((g for g in [*grid, far] if sign * (g - inner) > 0), key=lambda g: sign * (g - inner))
        xtol = 1e-6 * width
        bound = float(optimize.bisect(lambda s: (1.0 if accepted(s) else -1.0), inner, outer, xtol=xtol))
        bounds.append(inner if abs(bound - inner) <= xtol else bound)  # e.g. exactly 0, not -6e-07
    return bounds[0], bounds[1]


_CI_GRID = 16  # grid steps between the estimate and the rejected bracket (permutation_ci)


def tost_t(diff: float, se: float, df: float, margin: float) -> float:
    """Two one-sided t-tests (Schuirmann 1987) of |true diff| >= margin; p = the larger one-sided p."""
    if not (np.isfinite(diff) and np.isfinite(se) and np.isfinite(df)) or se <= 0 or not margin > 0:
        return NAN
    p_low = stats.t.sf((diff + margin) / se, df)  # H0: diff <= -margin
    p_high = stats.t.cdf((diff - margin) / se, df)  # H0: diff >= +margin
    return float(max(p_low, p_high))


def tost_permutation(control: np.ndarray, treatment: np.ndarray, margin: float, idx: np.ndarray,
                     exact: bool) -> float:
    """TOST with two one-sided studentized permutation tests at shifts -margin and +margin."""
    if not margin > 0:
        return NAN
    p_low = permutation_test(control, treatment, studentized=True, shift=-margin, alternative="greater",
                             idx=idx, exact=exact)
    p_high = permutation_test(control, treatment, studentized=True, shift=margin, alternative="less",
                              idx=idx, exact=exact)
    return float(max(p_low, p_high))
