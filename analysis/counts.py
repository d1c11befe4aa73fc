"""Count metrics (ideas per session, ...): the rate ratio treatment / control from a quasi-Poisson GLM.

Source: Wedderburn (1974) quasi-likelihood; McCullagh & Nelder (1989, sec. 6.2): a Poisson GLM
log(mu) = b0 + b1 treat with the dispersion estimated by Pearson chi2 / (n - 2) (statsmodels GLM,
scale='X2'), so over-dispersed counts get honest SEs; t reference on n - 2 df. It is fitted on
the headline units (session values, or session means of agent counts), so exp(b1) is the ratio of
the same means whose difference is `diff`.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from analysis.clustered import power_of_two

NAN = float("nan")


def is_count(scale: str, metric: str, values: np.ndarray) -> bool:
    """Counts when the table's scale is 'count', or (no scale) non-negative integers (up to 2^53)
    above 10 or a metric named *_qty / *_count."""
    if scale:
        return scale == "count"
    v = np.asarray(values, float)
    # above 2^53 every float is a whole number: integrality says nothing there
    ints = bool(len(v) and np.all(v == np.round(v)) and v.min() >= 0 and v.max() <= 2.0**53)
    return ints and (metric.endswith(("_qty", "_count")) or v.max() > 10)


def rate_ratio(control: np.ndarray, treatment: np.ndarray, alpha: float = 0.05) -> dict[str, float | str]:
    """Rate ratio of the unit means (treatment / control) with CI and p from a quasi-Poisson GLM.

    Inputs: non-negative unit values (1-D) per arm. Returns rate_ratio, rr_ci_low, rr_ci_high,
    p_count, count_model, count_note (why NaN: an arm with no events, fewer than 3 units, no
    variation, negative values). Values beyond 2^52 are fitted divided by a power of 2 (the
    quasi-likelihood is scale-invariant: McCullagh & Nelder 1989, sec. 9.2).
    """
    import statsmodels.api as sm

    out: dict[str, float | str] = {"rate_ratio": NAN, "rr_ci_low": NAN, "rr_ci_high": NAN, "p_count": NAN,
                                   "count_model": "", "count_note": ""}
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    if len(c) + len(t) < 3 or min(len(c), len(t)) < 1:
        out["count_note"] = "rate ratio: fewer than 3 units"
        return out
    if min(c.min(), t.min()) < 0:
        out["count_note"] = "rate ratio: negative values are not counts"
        return out
    if c.sum() == 0 or t.sum() == 0:
        out["count_note"] = "rate ratio: an arm has no events (ratio 0 or infinite)"
        return out
    y = np.concatenate([c, t])
    if np.ptp(y) == 0:  # every unit equal: statsmodels' IRLS fails (deviance NaN), the ratio is 1 with no CI
        out["count_note"] = "rate ratio: no variation (every unit has the same count)"
        return out
    x = sm.add_constant(np.concatenate([np.zeros(len(c)), np.ones(len(t))]))
    # quasi-Poisson is scale-invariant (y -> y / u: same coefficient and SE, dispersion / u), so
    # values beyond 2^52 (e.g. counts x 1e160, whose IRLS weights overflow) are fitted divided by a
    # power of 2 (exact)
    unit = power_of_two(y.max()) if y.max() > 2.0**52 else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GLM(y / unit, x, family=sm.families.Poisson()).fit(scale="X2")
        except ValueError as exc:  # a boundary problem statsmodels cannot start from
            out["count_note"] = f"rate ratio: the GLM failed ({exc})"[:200]
            return out
    b, se = float(fit.params[1]), float(fit.bse[1])
    if not (np.isfinite(se) and se > 0):
        out["count_note"] = "rate ratio: no variation within arms (dispersion 0)"
        return out
    df = len(y) - 2
    q = stats.t.ppf(1 - alpha / 2, df)
    out.update(rate_ratio=float(np.exp(b)), rr_ci_low=float(np.exp(b - q * se)), rr_ci_high=float(np.exp(b + q * se)),
               p_count=float(2 * stats.t.sf(abs(b / se), df)),
               count_model=f"quasi-Poisson GLM on units (dispersion {fit.scale * unit:.4g}), t on {df} df")
    return out
