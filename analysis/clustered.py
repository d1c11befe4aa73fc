"""Cluster-aware pieces for agent-level metrics (agents nested in sessions, personas reused)."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from analysis.effect_sizes import MIN_CI_UNITS
from analysis.tests_basic import no_spread, scale_of

log = logging.getLogger(__name__)
NAN = float("nan")
# statsmodels fits crossed variance components with one dense group: cost grows ~n^3 (2 s at 300
# values, minutes at 2000). Above this size persona enters as fixed effects instead.
CROSSED_MAX_N = 250


def session_means(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per session: session, replicate, value (mean over agents), n (agents)."""
    g = rows.groupby("session", sort=True)
    return pd.DataFrame({"value": g["value"].mean(), "n": g["value"].size(),
                         "replicate": g["replicate"].first()}).reset_index()


def icc_anova(values: np.ndarray, sessions: np.ndarray, arms: np.ndarray | None = None) -> float:
    """One-way ANOVA estimate of the intra-class correlation of sessions, arm as a fixed effect.

    ICC = (MSB - MSW) / (MSB + (n0 - 1) MSW), truncated to [0, 1]; n0 is the adjusted mean
    cluster size. For balanced data this equals the REML variance-component ratio.
    """
    df = pd.DataFrame({"y": np.asarray(values, float), "s": np.asarray(sessions),
                       "a": np.zeros(len(values)) if arms is None else np.asarray(arms)})
    df["y"] = df["y"] - df.groupby("a")["y"].transform("mean")
    g = df.groupby(["a", "s"])["y"]
    n_i, m_i = g.size().to_numpy(float), g.mean().to_numpy()
    n, k, n_arms = len(df), len(n_i), df["a"].nunique()
    if k - n_arms < 1 or n - k < 1:
        return NAN
    ss_within = float(((df["y"] - g.transform("mean")) ** 2).sum())
    msb = float((n_i * m_i**2).sum()) / (k - n_arms)
    msw = ss_within / (n - k)
    arm_n = df.groupby(["a", "s"]).size().groupby(level=0)
    n0 = (n - sum(float((s**2).sum()) / s.sum() for _, s in arm_n)) / (k - n_arms)
    denom = msb + (n0 - 1) * msw
    if denom <= 0:
        return NAN
    return float(min(1.0, max(0.0, (msb - msw) / denom)))


def design_effect(icc: float, cluster_size: float) -> float:
    """Kish design effect 1 + (m - 1) ICC: the variance inflation of a mean of clustered values."""
    if not np.isfinite(icc):
        return NAN
    return 1.0 + (cluster_size - 1.0) * icc


def persona_identifiable(rows: pd.DataFrame) -> bool:
    """A persona random effect is estimable when some agent appears in two or more sessions."""
    agents = rows.loc[rows["agent"] != ""]
    if len(agents) < len(rows) or agents["agent"].nunique() < 2:
        return False
    return bool((agents.groupby("agent")["session"].nunique() >= 2).any())


