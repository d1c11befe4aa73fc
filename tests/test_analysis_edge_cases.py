"""Edge cases of `analysis.compare` / `analyze`: values that are not the ordinal scale's scores,
binary metrics, one session in an arm, partial session ids, an arm without values. Each number is
checked against scipy/statsmodels; each NaN has its reason."""

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

from analysis import analyze, compare
from analysis.cli import main
from analysis.factorial_model import factorial, marginal_means
from analysis.validate import TableError, validate_table
from test_analysis_models import factorial_table

ORDINAL_COLS = ("odds_ratio", "or_ci_low", "or_ci_high", "p_ordinal")


def judged_table(seed: int = 0, k: int = 3, sessions: int = 8) -> pd.DataFrame:
    """0-9 agent scores, each the mean of k judgements (as `trials run` writes with judge_k=k)."""
    rng = np.random.default_rng(seed)
    rows = []
    for arm, shift in (("control", 0.0), ("treatment", 1.0)):
        for s in range(sessions):
            u = rng.normal(0, 0.5)
            for a in range(3):
                v = float(np.clip(np.round(rng.normal(5 + shift + u, 1.5, k)), 0, 9).mean())
                rows.append(dict(arm=arm, replicate=s, session=f"s{s}", agent=f"{arm}{s}a{a}", metric="adh",
                                 level="agent", scale="0-9", judge_k=k, value=v))
    return pd.DataFrame(rows)


def test_judge_k_averages_are_not_ordinal_categories():
    df = judged_table(k=3)
    assert (df["value"] != df["value"].round()).any()  # 6.333, 7.667, ...
    e = compare(df, n_boot=100, n_perm=100, mixed=False).iloc[0]
    assert all(np.isnan(e[c]) for c in ORDINAL_COLS)
    assert "ordinal model not fitted: values are not integer scores" in e["notes"] and "judge_k=3" in e["notes"]
    assert np.isnan(e["rate_ratio"])  # a 0-9 scale is not a count either


def test_integer_scores_get_the_ordinal_model_of_ordered_model():
    df = judged_table(k=3)
    df["value"] = df["value"].round()
    e = compare(df, n_boot=100, n_perm=100, mixed=False).iloc[0]
    y = df["value"].to_numpy()
    x = (df["arm"] == "treatment").to_numpy(float)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = OrderedModel(pd.Series(pd.Categorical(y, ordered=True)), x, distr="logit").fit(method="bfgs", disp=False)
    assert e["odds_ratio"] == pytest.approx(math.exp(ref.params.iloc[0]), rel=1e-4)
    assert "not integer scores" not in e["notes"]


def test_probability_weighted_scores_say_so():
    df = judged_table(k=1)
    df["value"] = df["value"] + np.random.default_rng(1).uniform(-0.4, 0.4, len(df)).round(3)
    df["value"] = df["value"].clip(0, 9)
    e = compare(df, n_boot=100, n_perm=100, mixed=False).iloc[0]
    assert all(np.isnan(e[c]) for c in ORDINAL_COLS)
    assert "not integer scores" in e["notes"] and "probability-weighted" in e["notes"]


def test_scores_shifted_off_the_declared_scale_are_not_its_categories():
    df = judged_table(k=1)
    df["value"] = df["value"] + 1e12
    # a declared 0-9 scale with values 1e12 + score: the table is wrong (exit 2), nothing is computed
    with pytest.raises(TableError, match=r"outside the declared scale \(row 2: 1000000000005\.0 \(control/adh, scale 0-9\)"):
        compare(df, n_boot=100, n_perm=100, mixed=False)
    # no scale given: integers above 10 are taken as counts, not as ordinal scores
    e = compare(df.assign(scale=""), n_boot=100, n_perm=100, mixed=False).iloc[0]
    assert all(np.isnan(e[c]) for c in ORDINAL_COLS) and "ordinal" not in e["notes"]
    assert e["rate_ratio"] == pytest.approx(e["mean_treatment"] / e["mean_control"], rel=1e-15)


