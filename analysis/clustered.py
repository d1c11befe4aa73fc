"""Cluster-aware pieces for agent-level metrics (agents nested in sessions, personas reused)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from scipy import stats

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
    a crossed random intercept up to CROSSED_MAX_N values, fixed effects above).

    Returns diff (treatment coefficient), p (Wald t, sessions - 2 df), p_normal (statsmodels' z),
    var_session, var_persona, var_resid and spec (the model fitted); NaNs and a spec saying why
    when the fit fails.
    """
    import statsmodels.formula.api as smf  # heavy import, only when needed

    data = rows.loc[rows["arm"].isin([control, treatment]), ["arm", "session", "agent", "value"]].copy()
    data["treat"] = (data["arm"] == treatment).astype(float)
    crossed = persona_identifiable(data)
    out: dict[str, float | str] = {"diff": NAN, "p": NAN, "var_session": NAN, "var_persona": NAN,
                                   "var_resid": NAN}
    if len(data) < 4 or float(data["value"].std()) == 0.0:
        out["spec"] = "MixedLM skipped (too few values or no variation)"
        return out
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
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
            fit = _fit(model)
        # Wald statistic referred to t with (sessions - 2) df, the between-session df: statsmodels'
        # normal reference is anti-conservative with few sessions (see benchmarks/calibration.py).
        df_between = max(1, data["session"].nunique() - 2)
        z = float(fit.params["treat"] / fit.bse["treat"])
        out.update(diff=float(fit.params["treat"]), p=float(2 * stats.t.sf(abs(z), df_between)),
                   p_normal=float(fit.pvalues["treat"]), var_resid=float(fit.scale),
                   spec=f"{spec}; Wald t, df = sessions - 2 = {df_between}")
        if crossed:
            vc = dict(zip(fit.model.exog_vc.names, fit.vcomp))
            out.update(var_session=float(vc.get("session", NAN)), var_persona=float(vc.get("persona", NAN)))
        else:
            out["var_session"] = float(fit.cov_re.iloc[0, 0])
    except Exception as exc:  # statsmodels can fail in many ways on degenerate data
        log.info("MixedLM failed: %s", exc)
        out["spec"] = f"MixedLM failed ({type(exc).__name__}: {exc})"
    return out


def _fit(model):
    """REML fit; L-BFGS fails with a singular matrix when a variance sits at 0, so fall back to Powell."""
    try:
        return model.fit(reml=True, method="lbfgs")
    except (np.linalg.LinAlgError, ValueError):
        return model.fit(reml=True, method="powell")


def group_codes(sessions: pd.Series) -> np.ndarray:
    """Integer codes 0..k-1 for the session of each observation (for the cluster bootstrap)."""
    return pd.factorize(sessions, sort=True)[0]


def cluster_bootstrap_t(control_means: np.ndarray, treatment_means: np.ndarray, n_boot: int = 2000,
                        rng: np.random.Generator | None = None) -> float:
    """Two-sided p of the studentized cluster bootstrap (bootstrap-t) for the difference of session means.

    Sessions are resampled within arm; t* = (diff* - diff) / se* is compared with the observed Welch
    t. Studentizing keeps the level near nominal with few sessions, where the percentile-null
    bootstrap rejects too often (benchmarks/calibration.py). Degenerate resamples count as extreme.
    """
    c, t = np.asarray(control_means, float), np.asarray(treatment_means, float)
    if len(c) < 2 or len(t) < 2:
        return NAN
    rng = rng or np.random.default_rng(0)
    se_obs = np.sqrt(c.var(ddof=1) / len(c) + t.var(ddof=1) / len(t))
    diff = t.mean() - c.mean()
    if se_obs == 0:
        return 1.0 if diff == 0 else 0.0
    t_obs = abs(diff) / se_obs
    ic = rng.integers(0, len(c), (n_boot, len(c)))
    it = rng.integers(0, len(t), (n_boot, len(t)))
    bc, bt = c[ic], t[it]
    se = np.sqrt(bc.var(axis=1, ddof=1) / len(c) + bt.var(axis=1, ddof=1) / len(t))
    dev = np.abs(bt.mean(axis=1) - bc.mean(axis=1) - diff)
    extreme = np.where(se > 0, dev >= t_obs * se, True)
    return float((1 + np.count_nonzero(extreme)) / (n_boot + 1))
