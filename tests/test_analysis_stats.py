"""Every statistic cross-checked against scipy/statsmodels directly or a hand-worked example."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

from analysis import clustered, compare, effect_sizes, paired, power, tests_basic
from analysis.multiple import benjamini_hochberg, holm
from analysis.simulate import clustered_table

RNG = np.random.default_rng(42)
CTRL = RNG.normal(0.0, 1.0, 23)
TRT = RNG.normal(0.6, 1.7, 31)


def test_welch_matches_scipy_including_ci():
    est = tests_basic.welch(CTRL, TRT)
    ref = stats.ttest_ind(TRT, CTRL, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert est.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert (est.ci_low, est.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert est.diff == pytest.approx(TRT.mean() - CTRL.mean())


def test_mann_whitney_matches_scipy():
    c, t = np.round(CTRL * 2), np.round(TRT * 2)  # with ties
    assert tests_basic.mann_whitney(c, t) == pytest.approx(stats.mannwhitneyu(c, t).pvalue, rel=1e-12)


def test_permutation_close_to_scipy_and_exact_on_tiny_example():
    rng = np.random.default_rng(0)
    ours = tests_basic.permutation_test(CTRL, TRT, 20000, rng)
    ref = stats.permutation_test((TRT, CTRL), lambda a, b: a.mean() - b.mean(), n_resamples=20000,
                                 random_state=1, vectorized=False).pvalue
    assert ours == pytest.approx(ref, abs=0.01)
    # Hand-worked: control [0, 0], treatment [1, 1]: 2 of the 6 splits are as extreme -> p = 1/3.
    p = tests_basic.permutation_test(np.zeros(2), np.ones(2), 30000, np.random.default_rng(1))
    assert p == pytest.approx(1 / 3, abs=0.01)


def test_hedges_g_hand_worked():
    c, t = np.array([1.0, 2, 3]), np.array([3.0, 4, 5])
    # pooled SD = 1, d = 2, J = 1 - 3/(4*6 - 9) = 0.8
    assert effect_sizes.hedges_g(c, t) == pytest.approx(1.6)


def test_cliffs_delta_and_prob_superiority_brute_force():
    c, t = np.round(CTRL), np.round(TRT)
    signs = np.sign(t[:, None] - c[None, :])
    assert effect_sizes.cliffs_delta(c, t) == pytest.approx(signs.mean())
    ps = (signs > 0).mean() + 0.5 * (signs == 0).mean()
    assert effect_sizes.prob_superiority(c, t) == pytest.approx(ps)
    # and the U-statistic identity: P(T>C) + 0.5 P(T=C) = U_T / (n_t n_c)
    u = stats.mannwhitneyu(t, c).statistic
    assert ps == pytest.approx(u / (len(t) * len(c)))


def _ncp_bounds(t: float, df: float) -> tuple[float, float]:
    """Noncentrality bounds of a 95% CI (Steiger & Fouladi 1997), by bisection on scipy's nct sf,
    written out here independently of the package (which uses brentq on the cdf)."""
    def root(p: float) -> float:
        return optimize.root_scalar(lambda lam: stats.nct.sf(t, df, lam) - p, bracket=(t - 30, t + 30),
                                    method="bisect", xtol=1e-12).root
    return root(0.025), root(0.975)


def test_g_ci_is_the_noncentral_t_interval_of_welchs_t():
    units = effect_sizes.Units.of_values
    nc, nt = len(CTRL), len(TRT)
    sd = float(np.sqrt(((nc - 1) * CTRL.var(ddof=1) + (nt - 1) * TRT.var(ddof=1)) / (nc + nt - 2)))
    diff = TRT.mean() - CTRL.mean()
    g, lo, hi, note = effect_sizes.headline_g(units(CTRL), units(TRT), False, diff, sd)
    assert g == pytest.approx(effect_sizes.hedges_g(CTRL, TRT)) and note == ""
    # the CI of lambda = diff / SE for scipy's Welch t (its df too), rescaled by SE / SD
    welch = stats.ttest_ind(TRT, CTRL, equal_var=False)
    se = diff / welch.statistic
    lam_lo, lam_hi = _ncp_bounds(welch.statistic, welch.df)
    assert (lo, hi) == pytest.approx((lam_lo * se / sd, lam_hi * se / sd), rel=1e-7)
    assert lo < g < hi
    # with equal spread per arm and equal sizes this is the Steiger-Fouladi interval of the pooled t
    # up to the df: check nct_ci itself on scipy's pooled two-sample t
    t_scipy = stats.ttest_ind(TRT, CTRL).statistic
    assert effect_sizes.nct_ci(t_scipy, nc + nt - 2) == pytest.approx(_ncp_bounds(t_scipy, nc + nt - 2), rel=1e-7)


def test_paired_g_ci_is_the_one_sample_noncentral_t_interval_rescaled():
    # paired design: g = J diff / pooled SD of the values (d_av); CI = CI of lambda (t of the per-pair
    # differences, pairs - 1 df) * SE(diff) / pooled SD
    df = clustered_table(np.random.default_rng(12), n_sessions=9, cluster_size=3, icc=0.3, effect=0.4, paired_corr=0.6)
    eff = compare(df, paired_design=True, n_boot=100, n_perm=100, mixed=False).iloc[0]
    means = df.groupby(["arm", "replicate"])["value"].mean()
    d = (means["treatment"] - means["control"]).to_numpy()
    se = d.std(ddof=1) / math.sqrt(len(d))
    sd = eff["sd_pooled"]
    lam_lo, lam_hi = _ncp_bounds(d.mean() / se, len(d) - 1)
    assert eff["diff"] == pytest.approx(d.mean())
    assert (eff["g_ci_low"], eff["g_ci_high"]) == pytest.approx((lam_lo * se / sd, lam_hi * se / sd), rel=1e-7)
    assert np.sign(eff["hedges_g"]) == np.sign(eff["diff"]) and "noncentral-t" in eff["g_on"]


def test_nct_ci_far_tail_falls_back_to_the_normal_interval():
    lo, hi = effect_sizes.nct_ci(500.0, 10)
    half = stats.norm.ppf(0.975) * math.sqrt(1 + 500.0**2 / 20)
    assert (lo, hi) == pytest.approx((500 - half, 500 + half))
    assert np.isnan(effect_sizes.nct_ci(float("nan"), 10)[0])


def _cliff_interval(d: float, var: float, z: float) -> tuple[float, float]:
    """Cliff (1993) eq. for the asymmetric CI, written out here independently of the package."""
    def bound(s: float) -> float:
        return (d - d**3 + s * z * np.sqrt(var) * np.sqrt((1 - d * d) ** 2 + z * z * var)) / (1 - d * d + z * z * var)
    return bound(-1), bound(1)


def test_cliffs_delta_ci_matches_brute_force_placements_and_clusters():
    c, t = np.round(CTRL * 2), np.round(TRT * 2)
    signs = np.sign(t[:, None] - c[None, :])  # (n_t x n_c) dominance matrix, O(n^2), for the check only
    vt, vc = signs.mean(axis=1), signs.mean(axis=0)
    d = signs.mean()
    var = vt.var(ddof=1) / len(t) + vc.var(ddof=1) / len(c)  # DeLong et al. (1988) placements
    got = effect_sizes.delta_ci(c, t)
    assert got[0] == pytest.approx(d)
    assert got[1:3] == pytest.approx(_cliff_interval(d, var, stats.t.ppf(0.975, len(c) + len(t) - 2)))
    # clustered: Obuchowski's (1997) cluster sums of the same placements
    gc, gt = np.arange(len(c)) % 8, np.arange(len(t)) % 9
    sc = np.array([(vc[gc == k] - d).sum() for k in range(8)])
    st = np.array([(vt[gt == k] - d).sum() for k in range(9)])
    var_cl = 8 / 7 * (sc**2).sum() / len(c) ** 2 + 9 / 8 * (st**2).sum() / len(t) ** 2
    got = effect_sizes.delta_ci(c, t, gc, gt)
    assert got[1:3] == pytest.approx(_cliff_interval(d, var_cl, stats.t.ppf(0.975, 15)))
    assert np.isnan(effect_sizes.delta_ci(c, t, gc % 7, gt % 7)[1])  # 7 sessions per arm: no CI


def test_cliffs_delta_a_million_rows_in_little_memory():
    """Defect 10: the old bootstrap asked 466 GiB for 10^6 rows; the rank-based delta needs O(n)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    c, t = rng.normal(size=500_000), rng.normal(0.1, 1, 500_000)
    groups = np.arange(500_000) // 5
    tracemalloc.start()
    d, lo, hi, _ = effect_sizes.delta_ci(c, t, groups, groups)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**29  # 0.5 GiB, far below the 4 GiB budget
    u = stats.mannwhitneyu(t, c).statistic  # delta = 2 U / (n_t n_c) - 1, computed by scipy
    assert d == pytest.approx(2 * u / (len(t) * len(c)) - 1, abs=1e-9) and lo < d < hi


