"""Calibration by simulation: the default test holds its level under session clustering, the naive
per-agent Welch test does not, and predicted power matches simulated power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis import compare
from analysis.calibration import Design, false_positive_rates, headline_p, naive_p, power_check
from analysis.clustered import cluster_bootstrap_t
from analysis.simulate import clustered_table, clustered_values


def test_null_false_positive_rate_default_ok_naive_inflated():
    rates = false_positive_rates(Design(n_sessions=10, cluster_size=5, icc=0.3), n_sims=2000, seed=0)
    assert 0.03 <= rates["default"] <= 0.07
    assert rates["naive_agent_welch"] > 0.12  # design effect 2.2 -> about 0.18


def test_cluster_bootstrap_t_holds_level_with_few_sessions():
    rng = np.random.default_rng(8)
    c, t = clustered_values(rng, 1000, 10, 5, icc=0.3)
    p = np.array([cluster_bootstrap_t(c[i].mean(1), t[i].mean(1), 499, rng)[0] for i in range(1000)])
    assert 0.025 <= np.mean(p < 0.05) <= 0.07


def test_paired_null_false_positive_rate():
    rates = false_positive_rates(Design(paired_corr=0.6), n_sims=2000, seed=3)
    assert 0.03 <= rates["default"] <= 0.07


@pytest.mark.parametrize("design, effect", [
    (Design(), None),  # effect = MDE at 80 % power
    (Design(n_sessions=6, icc=0.1), 0.6),
    (Design(paired_corr=0.6), None),
])
def test_predicted_power_matches_simulation(design, effect):
    r = power_check(design, effect, n_sims=2000, seed=4)
    assert abs(r["simulated"] - r["predicted"]) <= 0.05


def test_calibration_uses_the_same_test_as_compare():
    """The vectorised headline test equals what compare() reports, unpaired and paired."""
    for seed in range(3):
        df = clustered_table(np.random.default_rng(seed), n_sessions=10, cluster_size=5)
        c = df.loc[df.arm == "control", "value"].to_numpy().reshape(1, 10, 5)
        t = df.loc[df.arm == "treatment", "value"].to_numpy().reshape(1, 10, 5)
        unpaired = compare(df, n_boot=50, n_perm=50, mixed=False).iloc[0]
        assert unpaired["p_value"] == pytest.approx(headline_p(c, t)[0], rel=1e-10)
        assert unpaired["p_welch"] == pytest.approx(naive_p(c, t)[0], rel=1e-10)
        pair = compare(df, n_boot=50, n_perm=50, mixed=False, paired_design=True).iloc[0]
        assert pair["p_value"] == pytest.approx(headline_p(c, t, paired=True)[0], rel=1e-10)
        assert pair["p_method"].startswith("paired t-test")


def test_simulated_icc_is_what_was_asked():
    c, _ = clustered_values(np.random.default_rng(9), 1, 4000, 5, icc=0.3)
    means = c[0].mean(axis=1)
    # var(session mean) = sd^2 (icc + (1 - icc)/m) = 0.3 + 0.7/5 = 0.44
    assert means.var(ddof=1) == pytest.approx(0.44, rel=0.06)
    assert stats.pearsonr(c[0, :, 0], c[0, :, 1]).statistic == pytest.approx(0.3, abs=0.05)
