"""Simulated metric tables with session clustering (for calibration, tests and planning)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def clustered_values(rng: np.random.Generator, n_sims: int, n_sessions: int, cluster_size: int,
                     icc: float, effect: float = 0.0, sd: float = 1.0,
                     paired_corr: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(control, treatment) arrays of shape (n_sims, n_sessions, cluster_size).

    value = arm effect + session effect (variance icc sd^2) + agent noise (variance (1-icc) sd^2).
    With paired_corr > 0, replicate r of both arms shares that fraction of its session effect.
    """
    sd_s, sd_e = sd * np.sqrt(icc), sd * np.sqrt(1 - icc)
    shared = rng.normal(0, sd_s, (n_sims, n_sessions, 1))
    def arm(shift: float) -> np.ndarray:
        own = rng.normal(0, sd_s, (n_sims, n_sessions, 1))
        session = np.sqrt(paired_corr) * shared + np.sqrt(1 - paired_corr) * own
        return shift + session + rng.normal(0, sd_e, (n_sims, n_sessions, cluster_size))
    return arm(0.0), arm(effect)


def clustered_table(rng: np.random.Generator, n_sessions: int = 10, cluster_size: int = 5, icc: float = 0.3,
                    effect: float = 0.0, sd: float = 1.0, paired_corr: float = 0.0,
                    metric: str = "adherence", personas: bool = True) -> pd.DataFrame:
    """One simulated experiment as a tidy metric table (agent-level metric, arms control/treatment).

    With `personas`, agent k of every session is the same persona ("p<k>"), as in a real run.
    """
    c, t = clustered_values(rng, 1, n_sessions, cluster_size, icc, effect, sd, paired_corr)
    rows = []
    for arm, vals in (("control", c[0]), ("treatment", t[0])):
        for r in range(n_sessions):
            for k in range(cluster_size):
                rows.append({"experiment": "sim", "arm": arm, "replicate": r, "session": f"{arm}-r{r}",
                             "agent": f"p{k}" if personas else f"{arm}-r{r}-a{k}", "metric": metric,
                             "value": vals[r, k], "scale": "real", "level": "agent",
                             "judge_model": "", "missing_reason": ""})
    return pd.DataFrame(rows)


def _rows(arm: str, r: int, values: np.ndarray, metric: str, level: str, scale: str) -> list[dict]:
    return [{"experiment": "sim", "arm": arm, "replicate": r, "session": f"{arm}-r{r}",
             "agent": f"p{k}" if level == "agent" else "", "metric": metric, "value": float(v), "scale": scale,
             "level": level, "judge_model": "", "missing_reason": ""} for k, v in enumerate(values)]


def unequal_table(rng: np.random.Generator, n_control: int = 6, n_treatment: int = 14, sizes: tuple[int, int] = (2, 8),
                  icc: float = 0.3, effect: float = 0.0, metric: str = "adherence") -> pd.DataFrame:
    """Agent-level normal values (total SD 1), n_control v n_treatment sessions of sizes[0]..sizes[1]
    agents (uniform), a session random intercept with the given ICC."""
    rows: list[dict] = []
    for arm, k, shift in (("control", n_control, 0.0), ("treatment", n_treatment, effect)):
        for r in range(k):
            m = int(rng.integers(sizes[0], sizes[1] + 1))
            v = shift + rng.normal(0, np.sqrt(icc)) + rng.normal(0, np.sqrt(1 - icc), m)
            rows += _rows(arm, r, v, metric, "agent", "real")
    return pd.DataFrame(rows)


def skewed_counts_table(rng: np.random.Generator, n_control: int = 4, n_treatment: int = 16, mean: float = 5.0,
                        ratio: float = 1.0, shape: float = 0.7, metric: str = "ideas") -> pd.DataFrame:
    """Session-level counts, negative binomial (gamma-Poisson, shape `shape`: strongly right-skewed),
    mean `mean` in control and `mean * ratio` in treatment."""
    rows: list[dict] = []
    for arm, k, mu in (("control", n_control, mean), ("treatment", n_treatment, mean * ratio)):
        y = rng.poisson(rng.gamma(shape, mu / shape, k))
        for r in range(k):
            rows += _rows(arm, r, y[r:r + 1], metric, "session", "count")
    return pd.DataFrame(rows)


CUTS_0_9 = np.array([-1.6, -1.0, -0.5, -0.1, 0.3, 0.7, 1.0, 1.4, 1.9])  # skewed 0-9 use of the scale


def ordinal_table(rng: np.random.Generator, n_sessions: int = 8, cluster_size: int = 4, icc: float = 0.2,
                  effect: float = 0.0, metric: str = "persona_adherence") -> pd.DataFrame:
    """Agent-level 0-9 judge scores: a latent normal (session ICC `icc`, shift `effect` in SD units)
    cut at CUTS_0_9, so scores bunch unevenly as LLM judges' do."""
    c, t = clustered_values(rng, 1, n_sessions, cluster_size, icc, effect)
    rows: list[dict] = []
    for arm, vals in (("control", c[0]), ("treatment", t[0])):
        for r in range(n_sessions):
            rows += _rows(arm, r, np.searchsorted(CUTS_0_9, vals[r]).astype(float), metric, "agent", "0-9")
    return pd.DataFrame(rows)