def test_paired_tests_match_scipy_and_exact_sign_flip():
    a, b = RNG.normal(size=12), RNG.normal(0.4, 1, 12)
    est = paired.paired_t(b - a)
    ref = stats.ttest_rel(b, a)
    ci = ref.confidence_interval()
    assert est.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert (est.ci_low, est.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert paired.wilcoxon(b - a) == pytest.approx(stats.wilcoxon(b, a).pvalue)
    # exact sign-flip vs brute-force enumeration written independently
    d = b - a
    means = [abs(np.dot(s, d)) for s in itertools.product((1, -1), repeat=len(d))]
    assert paired.sign_flip_test(d) == pytest.approx(np.mean(np.array(means) >= abs(d.sum()) - 1e-12))
    ref_perm = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
    assert paired.sign_flip_test(d) == pytest.approx(ref_perm)


def test_icc_equals_reml_variance_ratio_on_balanced_data():
    rng = np.random.default_rng(5)
    s = np.repeat(np.arange(30), 6)
    y = rng.normal(size=30)[s] * 0.8 + rng.normal(size=180)
    df = pd.DataFrame({"y": y, "s": s})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("y ~ 1", df, groups="s").fit(reml=True)
    tau2, sigma2 = float(fit.cov_re.iloc[0, 0]), float(fit.scale)
    assert clustered.icc_anova(y, s) == pytest.approx(tau2 / (tau2 + sigma2), abs=1e-4)
    assert clustered.design_effect(0.25, 5) == pytest.approx(2.0)


def test_icc_hand_worked():
    # two sessions [1, 3] and [5, 7]: MSB = 2*(2^2 + 2^2)/1 = 16, MSW = (1+1+1+1)/2 = 2, n0 = 2
    # ICC = (16 - 2) / (16 + 2) = 7/9
    assert clustered.icc_anova(np.array([1.0, 3, 5, 7]), np.array([0, 0, 1, 1])) == pytest.approx(7 / 9)


def test_compare_clustered_row_matches_direct_computations():
    df = clustered_table(np.random.default_rng(11), n_sessions=10, cluster_size=5, icc=0.3, effect=0.4)
    eff = compare(df, n_boot=500, n_perm=2000).iloc[0]
    means = df.groupby(["arm", "session"])["value"].mean()
    ref = stats.ttest_ind(means["treatment"], means["control"], equal_var=False)
    assert eff["p_value"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert "session means" in eff["p_method"] and eff["unit"] == "session mean"
    c, t = df.loc[df.arm == "control", "value"], df.loc[df.arm == "treatment", "value"]
    assert eff["p_welch"] == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue)
    assert eff["cluster_size"] == 5 and eff["design_effect"] == pytest.approx(1 + 4 * eff["icc"])
    # MixedLM with crossed session + persona intercepts, fitted here directly; L-BFGS does not
    # converge on this table, so the reference is the converged fit with the highest REML llf
    data = df.assign(treat=(df.arm == "treatment").astype(float), one=1)
    model = smf.mixedlm("value ~ treat", data, groups="one", re_formula="0",
                        vc_formula={"session": "0 + C(session)", "persona": "0 + C(agent)"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [model.fit(reml=True, method=m) for m in ("lbfgs", "powell", "nm")]
    fit = max((f for f in fits if f.converged), key=lambda f: f.llf)
    z = fit.params["treat"] / fit.bse["treat"]
    assert eff["p_mixed"] == pytest.approx(2 * stats.t.sf(abs(z), 20 - 2), rel=1e-3)  # 20 sessions
    assert eff["mixed_diff"] == pytest.approx(fit.params["treat"], rel=1e-6) and eff["mixed_df"] == 18
    assert "persona" in eff["mixed_model"] and "df = sessions - 2 = 18" in eff["mixed_model"]
    # cluster bootstrap-t: CI and p from the same statistic; df of the headline Welch test reported
    assert eff["cluster_boot_ci_low"] < eff["diff"] < eff["cluster_boot_ci_high"]
    assert (eff["p_cluster_boot"] < 0.05) == (eff["cluster_boot_ci_low"] > 0 or eff["cluster_boot_ci_high"] < 0)
    assert eff["df"] == pytest.approx(ref.df)


def test_mixed_model_session_only_when_personas_do_not_recur():
    df = clustered_table(np.random.default_rng(2), n_sessions=8, personas=False)
    eff = compare(df, n_boot=100, n_perm=100).iloc[0]
    data = df.assign(treat=(df.arm == "treatment").astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # session variance estimated at the boundary (0) here: L-BFGS is singular, Powell converges
        fit = smf.mixedlm("value ~ treat", data.assign(session=data.arm + data.session),
                          groups="session").fit(reml=True, method="powell")
    assert eff["icc"] == 0.0
    z = fit.params["treat"] / fit.bse["treat"]
    assert eff["p_mixed"] == pytest.approx(2 * stats.t.sf(abs(z), 16 - 2), rel=1e-4)
    assert eff["mixed_model"].startswith("MixedLM: random intercept for session;")


def test_mixed_model_persona_fixed_effects_on_larger_tables():
    df = clustered_table(np.random.default_rng(4), n_sessions=30, cluster_size=5, effect=0.3)
    assert len(df) > clustered.CROSSED_MAX_N
    eff = compare(df, n_boot=50, n_perm=50).iloc[0]
    data = df.assign(treat=(df.arm == "treatment").astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit, _ = clustered.best_fit(smf.mixedlm("value ~ treat + C(agent)", data, groups="session"))
    z = fit.params["treat"] / fit.bse["treat"]
    assert eff["p_mixed"] == pytest.approx(2 * stats.t.sf(abs(z), 60 - 2), rel=1e-6)
    assert "persona as fixed effects" in eff["mixed_model"]


def test_cluster_bootstrap_t_matches_a_plain_loop():
    c, t = RNG.normal(size=8), RNG.normal(0.5, 1.5, 9)
    p, lo, hi, _ = clustered.cluster_bootstrap_t(c, t, 300, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    ic, it = rng.integers(0, 8, (300, 8)), rng.integers(0, 9, (300, 9))  # same draws, same order
    ref = stats.ttest_ind(t, c, equal_var=False)
    tstar = []
    for b in range(300):
        bc, bt = c[ic[b]], t[it[b]]
        se = np.sqrt(bc.var(ddof=1) / 8 + bt.var(ddof=1) / 9)
        tstar.append(np.inf if se == 0 else abs(bt.mean() - bc.mean() - (t.mean() - c.mean())) / se)
    tstar = np.array(tstar)
    assert p == pytest.approx((1 + np.sum(tstar >= abs(ref.statistic))) / 301)
    q = np.sort(tstar)[int(np.ceil(0.95 * 299))]  # the 'higher' 95% quantile of |t*|
    se_obs = (t.mean() - c.mean()) / ref.statistic
    assert (lo, hi) == pytest.approx((t.mean() - c.mean() - q * se_obs, t.mean() - c.mean() + q * se_obs))


def test_holm_and_bh_match_statsmodels():
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan, 0.001, 0.04])
    ok = np.isfinite(p)
    assert holm(p)[ok] == pytest.approx(multipletests(p[ok], method="holm")[1])
    assert benjamini_hochberg(p)[ok] == pytest.approx(multipletests(p[ok], method="fdr_bh")[1])
    assert np.isnan(holm(p)[4]) and np.isnan(benjamini_hochberg(p)[4])


def test_power_matches_statsmodels_and_mde_inverts_it():
    n = power.replicates_needed(0.5, 1.0)
    assert n == np.ceil(TTestIndPower().solve_power(0.5, alpha=0.05, power=0.8))
    assert power.power_at(20, 0.7, 1.0) == pytest.approx(TTestIndPower().power(0.7, 20, 0.05), rel=1e-6)
    assert power.power_at(15, 0.6, 1.0, sd_diff=1.0) == pytest.approx(TTestPower().power(0.6, 15, 0.05), rel=1e-6)
    # clustering: 5 agents/session, ICC 0.3 -> session-mean SD = sqrt(2.2/5); same as d = effect/that SD
    d = 0.5 / np.sqrt(2.2 / 5)
    assert power.power_at(12, 0.5, 1.0, icc=0.3, cluster_size=5) == pytest.approx(TTestIndPower().power(d, 12, 0.05))
    m = power.mde(12, 1.0, icc=0.3, cluster_size=5)
    assert power.power_at(12, m, 1.0, icc=0.3, cluster_size=5) == pytest.approx(0.8, abs=1e-6)
    assert power.replicates_needed(m, 1.0, icc=0.3, cluster_size=5) == 12


def test_mde_with_two_pairs_is_finite():
    # scipy's noncentral t returns NaN in the far lower tail for df=1; power must treat it as ~0
    m = power.mde(2.0, 3.5, sd_diff=0.7)
    assert np.isfinite(m)
    assert power.power_at(2, m, 3.5, sd_diff=0.7) == pytest.approx(0.8, abs=1e-6)
    assert power.power_at(2, m, 3.5, sd_diff=0.7) == pytest.approx(TTestPower().power(m / 0.7, 2, 0.05), abs=1e-3)


def test_intervals_need_eight_resampling_units_per_arm():
    # defect 6: below 8 sessions per arm no bootstrap interval reaches its coverage: none is reported
    small = clustered_table(np.random.default_rng(3), n_sessions=7, cluster_size=3, effect=0.5)
    eff = compare(small, n_boot=200, n_perm=200, mixed=False).iloc[0]
    assert np.isnan(eff["g_ci_low"]) and np.isnan(eff["cluster_boot_ci_low"]) and np.isnan(eff["delta_ci_low"])
    assert "g CI needs >= 8 units per arm (have 7 v 7)" in eff["notes"]
    assert "cluster bootstrap needs >= 8 sessions per arm" in eff["notes"]
    big = clustered_table(np.random.default_rng(3), n_sessions=8, cluster_size=3, effect=0.5)
    eff = compare(big, n_boot=200, n_perm=200, mixed=False).iloc[0]
    assert eff["g_ci_low"] < eff["hedges_g"] < eff["g_ci_high"]
    assert eff["delta_ci_low"] < eff["cliffs_delta"] < eff["delta_ci_high"]
