"""Effect sizes on the headline estimand (Hedges' g) and on individual values (Cliff's delta), with CIs.

- `hedges_g` is the classic bias-corrected standardised mean difference of two samples
  (Hedges & Olkin 1985, ch. 5).
- `headline_g` standardises the *headline* difference (the one in `diff`: of session means, or of
  per-replicate differences when paired) by the pooled within-arm SD of the individual values
  (Hedges 2007, "Effect sizes in cluster-randomized designs", d_T; for paired designs d_av,
  Cumming 2012), so its sign is always the sign of `diff`. Its CI inverts the noncentral t
  distribution of the t statistic of the headline units (Steiger & Fouladi 1997; Hedges & Olkin
  1985, ch. 5; scipy.stats.nct): Welch's t of the unit values (session means, or values: Welch's
  SE and Welch-Satterthwaite df) (the arms may differ in spread, as in the
  headline test; on strongly skewed counts the interval is conservative, ~97% coverage), or the one-sample
  t of the per-pair differences, df pairs - 1, gives a CI [l, u] for its noncentrality
  lambda = diff / SE (Welch's t is approximately noncentral t there: Welch 1947); the CI of g is [l, u] * SE / SD (SE of diff
  from the units, SD of the individual values). Without clustering this is exactly the
  Steiger-Fouladi interval for the standardised mean difference; with clustering it rescales the
  exact interval of the session-level effect to the total SD (d_T = d_sessions * SD_sessions / SD_T,
  Hedges 2007), treating the SD of the many individual values as known.
- `cliffs_delta` is P(T > C) - P(T < C) over individual values (agent values pooled over
  sessions), computed from ranks in O(n log n). Its CI uses the placement (structural component)
  variance of DeLong et al. (1988), summed per session when values are clustered (Obuchowski
  1997), and Cliff's (1993) asymmetric interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from analysis.tests_basic import RTOL, no_spread, scale_of

NAN = float("nan")
MIN_CI_UNITS = 8  # below this many resampling units per arm no interval is reported (coverage fails)


def hedges_g(control: np.ndarray, treatment: np.ndarray) -> float:
    """Bias-corrected (treatment - control) / pooled SD of two samples; NaN when the SD is float noise."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    nc, nt = len(c), len(t)
    if nc < 2 or nt < 2:
        return NAN
    sp = math.sqrt(((nc - 1) * c.var(ddof=1) + (nt - 1) * t.var(ddof=1)) / (nc + nt - 2))
    if sp <= RTOL * scale_of(c, t):
        return NAN
    return float(_j(nc + nt - 2) * (t.mean() - c.mean()) / sp)


def _j(df: float | np.ndarray) -> float | np.ndarray:
    """Hedges' small-sample correction J(df) = 1 - 3 / (4 df - 1)."""
    return 1 - 3 / (4 * df - 1)


def cliffs_delta(control: np.ndarray, treatment: np.ndarray) -> float:
    """P(T > C) - P(T < C) over all treatment/control pairs, from sorted ranks (O(n log n) time, O(n) memory)."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    if len(c) == 0 or len(t) == 0:
        return NAN
    return float(placements(c, t)[0].mean())


def prob_superiority(control: np.ndarray, treatment: np.ndarray) -> float:
    """P(T > C) + 0.5 P(T = C): the common-language effect size for ordinal scores, = (delta + 1) / 2."""
    d = cliffs_delta(control, treatment)
    return (d + 1) / 2 if np.isfinite(d) else NAN


def placements(c: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-value dominance scores: for each treatment value P(C < t) - P(C > t); for each control
    value P(T > c) - P(T < c). Both average to Cliff's delta."""
    cs, ts = np.sort(c), np.sort(t)
    vt = (np.searchsorted(cs, t, "left") - (len(cs) - np.searchsorted(cs, t, "right"))) / len(cs)
    vc = ((len(ts) - np.searchsorted(ts, c, "right")) - np.searchsorted(ts, c, "left")) / len(ts)
    return vt, vc


