"""`trials analyze` defects found by the tester (round of /tmp/tm): one test each, checked against
scipy or an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import compare, paired, tests_basic
from analysis.headline import unpaired


def constant_arms(n_c: int, n_t: int, paired_ids: bool = False) -> pd.DataFrame:
    return pd.DataFrame([dict(arm=a, replicate=s, session=f"{a}{s}", metric="m", level="session", value=v)
                         for a, v, n in (("control", 7.0, n_c), ("treatment", 8.0, n_t)) for s in range(n)])


def test_constant_arms_12_v_12_get_the_exact_p_not_the_monte_carlo_floor():
    eff = compare(constant_arms(12, 12), n_boot=100).iloc[0]
    # was 1/10001 (the floor of 10,000 random splits) labelled "exact"
    assert eff["p_value"] == pytest.approx(2 / math.comb(24, 12), rel=1e-9)
    # two values pooled: the permutation test is Fisher's exact test of arm x value
    assert eff["p_value"] == pytest.approx(stats.fisher_exact([[12, 0], [0, 12]])[1], rel=1e-9)
    assert eff["p_permutation"] == pytest.approx(eff["p_value"], rel=1e-12)
    assert "exact permutation" in eff["p_method"]


@pytest.mark.parametrize("n_c,n_t", [(4, 9), (7, 5), (6, 6)])
def test_constant_arms_exact_p_matches_scipy_permutation_test(n_c, n_t):
    c, t = np.full(n_c, 7.0), np.full(n_t, 8.0)
    # two-sided as in tests_basic.permutation_test: |diff*| >= |diff| (scipy's default doubles a tail)
    ref = stats.permutation_test((t, c), lambda x, y, axis: abs(np.mean(x, axis=axis) - np.mean(y, axis=axis)),
                                 permutation_type="independent", n_resamples=np.inf, vectorized=True,
                                 alternative="greater").pvalue
    assert tests_basic.no_variation(c, t).p == pytest.approx(ref, rel=1e-9)


def test_p_welch_is_nan_with_its_reason_when_both_arms_have_sd_0():
    eff = compare(constant_arms(12, 12), n_boot=100).iloc[0]
    assert np.isnan(eff["p_welch"])  # was 0.0001: Welch's t is 1/0 here
    assert "p_welch NaN: Welch t undefined: both arms have SD 0" in eff["notes"]


def test_constant_paired_differences_get_the_exact_sign_flip_p_beyond_enumeration():
    d = np.ones(20)  # 20 pairs: above the sign-flip enumeration limit (14)
    est = paired.paired_t(d)
    assert est.p == pytest.approx(2 / 2**20, rel=1e-12) and "exact" in est.method
    eff = compare(constant_arms(20, 20), paired_design=True, n_boot=100).iloc[0]
    assert eff["p_value"] == pytest.approx(2 / 2**20) and eff["p_paired_perm"] == pytest.approx(2 / 2**20)


def test_a_monte_carlo_permutation_p_says_so_and_its_floor():
    rng = np.random.default_rng(3)
    c, t = rng.normal(0, 1, 9), rng.normal(0.3, 1, 14)  # C(23, 9) = 817,190 splits: Monte Carlo
    head = unpaired(c, t, 0.05, 2000, np.random.default_rng(0))
    assert "Monte Carlo, 2,000 random splits; p >= 1/2,001" in head.est.method
    assert "exact" not in head.est.method
    small = unpaired(c[:5], t[:7], 0.05, 2000, np.random.default_rng(0))  # C(12, 5) = 792: enumerated
    assert small.est.method.startswith("studentized permutation test (exact;")


def test_g_on_names_the_welch_t_the_code_inverts():
    rng = np.random.default_rng(1)
    df = pd.DataFrame([dict(arm=a, replicate=s, session=f"{a}{s}", metric="m", level="session",
                            value=float(rng.normal(mu, 1 + s % 3)))
                       for a, mu in (("control", 0.0), ("treatment", 0.5)) for s in range(12)])
    eff = compare(df, n_boot=100, n_perm=200).iloc[0]
    assert "Welch t of the sessions" in eff["g_on"] or "Welch t of the values" in eff["g_on"]
    assert "pooled t" not in eff["g_on"]


def scored_table(**overrides) -> pd.DataFrame:
    """Agent-level 0-9 scores, 6 sessions per arm, 3 agents each; `overrides` replace columns."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame([dict(arm=a, replicate=s, session=f"s{s}", agent=f"a{k}", metric="score", level="agent",
                            scale="0-9", value=float(rng.integers(2, 8)))
                       for a in ("control", "treatment") for s in range(6) for k in range(3)])
    return df.assign(**overrides)


