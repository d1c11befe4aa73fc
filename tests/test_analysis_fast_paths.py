"""The fast paths of the analysis (issue 14: `trials analyze` on 2,000 sessions under 60 s) give
the numbers of the direct computation they replace."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import power
from analysis.tests_basic import welch_arrays


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulated_power_equals_welch_on_every_shifted_draw(seed):
    # the direct computation: the same draws, the treatment arm shifted, welch_arrays' p < alpha
    rng = np.random.default_rng(100 + seed)
    sizes_c, sizes_t = rng.integers(2, 9, 6), rng.integers(2, 9, 14)
    sd, icc, effects = 1.3, 0.3, np.array([0.0, 0.4, 0.9, 1.7])
    got = power.simulated_power(sizes_c, sizes_t, effects, sd, icc, n_sims=3000, seed=seed)
    draws = np.random.default_rng(seed)
    sc, st = power.session_mean_sds(sizes_c, sd, icc), power.session_mean_sds(sizes_t, sd, icc)
    zc = draws.standard_normal((3000, len(sc))) * sc
    zt = draws.standard_normal((3000, len(st))) * st
    ref = np.array([np.mean(welch_arrays(zc, zt + e)[3] < 0.05) for e in effects])
    np.testing.assert_allclose(got, ref, atol=1 / 3000 + 1e-12)  # at most one draw on the boundary
    assert abs(got[0] - 0.05) < 0.02 and got[-1] > got[1]


def test_design_mde_is_where_the_direct_power_crosses_the_target():
    sizes_c, sizes_t = np.array([2, 5, 8, 3]), np.array([6, 2, 7, 4, 8])
    mde = power.design_mde(sizes_c, sizes_t, 1.0, 0.2, target=0.8, n_sims=2000, seed=4)
    below, at = power.simulated_power(sizes_c, sizes_t, np.array([mde * (1 - 1e-6), mde]), 1.0, 0.2,
                                      n_sims=2000, seed=4)
    assert below < 0.8 <= at
