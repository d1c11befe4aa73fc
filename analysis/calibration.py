"""Calibration by simulation: false-positive rates under the null and predicted vs simulated power.

Vectorised over thousands of simulated experiments (agents nested in sessions). The tests here are
the ones `compare` uses for balanced designs of >= 10 sessions per arm: Welch on session means
(unpaired) and paired t on per-replicate differences (paired); `tests/test_analysis_calibration.py`
checks that `compare` reports exactly these p-values on simulated tables. Unbalanced and small
designs (studentized permutation test) are calibrated through `compare` itself in
benchmarks/calibration.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis import power as pw
from analysis.simulate import clustered_values
from analysis.tests_basic import welch_arrays


@dataclass(frozen=True)
class Design:
    """A balanced simulated design: sessions per arm, agents per session, ICC, SD, paired share."""

    n_sessions: int = 10  # per arm
    cluster_size: int = 5  # agents per session
    icc: float = 0.3
    sd: float = 1.0
    paired_corr: float = 0.0  # share of the session effect common to replicate r of both arms


def headline_p(c: np.ndarray, t: np.ndarray, paired: bool = False) -> np.ndarray:
    """Default test on (sims, sessions, agents) arrays: session means, then Welch or paired t."""
    mc, mt = c.mean(axis=-1), t.mean(axis=-1)
    if paired:
        return stats.ttest_1samp(mt - mc, 0.0, axis=-1).pvalue
    return welch_arrays(mc, mt)[3]


def naive_p(c: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Welch on individual agent values, ignoring sessions (what TinyTroupe's runner does)."""
    s = c.shape
    return welch_arrays(c.reshape(s[0], -1), t.reshape(s[0], -1))[3]


def false_positive_rates(design: Design = Design(), n_sims: int = 2000, alpha: float = 0.05,
                         seed: int = 0) -> dict[str, float]:
    """Rejection rates under the null (effect 0) for the default test and the naive per-agent Welch."""
    rng = np.random.default_rng(seed)
    c, t = clustered_values(rng, n_sims, design.n_sessions, design.cluster_size, design.icc, 0.0,
                            design.sd, design.paired_corr)
    paired = design.paired_corr > 0
    return {"default": float(np.mean(headline_p(c, t, paired) < alpha)),
            "naive_agent_welch": float(np.mean(naive_p(c, t) < alpha))}


def power_check(design: Design = Design(), effect: float | None = None, n_sims: int = 2000,
                alpha: float = 0.05, target: float = 0.8, seed: int = 1) -> dict[str, float]:
    """Predicted power (analysis.power) vs the simulated rejection rate of the default test.

    With effect=None the effect is this design's minimum detectable effect at `target` power.
    """
    paired = design.paired_corr > 0
    sd_diff = None
    if paired:  # SD of the difference of two session means sharing paired_corr of their session effect
        var_s, var_e = design.icc * design.sd**2, (1 - design.icc) * design.sd**2
        sd_diff = float(np.sqrt(2 * (1 - design.paired_corr) * var_s + 2 * var_e / design.cluster_size))
    if effect is None:
        effect = pw.mde(design.n_sessions, design.sd, design.icc, design.cluster_size, alpha, target, sd_diff)
    predicted = pw.power_at(design.n_sessions, effect, design.sd, design.icc, design.cluster_size, alpha, sd_diff)
    rng = np.random.default_rng(seed)
    c, t = clustered_values(rng, n_sims, design.n_sessions, design.cluster_size, design.icc, effect,
                            design.sd, design.paired_corr)
    simulated = float(np.mean(headline_p(c, t, paired) < alpha))
    return {"effect": float(effect), "predicted": float(predicted), "simulated": simulated}


def session_means_sim(rng: np.random.Generator, sizes: np.ndarray, n_sims: int, icc: float, shift: float,
                      sd: float = 1.0) -> np.ndarray:
    """(n_sims, sessions) session means of agent values simulated agent by agent (random intercept)."""
    sizes = np.asarray(sizes, int)
    agents = rng.normal(0, sd * np.sqrt(1 - icc), (n_sims, int(sizes.sum())))
    means = np.add.reduceat(agents, np.r_[0, np.cumsum(sizes)[:-1]], axis=1) / sizes
    return shift + rng.normal(0, sd * np.sqrt(icc), (n_sims, len(sizes))) + means


def design_power_check(sizes_c: np.ndarray, sizes_t: np.ndarray, icc: float = 0.3, n_sims: int = 4000,
                       alpha: float = 0.05, target: float = 0.8, seed: int = 1) -> dict[str, float]:
    """At this design's MDE (analysis.power.design_mde): the power it predicts, the power the old
    mean-cluster-size formula predicts, and the rejection rate of the headline Welch test on session
    means in agent-by-agent simulations of that exact design."""
    mde = pw.design_mde(sizes_c, sizes_t, 1.0, icc, alpha, target, n_sims, seed)
    rng = np.random.default_rng(seed + 1)
    c = session_means_sim(rng, sizes_c, n_sims, icc, 0.0)
    t = session_means_sim(rng, sizes_t, n_sims, icc, mde)
    m = float(np.mean(np.r_[sizes_c, sizes_t]))
    return {"effect": mde, "predicted": target,
            "old_formula": float(pw.power_at(min(len(sizes_c), len(sizes_t)), mde, 1.0, icc, m, alpha)),
            "simulated": float(np.mean(welch_arrays(c, t, alpha)[3] < alpha))}