def test_binary_metric_gets_logistic_regression_with_cluster_se():
    # two categories: the proportional-odds model is logistic regression; its session-clustered SE
    # is statsmodels' Logit cluster SE without the (N-1)/(N-K) factor, t on sessions - 2 df
    rng = np.random.default_rng(4)
    rows = [dict(arm=arm, replicate=s, session=f"s{s}", agent=f"{arm}{s}a{a}", metric="ok", level="agent",
                 value=float(rng.random() < p))
            for arm, p in (("control", 0.35), ("treatment", 0.6)) for s in range(10) for a in range(4)]
    df = pd.DataFrame(rows)
    e = compare(df, n_boot=100, n_perm=100).iloc[0]
    x = sm.add_constant((df["arm"] == "treatment").to_numpy(float))
    groups = pd.factorize(df["arm"] + df["session"])[0]
    fit = sm.Logit(df["value"].to_numpy(), x).fit(disp=False, cov_type="cluster",
                                                   cov_kwds={"groups": groups, "use_correction": False})
    b, g = fit.params[1], 20
    se = fit.bse[1] * math.sqrt(g / (g - 1))
    assert e["odds_ratio"] == pytest.approx(math.exp(b), rel=1e-6)
    assert e["p_ordinal"] == pytest.approx(2 * stats.t.sf(abs(b / se), g - 2), rel=1e-5)
    assert e["or_ci_low"] == pytest.approx(math.exp(b - stats.t.ppf(0.975, g - 2) * se), rel=1e-5)


def test_one_session_in_an_arm_gives_no_mixed_model():
    # 1 v 30 sessions: the control mean is one session's, its session effect inseparable from the
    # arm effect (statsmodels gave p 0.002 from the treatment arm's session variance alone)
    rng = np.random.default_rng(7)
    rows = [dict(arm=arm, replicate=s, session=f"s{s}", agent=f"{arm}{s}a{a}", metric="m", level="agent",
                 value=5 + shift + u + rng.normal(0, 1))
            for arm, n, shift in (("control", 1, 0.0), ("treatment", 30, 1.0)) for s in range(n)
            for u in [rng.normal(0, 0.5)] for a in range(3)]
    df = pd.DataFrame(rows)
    e = compare(df, n_boot=100, n_perm=100).iloc[0]
    assert np.isnan(e["p_mixed"]) and np.isnan(e["mixed_diff"]) and "MixedLM not fitted: one session in an arm" in e["notes"]
    means = df.groupby(["arm", "session"])["value"].mean()
    assert e["diff"] == pytest.approx(means["treatment"].mean() - means["control"].mean(), rel=1e-12)
    assert np.isnan(e["p_value"]) and "fewer than 2 units in an arm" in e["notes"]
    assert e["p_welch"] == pytest.approx(stats.ttest_ind(df.value[df.arm == "treatment"], df.value[df.arm == "control"],
                                                         equal_var=False).pvalue, rel=1e-9)


def test_session_ids_missing_in_some_rows_of_a_metric_is_an_error(tmp_path, capsys):
    df = judged_table(k=1)
    df.loc[[3, 30], "session"] = np.nan
    with pytest.raises(TableError, match=r"metric 'adh' has an empty 'session' in row\(s\) \[5, 32\]"):
        validate_table(df, "m.csv")
    csv = tmp_path / "m.csv"
    df.to_csv(csv, index=False)
    assert main([str(csv), "--out", str(tmp_path / "out")]) == 2
    assert "empty 'session'" in capsys.readouterr().err and not (tmp_path / "out").exists()
    # no session ids at all is allowed (agent values then count as independent, with a note)
    e = compare(df.assign(session=""), n_boot=100, n_perm=100).iloc[0]
    assert "no session ids" in e["notes"]


def test_power_row_of_a_comparison_with_an_empty_arm_gives_that_reason():
    df = judged_table(k=1)
    df["missing_reason"] = np.where(df["arm"] == "treatment", "call failed", "")
    df.loc[df["arm"] == "treatment", "value"] = np.nan
    res = analyze(df, control="control", n_boot=100, n_perm=100)
    p = res.power.iloc[0]
    assert np.isnan(p["n_needed"]) and np.isnan(p["mde_this_run"])
    assert p["note"] == "not estimable: no non-missing values in arm 'treatment'"


