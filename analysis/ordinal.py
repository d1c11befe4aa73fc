"""Proportional-odds (cumulative logit) model for ordinal scores such as 0-9 judge ratings.

Source: McCullagh (1980), fitted with statsmodels' OrderedModel (distr='logit'). With session ids
the covariance is the cluster-robust sandwich (Liang & Zeger 1986) over sessions, with the
G/(G-1) (N-1)/(N-K) small-sample factor and a t reference on (sessions - 2) df; without them the
model-based covariance and a normal reference.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

NAN = float("nan")
ORDINAL_SCALES = ("0-9", "1-5", "1-7", "0-10", "ordinal", "likert")


def is_ordinal(scale: str, values: np.ndarray) -> bool:
    """Ordinal when the table's scale says so (0-9, 1-5, ...), or, with no scale given, when every
    value is an integer in 0..10."""
    if scale:
        return scale in ORDINAL_SCALES
    v = np.asarray(values, float)
    return bool(len(v) and np.all(v == np.round(v)) and v.min() >= 0 and v.max() <= 10)


def proportional_odds(control: np.ndarray, treatment: np.ndarray, groups_c: np.ndarray | None = None,
                      groups_t: np.ndarray | None = None, alpha: float = 0.05) -> dict[str, float | str]:
    """Odds ratio of a higher score, treatment vs control, on individual values.

    Inputs: the two arms' scores (1-D), optional session codes per value (codes must not repeat
    across arms). Returns odds_ratio, or_ci_low, or_ci_high, p_ordinal, ordinal_model and
    ordinal_note (the reason when NaN: fewer than 2 categories, separation, failed fit).
    """
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    out: dict[str, float | str] = {"odds_ratio": NAN, "or_ci_low": NAN, "or_ci_high": NAN, "p_ordinal": NAN,
                                   "ordinal_model": "", "ordinal_note": ""}
    y = np.concatenate([control, treatment]).astype(float)
    x = np.concatenate([np.zeros(len(control)), np.ones(len(treatment))])[:, None]
    cats = np.unique(y)
    if len(cats) < 2:
        out["ordinal_note"] = "proportional odds: fewer than 2 distinct scores"
        return out
    if max(control) < min(treatment) or max(treatment) < min(control):
        out["ordinal_note"] = "proportional odds: arms completely separated (odds ratio infinite)"
        return out
    codes = np.searchsorted(cats, y)
    model = OrderedModel(codes, x, distr="logit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = model.fit(method="bfgs", disp=False, maxiter=2000)
        params = np.asarray(fit.params, float)
        if not fit.mle_retvals.get("converged", True) or not np.all(np.isfinite(params)):
            raise ValueError("not converged")
        if groups_c is None or groups_t is None:
            cov = np.asarray(fit.cov_params(), float)
            se, ref = float(np.sqrt(cov[0, 0])), stats.norm
            spec = "proportional odds (OrderedModel logit), model-based SE, normal reference"
        else:
            groups = np.concatenate([groups_c, groups_t + groups_c.max() + 1])
            se, g = _cluster_se(model, params, groups)
            ref = stats.t(max(1, g - 2))
            spec = f"proportional odds (OrderedModel logit), session-clustered SE, t on {max(1, g - 2)} df"
    except Exception as exc:  # singular Hessian, non-convergence
        out["ordinal_note"] = f"proportional odds fit failed ({type(exc).__name__}: {exc})"
        return out
    if not (np.isfinite(se) and se > 0):
        out["ordinal_note"] = "proportional odds: SE not finite"
        return out
    b, q = params[0], ref.ppf(1 - alpha / 2)
    out.update(odds_ratio=float(np.exp(b)), or_ci_low=float(np.exp(b - q * se)), or_ci_high=float(np.exp(b + q * se)),
               p_ordinal=float(2 * ref.sf(abs(b / se))), ordinal_model=spec)
    return out


def _cluster_se(model, params: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """SE of the first coefficient from the cluster sandwich H^-1 (sum_g s_g s_g') H^-1, CR1-scaled."""
    scores = np.asarray(model.score_obs(params), float)
    bread = np.linalg.inv(-np.asarray(model.hessian(params), float))
    sums = np.zeros((int(groups.max()) + 1, scores.shape[1]))
    np.add.at(sums, groups, scores)
    g, n, k = int(len(np.unique(groups))), len(scores), scores.shape[1]
    cov = bread @ (sums.T @ sums) @ bread * (g / (g - 1)) * ((n - 1) / (n - k))
    return float(np.sqrt(cov[0, 0])), g
