"""Ordinal, count, equivalence, factorial and balance analyses, each checked against an independent fit."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.miscmodels.ordinal_model import OrderedModel

from analysis import analyze, compare, counts, ordinal
from analysis.balance import balance
from analysis.cli import main as analyze_main
from analysis.factorial_model import factorial, marginal_means
from analysis.simulate import clustered_table

RNG = np.random.default_rng(21)


def test_ordinal_odds_ratio_matches_ordered_model_directly():
    c = RNG.integers(2, 8, 40).astype(float)
    t = np.clip(RNG.integers(2, 8, 35) + RNG.integers(0, 3, 35), 0, 9).astype(float)
    got = ordinal.proportional_odds(c, t)
    y = np.concatenate([c, t])
    x = pd.DataFrame({"treat": np.r_[np.zeros(40), np.ones(35)]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = OrderedModel(pd.Series(pd.Categorical(y, ordered=True)), x, distr="logit").fit(method="nm", maxiter=20000, disp=False)
    b, se = ref.params["treat"], ref.bse["treat"]
    assert got["odds_ratio"] == pytest.approx(math.exp(b), rel=1e-3)
    assert got["p_ordinal"] == pytest.approx(2 * stats.norm.sf(abs(b / se)), rel=1e-2)
    assert got["or_ci_low"] < got["odds_ratio"] < got["or_ci_high"] and got["odds_ratio"] > 1


def test_ordinal_cluster_se_equals_logit_cluster_se_for_two_categories():
    # with two categories the proportional-odds model is logistic regression; statsmodels' Logit
    # with cov_type='cluster' is an independent implementation of the same sandwich (without its
    # least-squares (N-1)/(N-K) factor; G/(G-1) applied here, as for ML models in Stata)
    gc, gt = np.repeat(np.arange(10), 4), np.repeat(np.arange(10), 4)
    c = (RNG.random(40) < 0.4 + 0.2 * (gc % 2)).astype(float)
    t = (RNG.random(40) < 0.6 + 0.2 * (gt % 2)).astype(float)
    got = ordinal.proportional_odds(c, t, gc, gt)
    y, treat = np.r_[c, t], np.r_[np.zeros(40), np.ones(40)]
    groups = np.r_[gc, gt + 10]
    ref = sm.Logit(y, sm.add_constant(treat)).fit(disp=False, cov_type="cluster",
                                                  cov_kwds={"groups": groups, "use_correction": False})
    b, se = ref.params[1], ref.bse[1] * math.sqrt(20 / 19)
    assert got["odds_ratio"] == pytest.approx(math.exp(b), rel=1e-4)
    assert got["p_ordinal"] == pytest.approx(2 * stats.t.sf(abs(b / se), 18), rel=1e-3)
    q = stats.t.ppf(0.975, 18)
    assert got["or_ci_high"] == pytest.approx(math.exp(b + q * se), rel=1e-3)


def _ordered_model_reference(c, t, groups=None):
    """statsmodels' OrderedModel fitted by BFGS; (beta, model-based SE, clustered SE with G/(G-1))
    from its own score_obs and numerical Hessian."""
    y = np.r_[c, t]
    codes = np.searchsorted(np.unique(y), y)
    model = OrderedModel(codes, np.r_[np.zeros(len(c)), np.ones(len(t))][:, None], distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(method="bfgs", disp=False, maxiter=5000, gtol=1e-10)
    if groups is None:
        return fit.params[0], fit.bse[0], math.nan
    bread = np.linalg.inv(-model.hessian(fit.params))
    sums = pd.DataFrame(model.score_obs(fit.params)).groupby(groups).sum().to_numpy()
    g = len(sums)
    return fit.params[0], fit.bse[0], math.sqrt((bread @ sums.T @ sums @ bread)[0, 0] * g / (g - 1))


@pytest.mark.parametrize("kind", ["integer 0-9", "continuous 0-9 (many categories)"])
def test_ordinal_newton_fit_matches_ordered_model_with_clustered_se(kind):
    # the analytic Newton fit against statsmodels' OrderedModel (BFGS + numerical derivatives),
    # also with ~60 categories (continuous judge scores: one threshold per distinct value)
    rng = np.random.default_rng(5)
    if kind.startswith("integer"):
        c, t = rng.integers(0, 10, 60).astype(float), np.clip(rng.integers(0, 10, 60) + 1, 0, 9).astype(float)
    else:
        c, t = np.round(rng.normal(4, 2, 60), 1), np.round(rng.normal(4.6, 2, 60), 1)
    gc = gt = np.repeat(np.arange(15), 4)
    b, se_model, se_cl = _ordered_model_reference(c, t, np.r_[gc, gt + 15])
    got = ordinal.proportional_odds(c, t, gc, gt)
    q = stats.t.ppf(0.975, 28)
    assert got["odds_ratio"] == pytest.approx(math.exp(b), rel=1e-6)
    assert got["or_ci_high"] == pytest.approx(math.exp(b + q * se_cl), rel=1e-5)
    assert got["p_ordinal"] == pytest.approx(2 * stats.t.sf(abs(b / se_cl), 28), rel=1e-5)
    plain = ordinal.proportional_odds(c, t)
    assert plain["p_ordinal"] == pytest.approx(2 * stats.norm.sf(abs(b / se_model)), rel=1e-5)


def test_ordinal_fit_on_thousands_of_distinct_scores_is_exact_and_fast_enough_to_run():
    # 3,000 values per arm, nearly all distinct (the 2,000-session scripted run): statsmodels'
    # numerical Hessian would take minutes; the Newton fit must reach the score equations' root
    rng = np.random.default_rng(8)
    c, t = rng.normal(4.5, 2, 3000), rng.normal(4.6, 2, 3000)
    y = np.r_[c, t]
    cats = np.unique(y)
    fit = ordinal.fit_cumulative_logit(np.searchsorted(cats, y), np.r_[np.zeros(3000), np.ones(3000)], len(cats))
    assert len(fit.a) == len(cats) - 1 > 5000
    # score of beta at the MLE: sum over values of x (F(u) + F(l) - 1) for the logistic model is 0
    codes = np.searchsorted(cats, y)
    ext = np.r_[-np.inf, fit.a, np.inf]
    x = np.r_[np.zeros(3000), np.ones(3000)]
    from scipy.special import expit
    u, lo = ext[codes + 1] - fit.beta * x, ext[codes] - fit.beta * x
    assert abs(float((x * (expit(u) + expit(lo) - 1)).sum())) < 1e-6
    got = ordinal.proportional_odds(c, t, np.arange(3000) // 3, np.arange(3000) // 3)
    assert 0 < got["p_ordinal"] < 1 and "t on 1998 df" in got["ordinal_model"]


def test_effects_table_has_ordinal_columns_for_judge_scores():
    df = clustered_table(np.random.default_rng(2), n_sessions=8, cluster_size=4, effect=0.8)
    df["value"] = np.clip(np.round(df["value"] * 1.5 + 5), 0, 9)
    df["scale"] = "0-9"
    e = compare(df, n_boot=100, n_perm=100, mixed=False).iloc[0]
    assert e["odds_ratio"] > 0 and 0 <= e["p_ordinal"] <= 1 and "session-clustered" in e["ordinal_model"]
    assert np.isnan(e["rate_ratio"])


def test_rate_ratio_is_quasi_poisson_by_hand():
    c, t = np.array([3.0, 0, 7, 2, 9, 1]), np.array([8.0, 12, 3, 15, 6, 9, 11])
    got = counts.rate_ratio(c, t)
    mc, mt = c.mean(), t.mean()
    phi = (((c - mc) ** 2 / mc).sum() + ((t - mt) ** 2 / mt).sum()) / (len(c) + len(t) - 2)  # Pearson X2 / df
    se = math.sqrt(phi * (1 / c.sum() + 1 / t.sum()))
    q = stats.t.ppf(0.975, 11)
    assert got["rate_ratio"] == pytest.approx(mt / mc)
    assert (got["rr_ci_low"], got["rr_ci_high"]) == pytest.approx((mt / mc * math.exp(-q * se), mt / mc * math.exp(q * se)))
    assert got["p_count"] == pytest.approx(2 * stats.t.sf(math.log(mt / mc) / se, 11))
    assert np.isnan(counts.rate_ratio(np.zeros(4), t)["rate_ratio"])


def test_count_metric_row_reports_rate_ratio_on_the_headline_units():
    rows = [dict(arm=a, replicate=s, session=f"{a}{s}", metric="ideas", value=float(v), level="session", scale="count")
            for a, lam in (("control", 4), ("treatment", 7)) for s, v in enumerate(RNG.poisson(lam, 12))]
    e = compare(pd.DataFrame(rows), n_boot=100, n_perm=100).iloc[0]
    assert e["rate_ratio"] == pytest.approx(e["mean_treatment"] / e["mean_control"])
    assert e["rr_ci_low"] < e["rate_ratio"] < e["rr_ci_high"] and "quasi-Poisson" in e["count_model"]


def test_tost_matches_two_one_sided_scipy_tests():
    c, t = RNG.normal(0, 1, 12), RNG.normal(0.1, 1, 12)
    rows = [dict(arm=a, replicate=i, session=f"{a}{i}", metric="m", value=v, level="session")
            for a, x in (("control", c), ("treatment", t)) for i, v in enumerate(x)]
    e = compare(pd.DataFrame(rows), equivalence_margin=0.9, n_boot=100, n_perm=100).iloc[0]
    lo = stats.ttest_ind(t + 0.9, c, equal_var=False, alternative="greater").pvalue
    hi = stats.ttest_ind(t - 0.9, c, equal_var=False, alternative="less").pvalue
    assert e["p_tost"] == pytest.approx(max(lo, hi)) and e["equivalence_margin"] == 0.9
    ep = compare(pd.DataFrame(rows), equivalence_margin=0.9, paired_design=True, n_boot=100, n_perm=100).iloc[0]
    lo = stats.ttest_rel(t + 0.9, c, alternative="greater").pvalue
    hi = stats.ttest_rel(t - 0.9, c, alternative="less").pvalue
    assert ep["p_tost"] == pytest.approx(max(lo, hi))
    assert np.isnan(compare(pd.DataFrame(rows), n_boot=50, n_perm=50).iloc[0]["p_tost"])  # no margin, no TOST


def test_tost_unbalanced_uses_one_sided_permutation_tests():
    c, t = RNG.normal(0, 1, 5), RNG.normal(0, 1, 11)
    rows = [dict(arm=a, replicate=i, session=f"{a}{i}", metric="m", value=v, level="session")
            for a, x in (("control", c), ("treatment", t)) for i, v in enumerate(x)]
    e = compare(pd.DataFrame(rows), equivalence_margin=1.5, n_boot=100).iloc[0]
    def one_sided(shift, alt):  # exact studentized permutation test via scipy, shifted treatment
        res = stats.permutation_test((t - shift, c), lambda a, b, axis: stats.ttest_ind(a, b, axis=axis, equal_var=False).statistic,
                                     n_resamples=np.inf, alternative=alt, vectorized=True)
        return res.pvalue
    assert e["p_tost"] == pytest.approx(max(one_sided(-1.5, "greater"), one_sided(1.5, "less")), rel=1e-9)


def factorial_table(agent_level: bool) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    rows = []
    for a in ("off", "on"):
        for b in ("no", "yes"):
            mean = 5 + (a == "on") * 1.0 + (b == "yes") * 0.5 + (a == "on") * (b == "yes") * -0.8
            arm = f"{a}-{b}"
            for s in range(8):
                u = rng.normal(0, 0.4)
                for k in range(4 if agent_level else 1):
                    rows.append(dict(arm=arm, replicate=s, session=f"s{s}", agent=f"p{k}" if agent_level else "",
                                     metric="m", value=mean + u + rng.normal(0, 1), factor_correction=a, factor_variety=b))
    return pd.DataFrame(rows)


def test_factorial_session_level_ols_terms_and_cell_means():
    df = factorial_table(agent_level=False)
    terms = factorial(df, ["factor_correction", "factor_variety"]).set_index("term")
    cell = df.groupby(["factor_correction", "factor_variety"])["value"].mean()
    inter = cell["on", "yes"] - cell["on", "no"] - cell["off", "yes"] + cell["off", "no"]
    assert terms.loc["factor_correction[on]:factor_variety[yes]", "estimate"] == pytest.approx(inter)
    assert terms.loc["factor_correction[on]", "estimate"] == pytest.approx(cell["on", "no"] - cell["off", "no"])
    ref = smf.ols("value ~ C(factor_correction) * C(factor_variety)", df).fit(cov_type="HC3")
    name = "C(factor_correction)[T.on]:C(factor_variety)[T.yes]"
    assert terms.loc["factor_correction[on]:factor_variety[yes]", "p"] == pytest.approx(
        2 * stats.t.sf(abs(ref.params[name] / ref.bse[name]), ref.df_resid))
    emm = marginal_means(df, ["factor_correction", "factor_variety"]).set_index("cell")
    assert emm.loc["factor_correction=on, factor_variety=yes", "emm"] == pytest.approx(cell["on", "yes"])
    assert emm.loc["factor_correction=on, factor_variety=yes", "n_units"] == 8


def test_factorial_agent_level_uses_mixed_model_and_cli_writes_factorial_csv(tmp_path):
    df = factorial_table(agent_level=True)
    terms = factorial(df, ["factor_correction", "factor_variety"])
    assert len(terms) == 3 and terms["model"].str.startswith("MixedLM").all() and terms["p"].between(0, 1).all()
    path = tmp_path / "metrics.csv"
    df.to_csv(path, index=False)
    assert analyze_main([str(path), "--control", "off-no", "--out", str(tmp_path / "out"), "--n-boot", "1000",
                         "--equivalence-margin", "0.5"]) == 0
    written = pd.read_csv(tmp_path / "out" / "factorial.csv")
    assert set(written.columns) >= {"term", "estimate", "ci_low", "ci_high", "p"} and len(written) == 3
    assert (tmp_path / "out" / "factorial_cells.csv").exists() and (tmp_path / "out" / "balance.csv").exists()
    eff = pd.read_csv(tmp_path / "out" / "effects.csv")
    assert (eff["equivalence_margin"] == 0.5).all() and eff["p_tost"].between(0, 1).all()


def test_balance_check_warns_on_lost_sessions_and_values():
    df = clustered_table(np.random.default_rng(5), n_sessions=20, cluster_size=3)
    lost = df["arm"].eq("treatment") & df["replicate"].ge(5)
    df.loc[lost, "value"] = np.nan  # treatment lost 15 of 20 sessions
    bal = balance(df).set_index("check")
    sess = bal.loc["completed sessions"]
    ref = stats.chisquare([20, 5])
    assert sess["p"] == pytest.approx(ref.pvalue) and bool(sess["warning"])
    vals = bal.loc["non-missing values"]
    chi2, p, _, _ = stats.chi2_contingency([[60, 15], [0, 45]], correction=False)
    assert vals["p"] == pytest.approx(p) and bool(vals["warning"])
    res = analyze(df, n_boot=50, n_perm=50, mixed=False)
    assert any(n.startswith("imbalance (completed sessions)") for n in res.notes)
    fine = balance(clustered_table(np.random.default_rng(5), n_sessions=5, cluster_size=2))
    assert not fine["warning"].any()


def test_rate_ratio_without_any_variation_is_nan_with_a_reason():
    """Identical counts in every unit (e.g. a treatment that was never delivered): NaN + why,
    not a statsmodels ValueError that stops the whole analysis."""
    got = counts.rate_ratio(np.array([1.0, 1.0]), np.array([1.0, 1.0]))
    assert np.isnan(got["rate_ratio"]) and "no variation" in got["count_note"]