def _cluster_var(v: np.ndarray, groups: np.ndarray | None) -> tuple[float, int]:
    """Variance of mean(v): i.i.d. values, or cluster sums of deviations (Obuchowski 1997)."""
    n = len(v)
    if groups is None:
        return (float(v.var(ddof=1) / n) if n > 1 else NAN), n
    sums = np.bincount(groups, weights=v - v.mean())
    k = len(sums)
    if k < 2:
        return NAN, k
    return float(k / (k - 1) * (sums**2).sum() / n**2), k


def delta_ci(control: np.ndarray, treatment: np.ndarray, groups_c: np.ndarray | None = None,
             groups_t: np.ndarray | None = None, alpha: float = 0.05) -> tuple[float, float, float, str]:
    """(delta, ci_low, ci_high, note) for Cliff's delta; groups_* are session codes 0..k-1 (clustered).

    The quantile is t with (units_c + units_t - 2) df. NaN CI (with the reason in note) under
    MIN_CI_UNITS units per arm, or when every pair is ordered the same way (delta = +-1).
    """
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    if len(c) == 0 or len(t) == 0:
        return NAN, NAN, NAN, "empty arm"
    vt, vc = placements(c, t)
    d = float(vt.mean())
    var_t, kt = _cluster_var(vt, groups_t)
    var_c, kc = _cluster_var(vc, groups_c)
    unit = "sessions" if groups_c is not None else "values"
    if min(kc, kt) < MIN_CI_UNITS:
        return d, NAN, NAN, f"delta CI needs >= {MIN_CI_UNITS} {unit} per arm (have {kc} v {kt})"
    s2 = var_t + var_c
    if abs(d) >= 1 - 1e-12 or s2 <= 0:
        return d, NAN, NAN, "delta CI undefined: every treatment/control pair is ordered the same way"
    z = float(stats.t.ppf(1 - alpha / 2, kc + kt - 2))
    s = math.sqrt(s2)
    root = z * s * math.sqrt((1 - d * d) ** 2 + z * z * s2)
    den = 1 - d * d + z * z * s2
    return d, (d - d**3 - root) / den, (d - d**3 + root) / den, ""


@dataclass(frozen=True)
class Units:
    """Per headline unit: its value `m` (session mean, or the value), and sufficient statistics of
    the individual values in it: count `n`, sum `s`, sum of squares `q`. Paired designs pass the
    control and treatment unit of each pair at the same position."""

    m: np.ndarray
    n: np.ndarray
    s: np.ndarray
    q: np.ndarray

    @classmethod
    def of_values(cls, values: np.ndarray, groups: np.ndarray | None = None) -> "Units":
        x = np.asarray(values, float)
        if groups is None:
            return cls(x, np.ones_like(x), x, x * x)
        n = np.bincount(groups).astype(float)
        s = np.bincount(groups, weights=x)
        return cls(s / n, n, s, np.bincount(groups, weights=x * x))


def _ss(u: Units) -> tuple[np.ndarray, np.ndarray]:
    """(within-arm sum of squares, count) of the individual values, summed over the last axis."""
    n, s, q = u.n.sum(axis=-1), u.s.sum(axis=-1), u.q.sum(axis=-1)
    return np.maximum(q - s * s / n, 0.0), n


def nct_ci(t: float, df: float, alpha: float = 0.05) -> tuple[float, float]:
    """(low, high) CI of the noncentrality lambda of a noncentral t (df) observed at t: the lambda with
    P(T <= t; df, lambda) = 1 - alpha/2 and = alpha/2 (Steiger & Fouladi 1997; scipy.stats.nct, brentq).

    Where scipy's nct cannot resolve the tails (|t| > LARGE_T, or df > LARGE_DF) the large-sample
    normal interval t -/+ z sqrt(1 + t^2 / (2 df)) (Hedges & Olkin 1985, eq. 5.14) is returned (the
    caller says so). If the root cannot be bracketed otherwise, (NaN, NaN): no interval is guessed.
    """
    if not (np.isfinite(t) and df >= 1):
        return NAN, NAN
    z = float(stats.norm.ppf(1 - alpha / 2))
    half = z * math.sqrt(1 + t * t / (2 * df))
    if abs(t) > LARGE_T or df > LARGE_DF:
        return t - half, t + half

    def bound(p: float) -> float:
        f = lambda lam: float(stats.nct.cdf(t, df, lam)) - p  # noqa: E731  decreasing in lam
        lo, hi = t - 2 * half - 1, t + 2 * half + 1
        for _ in range(60):  # widen until the root is bracketed (heavy tails at small df)
            flo, fhi = f(lo), f(hi)
            if not (np.isfinite(flo) and np.isfinite(fhi)):
                return NAN
            if flo >= 0 >= fhi:
                return float(optimize.brentq(f, lo, hi, xtol=1e-10, rtol=1e-12))
            w = hi - lo
            lo, hi = (lo - w, hi) if flo < 0 else (lo, hi + w)
        return NAN

    low, high = bound(1 - alpha / 2), bound(alpha / 2)
    if not (np.isfinite(low) and np.isfinite(high)):
        return NAN, NAN
    return low, high