def mixed_model(rows: pd.DataFrame, control: str, treatment: str) -> dict[str, float | str]:
    """MixedLM value ~ treatment with a random intercept per session (+ persona where identifiable:
    a crossed random intercept up to CROSSED_MAX_N values, fixed effects above); statsmodels REML.

    Input: rows of one metric with columns arm, session, agent, value (sessions are scoped by arm).
    Returns diff (treatment coefficient), se, p (Wald t on df = sessions - 2), df, p_normal
    (statsmodels' z), var_session, var_persona, var_resid, spec (the model and optimizer) and
    note. Several optimizers are tried; a fit is kept only if its REML log-likelihood and the
    treatment SE are finite (a singular fit "converging" to llf = +inf is rejected) and it
    converged; the first acceptable fit (`best_fit`) is kept. Otherwise every number is NaN and note
    says why.
    The model is fitted on standardised values (`standardise`) and its numbers transformed back, so
    a table and the same table + 1e12 give the same diff, se, p and variances.
    """
    import statsmodels.formula.api as smf  # heavy import, only when needed

    data = rows.loc[rows["arm"].isin([control, treatment]), ["arm", "session", "agent", "value"]].copy()
    data["session"] = data["arm"] + "\x00" + data["session"]
    data["treat"] = (data["arm"] == treatment).astype(float)
    crossed = persona_identifiable(data)
    out: dict[str, float | str] = {"diff": NAN, "se": NAN, "p": NAN, "df": NAN, "var_session": NAN,
                                   "var_persona": NAN, "var_resid": NAN, "note": "", "spec": ""}
    if len(data) < 4 or data["session"].nunique() < 3:
        out["note"] = "MixedLM not fitted: fewer than 4 values or 3 sessions"
        return out
    if data.groupby("arm")["session"].nunique().min() < 2:
        # the arm's mean is one session's: its session effect is not separable from the arm effect,
        # and the SE would rest on the other arm's session variance alone (an unverifiable assumption)
        out["note"] = "MixedLM not fitted: one session in an arm"
        return out
    if no_spread(data["value"].to_numpy(float), scale_of(data["value"].to_numpy(float))):
        out["note"] = "MixedLM not fitted: no variation"
        return out
    centre, unit = standardise(data["value"].to_numpy(float))
    data["value"] = (data["value"] - centre) / unit
    if crossed and len(data) > CROSSED_MAX_N:
        spec = "MixedLM: random intercept for session, persona as fixed effects"
        model = smf.mixedlm("value ~ treat + C(agent)", data, groups="session")
        crossed = False
    elif crossed:
        data["one"] = 1
        spec = "MixedLM: random intercepts for session and persona (crossed)"
        model = smf.mixedlm("value ~ treat", data, groups="one", re_formula="0",
                            vc_formula={"session": "0 + C(session)", "persona": "0 + C(agent)"})
    else:
        spec = "MixedLM: random intercept for session"
        model = smf.mixedlm("value ~ treat", data, groups="session")
    fit, why = best_fit(model)
    if fit is None:
        out["note"] = f"MixedLM: no acceptable REML fit ({why})"
        out["spec"] = spec
        return out
    # Wald statistic referred to t with (sessions - 2) df, the between-session df: statsmodels'
    # normal reference is anti-conservative with few sessions (see benchmarks/calibration.py).
    df_between = max(1, data["session"].nunique() - 2)
    # back from the standardised values: slopes and SEs scale by `unit`, variances by unit^2
    est, se = float(fit.params["treat"]) * unit, float(fit.bse["treat"]) * unit
    out.update(diff=est, se=se, p=float(2 * stats.t.sf(abs(est / se), df_between)), df=float(df_between),
               p_normal=float(fit.pvalues["treat"]), var_resid=float(fit.scale) * unit**2,
               spec=f"{spec}; REML ({fit.optimizer_used}); Wald t, df = sessions - 2 = {df_between}")
    if crossed:
        vc = dict(zip(fit.model.exog_vc.names, fit.vcomp))
        out.update(var_session=float(vc.get("session", NAN)) * unit**2,
                   var_persona=float(vc.get("persona", NAN)) * unit**2)
    else:
        out["var_session"] = float(fit.cov_re.iloc[0, 0]) * unit**2
    return out


def standardise(values: np.ndarray) -> tuple[float, float]:
    """(centre, unit) to fit a location-scale model (MixedLM) on (values - centre) / unit; (0, 1),
    no change, unless the values need it.

    The model is equivariant: fitting (y - c) / u and multiplying slopes and SEs by u (variances
    by u^2) gives the fit of y. Values far from 0 relative to their spread (|median| > OFFSET_RATIO
    SD: around 1e12 with an SD of 1) leave statsmodels' optimizers ~1e-4 of resolution (the
    intercept carries the offset): they stop "converged" away from the maximum or fail. The centre
    is the median (a data value or the mean of two: y - centre is exact for y within a factor 2 of
    it, Sterbenz); the unit a power of 2 (exact division), only for an SD outside [2^-10, 2^10].
    """
    y = np.asarray(values, float)
    if len(y) < 2:
        return 0.0, 1.0
    median = float(np.median(y))
    dev = y - median
    big = float(np.max(np.abs(dev)))
    with np.errstate(over="ignore", invalid="ignore"):  # the SD of values ~1e300 (squares overflow): scaled first
        sd = big * float(np.std(dev / big)) if np.isfinite(big) and big > 0 else NAN
    if not (np.isfinite(sd) and sd > 0):
        return 0.0, 1.0
    centre = median if abs(median) > OFFSET_RATIO * sd else 0.0
    unit = 1.0 if 2.0**-10 <= sd <= 2.0**10 else power_of_two(sd)
    return centre, unit


