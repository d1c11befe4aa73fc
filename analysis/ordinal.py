"""Proportional-odds (cumulative logit) model for ordinal scores such as 0-9 judge ratings.

Source: McCullagh (1980); the model of statsmodels' OrderedModel (distr='logit'), fitted here by
Newton's method with the analytic score and Hessian (checked against OrderedModel in tests). With
session ids the covariance is the cluster-robust sandwich (Liang & Zeger 1986) over sessions with
the G/(G-1) small-sample factor of maximum-likelihood models (Cameron & Miller 2015, sec. VI.B;
(N-1)/(N-K) is a least-squares factor and explodes here, where every distinct score adds a
threshold) and a t reference on (sessions - 2) df; without them the model-based covariance and a
normal reference.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg, special, stats

from analysis.scales import ORDINAL_SCALES, scale_range

NAN = float("nan")


def is_ordinal(scale: str, values: np.ndarray) -> bool:
    """Ordinal when the table's scale says so (0-9, 1-5, ...), or, with no scale given, when every
    value is an integer in 0..10. Whether the values are the scale's scores is `not_scores`."""
    if scale:
        return scale in ORDINAL_SCALES
    v = np.asarray(values, float)
    return bool(len(v) and np.all(v == np.round(v)) and v.min() >= 0 and v.max() <= 10)


def not_scores(scale: str, values: np.ndarray, judge_k: np.ndarray | None = None) -> str:
    """Why values on an ordinal scale are not its categories ("" when they are).

    The proportional-odds model (McCullagh 1980) is a model for ordered categories: here the
    integer scores of the declared scale. A non-integer value (the mean of judge_k >= 2 repeated
    judgements, a probability-weighted judge score) is not a category of that scale, and one
    outside the declared range (e.g. 1e12 + score) is not a score of it: giving every distinct
    value its own category would answer a different question (the odds of a higher value on a
    continuous outcome: a cumulative probability model, Liu et al. 2017, Stat Med 36:4316) and is
    not what `odds_ratio` is documented to be. judge_k (per value, the
    number of judgements averaged) only names the cause in the note.
    """
    v = np.asarray(values, float)
    frac = v != np.round(v)
    if frac.any():
        k = np.asarray(judge_k, float)[frac] if judge_k is not None else np.array([])
        k = k[np.isfinite(k)]
        cause = (f"averages over judge_k={int(k.max())} judgements" if len(k) and k.max() >= 2
                 else "e.g. probability-weighted judge scores")
        return (f"ordinal model not fitted: values are not integer scores ({int(frac.sum())} of {len(v)}, "
                f"e.g. {v[frac][0]:.4g}: {cause})")
    low_high = scale_range(scale)
    if low_high and len(v) and (v.min() < low_high[0] or v.max() > low_high[1]):
        return (f"ordinal model not fitted: values outside the declared {scale} scale "
                f"(min {float(v.min())!r}, max {float(v.max())!r})")
    return ""


def proportional_odds(control: np.ndarray, treatment: np.ndarray, groups_c: np.ndarray | None = None,
                      groups_t: np.ndarray | None = None, alpha: float = 0.05) -> dict[str, float | str]:
    """Odds ratio of a higher score, treatment vs control, on individual values.

    Inputs: the two arms' scores (1-D), optional session codes per value (codes must not repeat
    across arms). Returns odds_ratio, or_ci_low, or_ci_high, p_ordinal, ordinal_model and
    ordinal_note (the reason when NaN: fewer than 2 categories, separation, failed fit).

    The model is statsmodels' OrderedModel(distr='logit') - P(y <= j) = F(a_j - b treat) with every
    distinct score a category - maximised by Newton's method with the analytic score and Hessian
    (`fit_cumulative_logit`): the log-likelihood is concave (Pratt 1981) and the Hessian is
    tridiagonal in the thresholds plus one border row, so a fit costs O(categories) per step even
    with thousands of distinct values (statsmodels' BFGS and numerical Hessian cost minutes there).
    tests/test_analysis_models.py checks it against OrderedModel. The effects table calls it only
    for integer scores on the scale (`not_scores`).
    """
    out: dict[str, float | str] = {"odds_ratio": NAN, "or_ci_low": NAN, "or_ci_high": NAN, "p_ordinal": NAN,
                                   "ordinal_model": "", "ordinal_note": ""}
    y = np.concatenate([control, treatment]).astype(float)
    x = np.concatenate([np.zeros(len(control)), np.ones(len(treatment))])
    cats = np.unique(y)
    if len(cats) < 2:
        out["ordinal_note"] = "proportional odds: fewer than 2 distinct scores"
        return out
    # no finite maximum when the arms share at most one score (every control value <= every
    # treatment value, or >=): letting beta -> +-inf fits each arm's own distribution, the upper
    # bound of the likelihood (quasi-complete separation, Albert & Anderson 1984)
    if max(control) <= min(treatment) or max(treatment) <= min(control):
        out["ordinal_note"] = ("proportional odds: arms separated (every value of one arm <= every value of "
                               "the other; odds ratio 0 or infinite)")
        return out
    codes = np.searchsorted(cats, y)
    try:
        fit = fit_cumulative_logit(codes, x, len(cats))
        if groups_c is None or groups_t is None:
            se, ref = math.sqrt(fit.inv_beta), stats.norm
            spec = "proportional odds (cumulative logit, OrderedModel's model), model-based SE, normal reference"
        else:
            groups = np.concatenate([groups_c, groups_t + groups_c.max() + 1])
            se, g = fit.cluster_se(groups)
            ref = stats.t(max(1, g - 2))
            spec = (f"proportional odds (cumulative logit, OrderedModel's model), session-clustered SE, "
                    f"t on {max(1, g - 2)} df")
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:  # no maximum, singular Hessian
        out["ordinal_note"] = f"proportional odds fit failed ({type(exc).__name__}: {exc})"
        return out
    if not (np.isfinite(se) and se > 0):
        out["ordinal_note"] = "proportional odds: SE not finite"
        return out
    b, q = fit.beta, ref.ppf(1 - alpha / 2)
    out.update(odds_ratio=float(np.exp(b)), or_ci_low=float(np.exp(b - q * se)), or_ci_high=float(np.exp(b + q * se)),
               p_ordinal=float(2 * ref.sf(abs(b / se))), ordinal_model=spec)
    return out