def analyze_csv(tmp_path, df: pd.DataFrame, capsys) -> tuple[int, str]:
    from analysis.cli import main

    path = tmp_path / "m.csv"
    df.to_csv(path, index=False)
    code = main([str(path), "--out", str(tmp_path / "out"), "--n-boot", "1000"])
    return code, capsys.readouterr().err


def test_a_value_outside_its_declared_scale_is_a_table_error(tmp_path, capsys):
    df = scored_table()
    df.loc[4, "value"] = 15.0  # was: entered means and diff, only the ordinal model mentioned it
    code, err = analyze_csv(tmp_path, df, capsys)
    assert code == 2 and "m.csv" in err and "column 'value'" in err
    assert "row 6: 15.0 (control/score, scale 0-9)" in err and "Fix:" in err


def test_an_unknown_scale_is_a_table_error(tmp_path, capsys):
    code, err = analyze_csv(tmp_path, scored_table(scale="banana"), capsys)
    assert code == 2 and "m.csv" in err and "column 'scale'" in err and "'banana'" in err and "Fix:" in err
    # the scales the project writes stay accepted
    for scale in ("0-9", "1-7", "count", "real", "0-100", ""):
        assert analyze_csv(tmp_path, scored_table(scale=scale), capsys)[0] == 0


def test_several_values_in_one_session_of_a_session_level_metric_is_a_table_error(tmp_path, capsys):
    code, err = analyze_csv(tmp_path, scored_table(level="session"), capsys)  # 3 agents' values per session
    assert code == 2 and "m.csv" in err and "level 'session'" in err and "session 's0' of arm 'control'" in err
    assert "row(s) [2, 3, 4]" in err and "Fix:" in err
    # one value per session (repeated on every agent row) is not averaged into anything new: accepted
    same = scored_table(level="session")
    same["value"] = same.groupby(["arm", "session"])["value"].transform("first")
    assert analyze_csv(tmp_path, same, capsys)[0] == 0


def test_mixed_levels_within_one_metric_is_a_table_error(tmp_path, capsys):
    df = scored_table()
    df.loc[0, "level"] = "session"
    code, err = analyze_csv(tmp_path, df, capsys)
    assert code == 2 and "metric 'score'" in err and "column 'level'" in err
    assert "'session' in row(s) [2]" in err and "Fix:" in err


def replicated_table() -> pd.DataFrame:
    """Session values, 10 replicates per arm; replicate r of both arms shares a large common effect."""
    rng = np.random.default_rng(4)
    common = rng.normal(0, 2, 10)
    return pd.DataFrame([dict(arm=a, replicate=r, session=f"{a}-r{r}", metric="m", level="session",
                              value=float(common[r] + shift + rng.normal(0, 0.5)))
                         for a, shift in (("control", 0.0), ("treatment", 0.6)) for r in range(10)])


def test_a_runs_own_metrics_file_is_analysed_with_the_runs_design(tmp_path):
    import json

    from analysis import load_table
    from analysis.result import analyze

    df = replicated_table()
    df.to_csv(tmp_path / "metrics.csv", index=False)
    (tmp_path / "manifest.json").write_text(json.dumps({"paired": True, "control": "control"}))
    as_file = analyze(load_table(tmp_path / "metrics.csv"), n_boot=1000).effects.iloc[0]
    as_run = analyze(load_table(tmp_path), n_boot=1000).effects.iloc[0]
    assert as_file["p_value"] == as_run["p_value"]  # was Welch on the file, paired t on the directory
    d = df.loc[df.arm == "treatment", "value"].to_numpy() - df.loc[df.arm == "control", "value"].to_numpy()
    assert as_file["p_value"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue, rel=1e-10)
    assert "paired t-test" in as_file["p_method"]
    assert any("design from" in n and "manifest.json: paired" in n for n in load_table(tmp_path / "metrics.csv").notes)
    # the user's choice still wins
    unpaired_row = analyze(load_table(tmp_path / "metrics.csv", paired=False), n_boot=1000).effects.iloc[0]
    assert "paired t-test" not in unpaired_row["p_method"]