def power_of_two(x: float) -> float:
    """The largest power of 2 <= |x| (x finite, not 0): dividing by it is exact and cannot overflow."""
    return math.ldexp(1.0, math.frexp(abs(x))[1] - 1)


OFFSET_RATIO = 1000.0


OPTIMIZERS = ("lbfgs", "bfgs", "powell", "nm", "cg")
# a fit is a stationary point of the profile REML log-likelihood when its gradient (in statsmodels'
# packed, square-root parametrisation, summed over observations) is below this, per observation
GRAD_TOL = 1e-4


def best_fit(model, param: str | None = "treat"):
    """(fit, reason): the first acceptable REML fit over OPTIMIZERS (statsmodels MixedLM).

    A fit is acceptable when its llf and the SE of `param` (every fixed effect when None) are
    finite and positive, the optimizer converged (statsmodels' `converged`), and it is a proper
    maximum: the gradient of the profile REML log-likelihood at the solution is ~0 (max |grad| <=
    GRAD_TOL x observations; a singular "optimum" at llf = +inf or a stalled optimizer fails
    this) and it does not rise from a variance at 0 (`_boundary_rise`). The first acceptable fit
    is kept (the other optimizers are only tried when one fails: a stationary point of this likelihood found by two optimizers is the same point, see
    tests/test_mixed_reml.py); returns (None, reasons) if none passes.
    """
    reasons = []
    for method in OPTIMIZERS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = model.fit(reml=True, method=method)
                k = len(fit.fe_params)
                se = float(fit.bse[param]) if param else float(np.max(np.asarray(fit.bse)[:k]))
                llf = float(fit.llf)
                grad = _profile_gradient(model, fit) if np.isfinite(llf) else np.inf
                rise = _boundary_rise(model, fit) if np.isfinite(llf) else np.inf
        except Exception as exc:  # statsmodels raises many types on singular problems
            reasons.append(f"{method}: {type(exc).__name__}")
            continue
        if not (np.isfinite(llf) and np.isfinite(se) and se > 0):
            reasons.append(f"{method}: non-finite llf/SE")
            continue
        if not getattr(fit, "converged", True):
            reasons.append(f"{method}: not converged")
            continue
        if not grad <= GRAD_TOL * max(1, int(model.nobs)):
            reasons.append(f"{method}: not a maximum (|gradient| {grad:.2g})")
            continue
        if not rise <= GRAD_TOL * max(1, int(model.nobs)):
            reasons.append(f"{method}: a variance at 0 that is not a maximum (slope {rise:.2g})")
            continue
        fit.optimizer_used = method
        return fit, "; ".join(reasons)
    return None, "; ".join(reasons)


def _profile_gradient(model, fit) -> float:
    """max |gradient| of statsmodels' profile REML log-likelihood at the fit, in the packed
    parametrisation its optimizers use (fixed effects and scale profiled out)."""
    packed = fit.params_object.get_packed(use_sqrt=model.use_sqrt, has_fe=False)
    return float(np.max(np.abs(model.score(packed, profile_fe=True))))


def _boundary_rise(model, fit) -> float:
    """Largest derivative of the profile REML log-likelihood in a variance parameter (statsmodels'
    unsquared parametrisation: random-effect variances relative to the residual one).

    In the square-root parametrisation the optimizers use, a variance at 0 is always a stationary
    point (d/dL of L^2 is 0 at L = 0), so a fit stopped there passes the gradient test even where
    the likelihood rises into the interior (seen: L-BFGS at a session variance of 0 with llf 1.8
    below the maximum). At a maximum on that boundary the one-sided derivative is <= 0 (the
    Karush-Kuhn-Tucker condition); in the interior it is ~0 like the gradient.
    """
    old = model.use_sqrt
    try:
        model.use_sqrt = False
        packed = fit.params_object.get_packed(use_sqrt=False, has_fe=False)
        grad = np.asarray(model.score(packed, profile_fe=True), float)
    finally:
        model.use_sqrt = old
    rows, cols = np.tril_indices(model.k_re)
    variances = np.r_[np.flatnonzero(rows == cols), model.k_re2 + np.arange(model.k_vc)]
    return float(np.max(grad[variances])) if len(variances) else -np.inf