#: Beyond these, `nct_ci` uses the large-sample normal interval (scipy's nct loses its tails).
LARGE_T, LARGE_DF = 200.0, 1e5


def headline_g(uc: Units, ut: Units, paired: bool, diff: float, sd: float, alpha: float = 0.05,
               scale: float | None = None) -> tuple[float, float, float, str]:
    """(g, ci_low, ci_high, note): g of the headline estimand `diff` and its noncentral-t CI.

    Inputs: the headline units of each arm (`Units`; paired: pair i of both arms at position i),
    `diff` (the headline estimate: mean of per-pair differences when paired, else difference of
    mean unit values), `sd` the pooled within-arm SD of the individual values (computed stably by
    the caller; sums of squares lose the float-noise test), `scale` the largest |value|.
    Output g = J(df) diff / sd, J = 1 - 3 / (4 df - 1), df = values - 2 (Hedges 1981); the CI is
    `nct_ci` of the units' t (module docstring), in units of `sd` (no J: the interval is for the
    population effect). g is NaN (with a note) when `sd` is float noise; the CI is NaN below
    MIN_CI_UNITS units per arm, or when the units have no spread (t undefined).
    """
    ss_c, n_c = _ss(uc)
    ss_t, n_t = _ss(ut)
    df = float(n_c + n_t - 2)
    scale = scale if scale is not None else scale_of(uc.m, ut.m)
    if df < 1 or not np.isfinite(diff):
        return NAN, NAN, NAN, "g undefined: fewer than 3 values"
    if not np.isfinite(sd) or sd <= RTOL * scale:
        return NAN, NAN, NAN, "g undefined: no within-arm variation (SD 0)"
    g = float(_j(df) * diff / sd)
    kc, kt = len(uc.m), len(ut.m)
    what = "pairs" if paired else "units"
    if min(kc, kt) < MIN_CI_UNITS:
        return g, NAN, NAN, f"g CI needs >= {MIN_CI_UNITS} {what} per arm (have {kc} v {kt})"
    if paired:
        d = ut.m - uc.m
        se, t_df = float(d.std(ddof=1)) / math.sqrt(kc), kc - 1
    else:  # Welch's t of the units (unequal spread per arm, as in `diff`'s test)
        vc, vt = float(uc.m.var(ddof=1)) / kc, float(ut.m.var(ddof=1)) / kt
        se = math.sqrt(vc + vt)
        t_df = (vc + vt) ** 2 / (vc * vc / (kc - 1) + vt * vt / (kt - 1)) if vc + vt > 0 else NAN
    # the units' spread (not the SE, which shrinks with their number) against float noise at the
    # values' magnitude: the rule of the t-tests (tests_basic.no_spread)
    spread = [ut.m - uc.m] if paired else [uc.m, ut.m]
    if not se > 0 or all(no_spread(x, scale) for x in spread):
        return g, NAN, NAN, f"g CI undefined: the {what} have no spread (t statistic undefined)"
    t = diff / se
    low, high = nct_ci(t, t_df, alpha)
    if not (np.isfinite(low) and np.isfinite(high)):
        return g, NAN, NAN, f"g CI undefined: the noncentral t could not be inverted at t = {t:.4g}, df = {t_df:.4g}"
    note = (f"g CI: large-sample normal interval (Hedges & Olkin 1985, eq. 5.14), |t| = {abs(t):.4g}, df = {t_df:.4g}"
            if abs(t) > LARGE_T or t_df > LARGE_DF else "")
    return g, low * se / sd, high * se / sd, note