def test_an_unpaired_analysis_of_a_pairable_table_says_so(tmp_path, capsys):
    from analysis.comparison import PAIRING_HINT

    code, _ = analyze_csv(tmp_path, replicated_table(), capsys)  # a table outside a run dir: no manifest
    assert code == 0
    eff = pd.read_csv(tmp_path / "out" / "effects.csv").iloc[0]
    assert "Welch" in eff["p_method"] and PAIRING_HINT in eff["notes"]
    # chosen either way: no hint
    assert PAIRING_HINT not in str(compare(replicated_table(), paired_design=False, n_boot=100).iloc[0]["notes"])
    # replicates that do not recur across arms cannot pair: no hint
    lone = replicated_table()
    lone.loc[lone.arm == "treatment", "replicate"] += 100
    assert PAIRING_HINT not in str(compare(lone, n_boot=100).iloc[0]["notes"])


def test_models_that_do_not_apply_say_why_their_columns_are_nan():
    rng = np.random.default_rng(5)
    df = pd.DataFrame([dict(arm=a, replicate=s, session=f"{a}{s}", metric="positive_share", level="session",
                            scale="real", value=float(rng.uniform(0, 1)))
                       for a in ("control", "treatment") for s in range(10)])
    eff = compare(df, paired_design=False, n_boot=100, n_perm=200).iloc[0]
    for col in ("odds_ratio", "p_ordinal", "rate_ratio", "p_count", "icc", "p_mixed", "p_cluster_boot"):
        assert np.isnan(eff[col])  # was NaN with empty notes
    assert "odds_ratio/p_ordinal and rate_ratio/p_count NaN: scale 'real' is neither" in eff["notes"]
    assert "icc, p_mixed and p_cluster_boot NaN: one value per session" in eff["notes"]
    # no scale, non-integer values: the same columns, the reason names the values
    eff = compare(df.assign(scale=""), paired_design=False, n_boot=100, n_perm=200).iloc[0]
    assert "no scale given and the values are neither integer scores" in eff["notes"]


def test_power_mde_icc_high_nan_says_why():
    from analysis.result import analyze

    power = analyze(replicated_table(), paired_design=True, n_boot=1000).power.iloc[0]
    assert np.isnan(power["mde_icc_high"]) and "mde_icc_high NaN: paired design" in power["note"]
    power = analyze(replicated_table(), paired_design=False, n_boot=1000).power.iloc[0]
    assert np.isnan(power["mde_icc_high"]) and "mde_icc_high NaN: one value per unit" in power["note"]


def test_validation_keeps_the_side_with_answers_and_refuses_an_empty_human_column(tmp_path):
    from analysis.validation import ValidationInputError, compare_answers, read_human

    sim = [1, 2, 3, 5, 4, 4, 2] * 4 + [3, 3, 1]  # 31 answers
    row = compare_answers(sim, [], scale=(1, 5))
    assert row["n_sim"] == 31 and row["mean_sim"] == pytest.approx(np.mean(sim))  # was NaN
    assert row["sd_sim"] == pytest.approx(np.std(sim, ddof=1))
    assert np.isnan(row["mean_human"]) and "no human answers (n_human = 0)" in row["notes"]
    path = tmp_path / "h.csv"
    path.write_text('Vote\n""\n""\n')
    with pytest.raises(ValidationInputError, match=r"h.csv: column 'Vote' has no answers \(all 2 row\(s\) empty\)"):
        read_human(path, "Vote")