def group_codes(sessions: pd.Series) -> np.ndarray:
    """Integer codes 0..k-1 for the session of each observation (for the cluster bootstrap)."""
    return pd.factorize(sessions, sort=True)[0]


def cluster_bootstrap_t(control_means: np.ndarray, treatment_means: np.ndarray, n_boot: int = 2000,
                        rng: np.random.Generator | None = None, alpha: float = 0.05) -> tuple[float, float, float, str]:
    """(p, ci_low, ci_high, note): symmetric studentized cluster bootstrap (bootstrap-t) for the
    difference of session means (Efron & Tibshirani 1993, ch. 12 and 16; Hall 1992).

    Sessions are resampled within arm; t* = (diff* - diff) / se* (Welch SE). p = share of |t*| >=
    |t_obs| (+1 corrected) and CI = diff -+ q se_obs with q the (1 - alpha) quantile of |t*|: the
    same statistic, so the CI excludes 0 exactly when p < alpha (up to the +1 correction).
    Resamples with se* = 0 count as extreme. NaN (with note) under MIN_CI_UNITS sessions per arm
    or when there is no spread between sessions.
    """
    c, t = np.asarray(control_means, float), np.asarray(treatment_means, float)
    if min(len(c), len(t)) < MIN_CI_UNITS:
        return NAN, NAN, NAN, f"cluster bootstrap needs >= {MIN_CI_UNITS} sessions per arm (have {len(c)} v {len(t)})"
    scale = scale_of(c, t)
    if no_spread(c, scale) and no_spread(t, scale):
        return NAN, NAN, NAN, "cluster bootstrap: no variation between sessions"
    rng = rng or np.random.default_rng(0)
    se_obs = np.sqrt(c.var(ddof=1) / len(c) + t.var(ddof=1) / len(t))
    diff = t.mean() - c.mean()
    t_obs = abs(diff) / se_obs
    ic = rng.integers(0, len(c), (n_boot, len(c)))
    it = rng.integers(0, len(t), (n_boot, len(t)))
    bc, bt = c[ic], t[it]
    se = np.sqrt(bc.var(axis=1, ddof=1) / len(c) + bt.var(axis=1, ddof=1) / len(t))
    with np.errstate(divide="ignore", invalid="ignore"):
        tstar = np.where(se > RTOL_SE * se_obs, np.abs(bt.mean(axis=1) - bc.mean(axis=1) - diff) / se, np.inf)
    p = float((1 + np.count_nonzero(tstar >= t_obs)) / (n_boot + 1))
    q = float(np.quantile(tstar, 1 - alpha, method="higher"))
    if not np.isfinite(q):
        return p, NAN, NAN, "cluster bootstrap CI: too many resamples without spread"
    return p, float(diff - q * se_obs), float(diff + q * se_obs), ""


RTOL_SE = 1e-9


def icc_ci(icc: float, n_sessions: int, n_values: int, n0: float, n_arms: int = 2,
           alpha: float = 0.05) -> tuple[float, float]:
    """F-based CI for the one-way ANOVA ICC (Searle 1971; Donner 1986): F = 1 + n0 ICC / (1 - ICC)
    on (k - arms, n - k) df; bounds (F/F_u - 1) / (F/F_u + n0 - 1), truncated to [0, 1]."""
    df1, df2 = n_sessions - n_arms, n_values - n_sessions
    if not np.isfinite(icc) or df1 < 1 or df2 < 1 or icc >= 1:
        return NAN, NAN
    f = 1 + n0 * icc / (1 - icc)
    fu, fl = stats.f.ppf(1 - alpha / 2, df1, df2), stats.f.ppf(alpha / 2, df1, df2)
    lo = (f / fu - 1) / (f / fu + n0 - 1)
    hi = (f / fl - 1) / (f / fl + n0 - 1)
    return float(min(1, max(0, lo))), float(min(1, max(0, hi)))


def adjusted_size(sizes_by_arm: list[np.ndarray]) -> float:
    """n0 of the one-way ANOVA with arm fixed: (n - sum_arms sum m_i^2 / n_arm) / (k - arms)."""
    n = sum(float(s.sum()) for s in sizes_by_arm)
    k = sum(len(s) for s in sizes_by_arm)
    if k - len(sizes_by_arm) < 1:
        return NAN
    return (n - sum(float((s**2).sum()) / s.sum() for s in sizes_by_arm)) / (k - len(sizes_by_arm))