def _cell_parts(a: np.ndarray, beta: float, cat: np.ndarray, x: np.ndarray):
    """For each (category, x) cell: log p and the derivatives of log p in u = a_j - b x (upper
    bound) and l = a_{j-1} - b x (lower bound): g_u, g_l, h_uu, h_ll, h_ul."""
    ext = np.r_[-np.inf, a, np.inf]
    u, l = ext[cat + 1] - beta * x, ext[cat] - beta * x
    fu_, fl_ = special.expit(u), special.expit(l)
    # p = F(u) - F(l) without cancellation in the upper tail: (1 - F(l)) - (1 - F(u))
    p = np.where(l > 0, special.expit(-l) - special.expit(-u), fu_ - fl_)
    if np.any(p <= 0):
        raise FloatingPointError("a category has zero probability")
    du, dl = fu_ * (1 - fu_), fl_ * (1 - fl_)  # logistic density (0 at +-inf)
    d2u, d2l = du * (1 - 2 * fu_), dl * (1 - 2 * fl_)
    gu, gl = du / p, -dl / p
    huu, hll, hul = d2u / p - gu**2, -d2l / p - gl**2, -gu * gl
    return np.log(p), gu, gl, huu, hll, hul


class CumulativeLogitFit:
    """Result of `fit_cumulative_logit`: thresholds a, coefficient beta, loglike, and the pieces for
    the model-based and the cluster-robust variance of beta."""

    def __init__(self, a, beta, llf, codes, x, h):
        self.a, self.beta, self.llf, self.codes, self.x = a, beta, llf, codes, x
        # w = (-H)^{-1} e_beta: the beta row of the inverse information; inv_beta = w[beta]
        self.w = _solve_bordered(*h, np.r_[np.zeros(len(a)), 1.0])
        self.inv_beta = float(self.w[-1])

    def cluster_se(self, groups: np.ndarray) -> tuple[float, int]:
        """SE of beta from the cluster sandwich H^-1 (sum_g s_g s_g') H^-1 with the G/(G-1)
        small-sample factor (Cameron & Miller 2015, sec. VI.B: the factor Stata uses for
        maximum-likelihood models), and the number of clusters G."""
        _, gu, gl, *_ = _cell_parts(self.a, self.beta, self.codes, self.x)
        wa = np.r_[0.0, self.w[:-1], 0.0]  # w on a_{j-1}, a_j with the infinite ends padded
        # per-observation score . w (score in a_j is g_u, in a_{j-1} g_l, in beta -x (g_u + g_l))
        sw = gu * wa[self.codes + 1] + gl * wa[self.codes] - self.x * (gu + gl) * self.w[-1]
        codes_g = np.unique(groups, return_inverse=True)[1]
        sums = np.bincount(codes_g, weights=sw)
        g = len(sums)
        if g < 2:
            return NAN, g
        return float(math.sqrt(float(sums @ sums) * g / (g - 1))), g


