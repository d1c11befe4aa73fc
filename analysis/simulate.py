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