@pytest.mark.parametrize("agent_level", [False, True])
def test_factorial_model_is_the_same_for_a_table_and_the_table_plus_1e12(agent_level):
    df = factorial_table(agent_level)
    df["value"] = np.round(df["value"] * 64) / 64  # + 1e12 holds the same numbers exactly
    big = df.assign(value=df["value"] + 1e12)
    factors = ["factor_correction", "factor_variety"]
    t0, t1 = factorial(df, factors), factorial(big, factors)
    for col in ("estimate", "se", "p"):
        assert t1[col].to_numpy() == pytest.approx(t0[col].to_numpy(), rel=1e-6), col
    m0, m1 = marginal_means(df, factors), marginal_means(big, factors)
    assert (m1["emm"] - 1e12).to_numpy() == pytest.approx(m0["emm"].to_numpy(), abs=1e-3)  # 1e12's spacing 1.2e-4
    if not agent_level:  # and the base table's fit is statsmodels' OLS with HC3
        ref = smf.ols("value ~ C(factor_correction) * C(factor_variety)", df).fit(cov_type="HC3")
        assert t1["estimate"].to_numpy() == pytest.approx(ref.params.to_numpy()[1:], rel=1e-9)
        assert t1["se"].to_numpy() == pytest.approx(ref.bse.to_numpy()[1:], rel=1e-9)


def test_binary_metric_with_one_arm_all_ones_has_no_odds_ratio():
    # quasi-complete separation: the arms share one score, the likelihood rises as beta -> -inf
    # (was: odds_ratio 2.6e-17, p_ordinal 1.000 from a Newton fit that stopped on a flat tail)
    df = pd.DataFrame(dict(arm=["control"] * 5 + ["treatment"] * 5, session=[f"s{i}" for i in range(10)],
                           metric="m", level="session", value=[1.0] * 5 + [0, 1, 1, 0, 1]))
    e = compare(df, n_boot=100, n_perm=100).iloc[0]
    assert all(np.isnan(e[c]) for c in ORDINAL_COLS) and "arms separated" in e["notes"]
    x = sm.add_constant((df["arm"] == "treatment").to_numpy(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logit = sm.Logit(df["value"].to_numpy(), x).fit(disp=False, maxiter=500)
    assert logit.params[1] < -15  # statsmodels' logistic fit runs off to -inf as well
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on the constant arm
        perm = stats.permutation_test(([0, 1, 1, 0, 1], [1.0] * 5), lambda a, b, axis: stats.ttest_ind(
            a, b, equal_var=False, axis=axis).statistic, n_resamples=np.inf).pvalue
    assert e["diff"] == pytest.approx(-0.4) and e["p_value"] == pytest.approx(perm)


def test_permutation_ci_contains_zero_whenever_the_test_at_zero_does_not_reject():
    """Tied integer scores make the permutation p jump at a shift of exactly 0: the CI used to be
    [1.4e-7, 1.5] beside p 0.197 (bisection landed on a dip). The CI is the hull of the shifts not
    rejected, with 0 checked, so it contains 0 (p equals scipy's exact studentized permutation p)."""
    from itertools import combinations

    from scipy import stats

    c, t = [-1, 0, -1, -2, 0, -1], [-1, 0, 0, 0, 0, 0]
    rows = [{"arm": a, "session": f"{a}{i}", "agent": 0, "metric": "m", "value": v}
            for a, vals in (("control", c), ("treatment", t)) for i, v in enumerate(vals)]
    e = compare(pd.DataFrame(rows), "control").iloc[0]
    pooled = np.array(c + t, float)
    obs = stats.ttest_ind(t, c, equal_var=False).statistic
    ts = [stats.ttest_ind(pooled[list(s)], np.delete(pooled, list(s)), equal_var=False).statistic
          for s in combinations(range(12), 6)]
    p_exact = np.mean(np.abs(np.nan_to_num(ts)) >= abs(obs) - 1e-9)
    assert e["p_value"] == pytest.approx(p_exact) and e["p_value"] == pytest.approx(0.19697, abs=1e-4)
    assert e["ci_low"] <= 0 <= e["ci_high"]
    assert e["ci_low"] == 0.0 and e["ci_high"] == pytest.approx(1.5, abs=1e-5)
    # and where the test at 0 rejects, the CI excludes 0
    t2 = [1, 2, 2, 1, 2, 2]
    rows2 = [{**r, "value": t2[int(r["session"][-1])]} if r["arm"] == "treatment" else r for r in rows]
    e2 = compare(pd.DataFrame(rows2), "control").iloc[0]
    assert e2["p_value"] < 0.05 and e2["ci_low"] > 0
