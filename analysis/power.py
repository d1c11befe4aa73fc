"""Power and planning for two-arm comparisons of (possibly clustered) simulation metrics.

Model: each arm has n replicates (sessions); a session contributes the mean of `cluster_size`
values whose total SD is `sd` and intra-class correlation `icc`, so the session mean has variance
sd^2 * (1 + (m - 1) icc) / m (the design effect). The headline test is a t-test on session means
(df = 2n - 2), or, when `sd_diff` is given, a paired t-test on n per-replicate differences
(df = n - 1). Power uses the exact noncentral t distribution.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

MAX_N = 1_000_000  # replicates_needed's search limit (replicates or pairs per arm)
DESIGN_MAX_N = 5000  # design_n_needed's default search limit (sessions per arm)


def unit_sd(sd: float, icc: float = 0.0, cluster_size: float = 1.0) -> float:
    """SD of one session mean of `cluster_size` values with total SD `sd` and ICC `icc`."""
    return sd * math.sqrt((1 + (cluster_size - 1) * icc) / cluster_size)


def power_at(n: float | np.ndarray, effect: float, sd: float, icc: float = 0.0, cluster_size: float = 1.0,
          alpha: float = 0.05, sd_diff: float | None = None) -> np.ndarray | float:
    """Two-sided power with n replicates per arm (or n pairs when sd_diff is given)."""
    n = np.asarray(n, float)
    if sd_diff is not None:
        df, se = n - 1, sd_diff / np.sqrt(n)
    else:
        df, se = 2 * n - 2, unit_sd(sd, icc, cluster_size) * np.sqrt(2 / n)
    ncp = abs(effect) / se
    crit = stats.t.ppf(1 - alpha / 2, df)
    # the far lower tail underflows to NaN in scipy's nct for df=1 and large ncp; it is ~0 there
    lower = np.nan_to_num(stats.nct.cdf(-crit, df, ncp), nan=0.0)
    out = stats.nct.sf(crit, df, ncp) + lower
    return float(out) if out.ndim == 0 else out


def replicates_needed(effect: float, sd: float, icc: float = 0.0, cluster_size: float = 1.0,
                      alpha: float = 0.05, power: float = 0.8, sd_diff: float | None = None) -> float:
    """Smallest replicates per arm (pairs when sd_diff given) reaching `power`; NaN (never inf) when no
    n up to MAX_N reaches it, the effect is 0 or not finite, or the SD is unknown (see `n_needed_note`)."""
    spread = sd if sd_diff is None else sd_diff
    if not (np.isfinite(effect) and np.isfinite(spread)) or effect == 0:
        return math.nan
    if spread == 0:
        return 2.0

    return smallest_n(lambda n: float(power_at(n, effect, sd, icc, cluster_size, alpha, sd_diff)), power, MAX_N)


def smallest_n(pw, target: float, max_n: int) -> float:
    """Smallest n >= 2 with pw(n) >= target (pw increasing in n): doubling, then bisection; NaN above max_n."""
    lo, hi = 2, 4
    if pw(lo) >= target:
        return float(lo)
    while pw(hi) < target:
        lo, hi = hi, hi * 2
        if hi > max_n:
            return math.nan
    while hi - lo > 1:  # pw(lo) < target <= pw(hi)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if pw(mid) >= target else (mid, hi)
    return float(hi)


def mde(n: float, sd: float, icc: float = 0.0, cluster_size: float = 1.0, alpha: float = 0.05,
        power: float = 0.8, sd_diff: float | None = None) -> float:
    """Minimum detectable effect (absolute difference) with n replicates per arm at `power`."""
    spread = sd if sd_diff is None else sd_diff
    if not np.isfinite(spread) or n < 2 or spread <= 0:
        return math.nan
    f = lambda e: power_at(n, e, sd, icc, cluster_size, alpha, sd_diff) - power  # noqa: E731
    hi = spread
    while f(hi) < 0:
        hi *= 2
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-10 * spread))


# --- power of the design that will actually run (issue: unequal session sizes, few sessions) ---

def session_mean_sds(sizes: np.ndarray, sd: float, icc: float) -> np.ndarray:
    """SD of each session mean: sd * sqrt(icc + (1 - icc) / m_i) for session sizes m_i."""
    m = np.asarray(sizes, float)
    return sd * np.sqrt(icc + (1 - icc) / m)


def simulated_power(sizes_c: np.ndarray, sizes_t: np.ndarray, effect: float | np.ndarray, sd: float,
                    icc: float = 0.0, alpha: float = 0.05, n_sims: int = 4000, seed: int = 0) -> np.ndarray:
    """Monte Carlo power of the Welch test on session means for the given session sizes per arm.

    Session means are drawn from their exact normal distribution (random-intercept model with
    total SD `sd` and ICC `icc`), so unequal sizes, few sessions and Welch's estimated df are all
    reflected. `effect` may be an array (common random numbers across effects). Returns an array.
    For unbalanced arms the headline is the studentized permutation test, whose power under
    normal data is close to Welch's (both hold their level there); this is the approximation used.
    Monte Carlo SE of a power p: sqrt(p (1 - p) / n_sims) (0.009 at p = 0.8, n_sims = 2000).
    """
    eff = np.atleast_1d(np.asarray(effect, float))
    out = _WelchDraws(sizes_c, sizes_t, sd, icc, alpha, n_sims, seed).power(eff)
    return out if np.ndim(effect) else out[0]


class _WelchDraws:
    """The null draws of `simulated_power`, summarised once per simulated experiment: the Welch
    difference, SE and critical |diff| (t quantile on Welch's df x SE). Shifting the treatment
    arm by an effect changes only the difference, so the power at any effect is one comparison
    per draw (the same draws and decisions as running `welch_arrays` on zt + effect)."""

    def __init__(self, sizes_c, sizes_t, sd: float, icc: float, alpha: float, n_sims: int, seed: int):
        rng = np.random.default_rng(seed)
        sc, st = session_mean_sds(sizes_c, sd, icc), session_mean_sds(sizes_t, sd, icc)
        zc = rng.standard_normal((n_sims, len(sc))) * sc
        zt = rng.standard_normal((n_sims, len(st))) * st
        vc, vt = zc.var(axis=1, ddof=1) / len(sc), zt.var(axis=1, ddof=1) / len(st)
        with np.errstate(divide="ignore", invalid="ignore"):
            df = (vc + vt) ** 2 / (vc**2 / (len(sc) - 1) + vt**2 / (len(st) - 1))
            self.crit = stats.t.isf(alpha / 2, df) * np.sqrt(vc + vt)  # NaN (never significant) when undefined
        self.diff = zt.mean(axis=1) - zc.mean(axis=1)

    def power(self, effects: np.ndarray) -> np.ndarray:
        """Share of draws whose shifted difference is significant, per effect."""
        return np.array([np.mean(np.abs(self.diff + e) > self.crit) for e in np.atleast_1d(effects)])


def design_mde(sizes_c: np.ndarray, sizes_t: np.ndarray, sd: float, icc: float = 0.0, alpha: float = 0.05,
               target: float = 0.8, n_sims: int = 4000, seed: int = 0) -> float:
    """Smallest effect whose simulated power (same draws for every effect) reaches `target`; NaN
    with fewer than 2 sessions in an arm or no spread."""
    if min(len(sizes_c), len(sizes_t)) < 2 or not (np.isfinite(sd) and sd > 0) or not np.isfinite(icc):
        return math.nan
    draws = _WelchDraws(sizes_c, sizes_t, sd, icc, alpha, n_sims, seed)
    lo, hi = 0.0, sd
    while draws.power(hi)[0] < target:
        lo, hi = hi, hi * 2
        if hi > 1e6 * sd:
            return math.nan
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if draws.power(mid)[0] >= target else (mid, hi)
    return float(hi)


def design_n_needed(effect: float, cluster_size: float, sd: float, icc: float = 0.0, alpha: float = 0.05,
                    target: float = 0.8, n_sims: int = 2000, seed: int = 0, max_n: int = DESIGN_MAX_N) -> float:
    """Sessions per arm (each of `cluster_size` agents, rounded) for `target` simulated power of the
    Welch test on session means; NaN (never inf) above max_n, for effect 0, or when sd or icc is
    unknown (see `n_needed_note`)."""
    if not (np.isfinite(sd) and np.isfinite(icc) and np.isfinite(effect)) or effect == 0:
        return math.nan
    if sd == 0:
        return 2.0
    m = max(1, int(round(cluster_size)))

    def pw(n: int) -> float:
        sizes = np.full(n, m)
        return float(simulated_power(sizes, sizes, abs(effect), sd, icc, alpha, n_sims, seed))

    return smallest_n(pw, target, max_n)


def n_needed_note(n_needed: float, effect: float, spread: float, icc: float, target: float, max_n: int,
                  unit: str) -> str:
    """Why `n_needed` is NaN ('' when it is a number): effect not estimable, effect 0, SD/ICC unknown,
    or an effect too small for any n up to `max_n` (`unit`: what n counts)."""
    if np.isfinite(n_needed):
        return ""
    if not np.isfinite(effect):
        return "n_needed NaN: the observed effect is not estimable"
    if not (np.isfinite(spread) and np.isfinite(icc)):
        return "n_needed NaN: the SD (or ICC) of this comparison is not estimable"
    if effect == 0:
        return f"n_needed NaN: observed effect 0, which no n reaches {target:.0%} power to detect"
    return (f"n_needed NaN: observed effect {effect:.3g} too small: no n up to {max_n:,} {unit} reaches "
            f"{target:.0%} power")


def mde_note(mde_value: float, n: float, spread: float, icc: float, target: float, spread_name: str = "SD") -> str:
    """Why a minimum detectable effect is NaN ('' when it is a number): fewer than 2 units per arm (or
    pairs), an unknown or zero SD (a t-test has no finite MDE without spread), an unknown ICC, or no
    effect up to 1e6 SD reaching `target` power."""
    if np.isfinite(mde_value):
        return ""
    if not n >= 2:
        return "mde NaN: fewer than 2 units (sessions or pairs) per arm"
    if not np.isfinite(spread):
        return f"mde NaN: the {spread_name} is not estimable"
    if spread <= 0:
        return (f"mde NaN: no spread ({spread_name} 0) in the units compared, so the t-test's minimum detectable "
                "effect is not defined")
    if not np.isfinite(icc):
        return "mde NaN: the ICC is not estimable"
    return f"mde NaN: no effect up to 1e6 x {spread_name} reaches {target:.0%} power with this design"