def fit_cumulative_logit(codes: np.ndarray, x: np.ndarray, n_cat: int, tol: float = 1e-10,
                         max_iter: int = 200) -> CumulativeLogitFit:
    """Maximum likelihood of P(y <= j | x) = expit(a_j - beta x), j = 0..n_cat-2, for category codes
    0..n_cat-1 (each observed) and a binary x: Newton's method with step halving on the counts of
    the 2 x n_cat cells. ValueError when it does not converge (e.g. no finite maximum)."""
    codes, x = np.asarray(codes), np.asarray(x, float)
    cnt = np.stack([np.bincount(codes[x == v], minlength=n_cat) for v in (0.0, 1.0)])  # (2, n_cat)
    cat = np.tile(np.arange(n_cat), 2)
    xc = np.repeat([0.0, 1.0], n_cat)
    w = cnt.ravel().astype(float)
    keep = w > 0
    cat, xc, w = cat[keep], xc[keep], w[keep]
    cum = np.cumsum(np.bincount(codes, minlength=n_cat))[:-1] / len(codes)
    a, beta = np.log(cum / (1 - cum)), 0.0  # start: the marginal cumulative logits

    def evaluate(a, beta):
        lp, gu, gl, huu, hll, hul = _cell_parts(a, beta, cat, xc)
        return float(w @ lp), (gu, gl, huu, hll, hul)

    llf, parts = evaluate(a, beta)
    for _ in range(max_iter):
        grad, h = _grad_hess(len(a), cat, xc, w, *parts)
        step = _solve_bordered(*h, grad)  # (-H)^{-1} grad: the Newton step
        t = 1.0
        while True:
            a_new, b_new = a + t * step[:-1], beta + t * step[-1]
            if np.all(np.diff(a_new) > 0):
                try:
                    llf_new, parts_new = evaluate(a_new, b_new)
                except FloatingPointError:
                    llf_new = -np.inf
                if llf_new >= llf - 1e-12 * abs(llf):
                    break
            t /= 2
            if t < 1e-12:
                raise ValueError("line search failed")
        a, beta, llf, parts = a_new, b_new, llf_new, parts_new
        if np.max(np.abs(t * step)) < tol:
            grad, h = _grad_hess(len(a), cat, xc, w, *parts)
            if not np.all(np.isfinite(grad)) or np.max(np.abs(grad)) > 1e-6 * max(1.0, len(codes)):
                raise ValueError("Newton stopped away from a maximum")
            return CumulativeLogitFit(a, beta, llf, codes, x, h)
    raise ValueError("not converged")


def _grad_hess(k: int, cat, xc, w, gu, gl, huu, hll, hul):
    """Gradient (k thresholds, then beta) and the negative Hessian as (diag, off-diagonal, border,
    corner): tridiagonal in the thresholds, border = the beta column."""
    up, lo = cat, cat - 1  # index of a_j and a_{j-1} (k = n_cat - 1 thresholds; -1 or k mean none)
    okup, oklo = up < k, lo >= 0
    grad = np.zeros(k + 1)
    np.add.at(grad, up[okup], (w * gu)[okup])
    np.add.at(grad, lo[oklo], (w * gl)[oklo])
    grad[k] = float(-(w * xc * (gu + gl)).sum())
    diag, off, border = np.zeros(k), np.zeros(max(k - 1, 0)), np.zeros(k)
    np.add.at(diag, up[okup], -(w * huu)[okup])
    np.add.at(diag, lo[oklo], -(w * hll)[oklo])
    both = okup & oklo
    np.add.at(off, lo[both], -(w * hul)[both])  # between a_{j-1} and a_j
    np.add.at(border, up[okup], (w * xc * (huu + hul))[okup])
    np.add.at(border, lo[oklo], (w * xc * (hll + hul))[oklo])
    corner = float(-(w * xc**2 * (huu + 2 * hul + hll)).sum())
    return grad, (diag, off, border, corner)


def _solve_bordered(diag, off, border, corner, rhs):
    """Solve [[T, c], [c', d]] z = rhs for tridiagonal T (diag, off), border c, corner d, by the
    Schur complement; LinAlgError when the matrix is not positive definite."""
    ab = np.zeros((2, len(diag)))
    ab[0, 1:], ab[1] = off, diag
    if len(diag) == 1:  # one threshold (two categories): T is 1 x 1
        ab = ab[1:]
    t_c = linalg.solveh_banded(ab, border)  # raises LinAlgError if T is not positive definite
    t_r = linalg.solveh_banded(ab, rhs[:-1])
    schur = corner - border @ t_c
    if not schur > 0:
        raise np.linalg.LinAlgError("information matrix not positive definite")
    zb = (rhs[-1] - border @ t_r) / schur
    return np.r_[t_r - t_c * zb, zb]
