"""Findings of the fresh-user test of `trials analyze` / `trials validate` (one test per kind)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import analyze, load_table
from analysis import power as pw


def _session_table(control: list[float], treatment: list[float], metric: str = "score",
                   paired: bool = False) -> pd.DataFrame:
    rows = [dict(arm=arm, replicate=i, session=f"{arm}-{i}", agent="", metric=metric, value=v, level="session")
            for arm, vals in (("control", control), ("treatment", treatment)) for i, v in enumerate(vals)]
    return pd.DataFrame(rows)


def _no_inf_in_csvs(out) -> None:
    for path in sorted(out.glob("*.csv")):
        frame = pd.read_csv(path)
        num = frame.select_dtypes("number")
        assert not np.isinf(num.to_numpy(float)).any(), f"{path.name} has inf in {list(num.columns)}"
        text = frame.select_dtypes(exclude="number").astype(str)
        assert not text.isin(["inf", "-inf"]).any().any(), path.name


def test_power_degenerate_rows_are_nan_with_reason_and_no_csv_holds_inf(tmp_path):
    # paired, treatment identical to control: effect 0, SD of differences 0
    same = [3.0, 5.0, 4.0, 6.0]
    res = analyze(load_table(_write(tmp_path / "same.csv", _session_table(same, same))), n_boot=200, n_perm=200,
                  paired_design=True)
    row = res.power.iloc[0]
    assert row["unit"] == "pairs of replicates" and row["observed_effect"] == 0 and row["sd_diff"] == 0
    assert np.isnan(row["n_needed"]) and np.isnan(row["mde_this_run"])
    assert "observed effect 0" in row["note"] and "mde_this_run NaN" in row["note"] and "SD" in row["note"]
    out = res.write(tmp_path / "out_same")
    _no_inf_in_csvs(out)

    # unpaired, a tiny effect: no n up to DESIGN_MAX_N sessions per arm reaches 80% power
    rng = np.random.default_rng(0)
    c = rng.normal(0, 1, 10)
    t = rng.permutation(c) + 0.001  # same spread, means 0.001 apart
    res = analyze(load_table(_write(tmp_path / "tiny.csv", _session_table(list(c), list(t)))), n_boot=200,
                  n_perm=200)
    row = res.power.iloc[0]
    assert row["observed_effect"] == pytest.approx(0.001, abs=1e-9)
    assert np.isnan(row["n_needed"]) and "too small" in row["note"] and f"{pw.DESIGN_MAX_N:,}" in row["note"]
    assert np.isfinite(row["mde_this_run"])  # the MDE of this design is a number
    _no_inf_in_csvs(res.write(tmp_path / "out_tiny"))

    # constant arms that differ, zero counts in the control: the other degenerate writers
    for name, frame in {"const": _session_table([4.0] * 5, [6.0] * 5),
                        "zero": _session_table([0.0] * 6, [2.0, 4, 2, 4, 2, 4], metric="ideas_qty")}.items():
        res = analyze(load_table(_write(tmp_path / f"{name}.csv", frame)), n_boot=200, n_perm=200)
        _no_inf_in_csvs(res.write(tmp_path / f"out_{name}"))
        assert not np.isinf(res.power.select_dtypes("number").to_numpy(float)).any()


def test_power_functions_return_nan_not_inf():
    assert np.isnan(pw.replicates_needed(0.0, 1.0)) and np.isnan(pw.replicates_needed(1e-9, 1.0))
    assert np.isnan(pw.design_n_needed(0.0, 1, 1.0))
    assert pw.n_needed_note(pw.replicates_needed(1e-9, 1.0), 1e-9, 1.0, 0.0, 0.8, pw.MAX_N, "pairs").startswith(
        "n_needed NaN: observed effect 1e-09 too small: no n up to 1,000,000 pairs")
    assert pw.n_needed_note(12.0, 0.5, 1.0, 0.0, 0.8, pw.MAX_N, "pairs") == ""


def _write(path, frame: pd.DataFrame):
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("offset", [1e12, 1.7e9])
def test_large_offset_small_spread_is_real_variation(tmp_path, offset):
    """Values ~1e12 (or 1.7e9) with SD 1 and a +1000 (+5) effect: not 'no variation'; diff, CI, p and g
    equal scipy's on the centred values (x - offset is exact for values this close to offset)."""
    rng = np.random.default_rng(7)
    shift = 1000.0 if offset == 1e12 else 5.0
    c = offset + rng.normal(0, 1, 12)
    t = offset + shift + rng.normal(0, 1, 12)
    eff = analyze(load_table(_write(tmp_path / "big.csv", _session_table(list(c), list(t)))), n_boot=200,
                  n_perm=200).effects.iloc[0]
    cc, tc = c - offset, t - offset  # exact
    ref = stats.ttest_ind(tc, cc, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert "no variation" not in str(eff["notes"]) and eff["p_method"].startswith("Welch")
    assert eff["diff"] == pytest.approx(tc.mean() - cc.mean(), abs=1e-9 * offset)
    assert eff["ci_low"] == pytest.approx(ci.low, abs=1e-9 * offset)
    assert eff["ci_high"] == pytest.approx(ci.high, abs=1e-9 * offset)
    assert eff["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
    n1, n2 = len(cc), len(tc)
    sp = np.sqrt(((n1 - 1) * cc.var(ddof=1) + (n2 - 1) * tc.var(ddof=1)) / (n1 + n2 - 2))
    g = (tc.mean() - cc.mean()) / sp * (1 - 3 / (4 * (n1 + n2) - 9))
    assert eff["hedges_g"] == pytest.approx(g, rel=1e-4)
    assert np.isfinite(eff["g_ci_low"]) and eff["sd_control"] == pytest.approx(cc.std(ddof=1), rel=1e-4)


def test_float_noise_of_equal_shares_is_still_no_variation():
    """The audit's case: 3/5 and 6/10 in every session (SD ~1e-17) stays 'no variation', p = 1."""
    vals = [3 / 5 if s % 2 else 0.1 * 6 for s in range(12)]
    frame = _session_table(vals, vals[::-1], metric="positive_share")
    eff = analyze(frame, n_boot=200, n_perm=200).effects.iloc[0]
    assert eff["diff"] == 0.0 and eff["p_value"] == 1.0 and "no variation" in eff["notes"]


def test_all_pairs_empty_baseline_names_the_actual_arm():
    """--all-pairs: a pair whose baseline is the arm 'treatment' (no values) names 'treatment', not 'control'."""
    rows = [dict(arm=arm, replicate=i, session=f"{arm}-{i}", metric="m", level="session",
                 value=(np.nan if arm == "treatment" else float(i + k)))
            for k, arm in enumerate(("control", "treatment", "warm")) for i in range(4)]
    eff = analyze(pd.DataFrame(rows), comparisons="all_pairs", n_boot=200, n_perm=200).effects
    row = eff[(eff["control"] == "treatment") & (eff["treatment"] == "warm")].iloc[0]
    assert row["notes"] == "not estimable: no non-missing values in arm 'treatment'"
    row = eff[(eff["control"] == "control") & (eff["treatment"] == "treatment")].iloc[0]
    assert row["notes"] == "not estimable: no non-missing values in arm 'treatment'"


@pytest.mark.parametrize("factor, words", [
    ("arm", "'arm' is a column of the table's structure, not a factor"),
    ("replicate", "'replicate' takes 8 values within arm 'off-no'"),
    ("factor_variety,agent", "'agent' takes"),
])
def test_factors_that_are_not_factors_exit_2_naming_them(tmp_path, capsys, factor, words):
    # was: --factors arm -> KeyError: 'arm' traceback; --factors replicate accepted silently
    from analysis.cli import main
    from test_analysis_models import factorial_table

    df = factorial_table(agent_level=True)
    csv = _write(tmp_path / "f.csv", df)
    assert main([str(csv), "--control", "off-no", "--factors", factor, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert words in err and "one value per arm" in err and "factor_correction,factor_variety" in err
    assert "Traceback" not in err
    assert main([str(csv), "--control", "off-no", "--factors", "factor_correction,factor_variety",
                 "--out", str(tmp_path / "ok")]) == 0


def _two_arm(n: int, seed: int, agents: int = 1, grid: float = 1024.0) -> pd.DataFrame:
    """Session (or agent) values on a 1/grid grid: + 1e12 and x 2^k are exact in float."""
    rng = np.random.default_rng(seed)
    rows = []
    for arm, mu in (("control", 5.0), ("treatment", 5.6)):
        for i in range(n):
            u = rng.normal(0, 0.3)
            for a in range(agents):
                rows.append(dict(arm=arm, replicate=i, session=f"{arm}-{i}", agent=f"a{a}" if agents > 1 else "",
                                 metric="score", value=np.round((mu + u + rng.normal(0, 1)) * grid) / grid,
                                 level="agent" if agents > 1 else "session", scale=""))
                rows.append(dict(arm=arm, replicate=i, session=f"{arm}-{i}", agent=f"a{a}" if agents > 1 else "",
                                 metric="ideas", value=float(rng.poisson(mu * 3)),
                                 level="agent" if agents > 1 else "session", scale="count"))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("factor", [1e160, 1e300])
def test_huge_values_give_the_tables_results_scaled_without_warnings(factor):
    # was: p, CI and g NaN with "no within-arm variation (SD 0)" / "dispersion 0" and 16 numpy
    # overflow RuntimeWarnings on the console
    import warnings

    from analysis import compare

    base = _two_arm(12, 1)
    big = base.assign(value=base["value"] * factor)
    e0 = compare(base, n_boot=1000, n_perm=2000).set_index("metric")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # any overflow warning fails the test
        res = analyze(big, n_boot=1000, n_perm=2000)
    e1 = res.effects.set_index("metric")
    for m in ("score", "ideas"):
        for col in ("p_value", "hedges_g", "g_ci_low", "g_ci_high", "cliffs_delta", "rate_ratio", "rr_ci_low",
                    "p_count"):
            if np.isfinite(e0.loc[m, col]):
                assert e1.loc[m, col] == pytest.approx(e0.loc[m, col], rel=1e-9), (m, col)
        for col in ("diff", "ci_low", "ci_high", "sd_control", "sd_pooled", "mean_treatment"):
            assert e1.loc[m, col] == pytest.approx(e0.loc[m, col] * factor, rel=1e-9), (m, col)
        assert "SD 0" not in str(e1.loc[m, "notes"]) and "dispersion 0" not in str(e1.loc[m, "notes"])
    # independent: scipy's Welch test on the unscaled session values
    s = base.loc[base["metric"] == "score"]
    ref = stats.ttest_ind(s.loc[s["arm"] == "treatment", "value"], s.loc[s["arm"] == "control", "value"],
                          equal_var=False)
    assert e1.loc["score", "p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    sd = res.descriptives.set_index(["arm", "metric"]).loc[("control", "score"), "sd"]
    assert sd == pytest.approx(s.loc[s["arm"] == "control", "value"].std(ddof=1) * factor, rel=1e-9)
    assert np.isfinite(res.power["mde_this_run"]).all()


@pytest.mark.parametrize("n, agents", [(60, 1), (12, 6)])
def test_g_and_g_ci_are_the_same_for_a_table_and_the_table_plus_1e12(n, agents):
    # was: g CI NaN "the units have no spread (t statistic undefined)": the SE of 60 units (0.14)
    # was compared with 1024 eps x 1e12 = 0.23
    from analysis import compare

    base = _two_arm(n, 2, agents)
    base = base.loc[base["metric"] == "score"]
    e0 = compare(base, n_boot=1000, n_perm=2000).iloc[0]
    e1 = compare(base.assign(value=base["value"] + 1e12), n_boot=1000, n_perm=2000).iloc[0]
    assert np.isfinite(e0["g_ci_low"]) and "no spread" not in str(e1["notes"])
    for col in ("hedges_g", "g_ci_low", "g_ci_high", "p_value", "diff", "ci_low", "ci_high"):
        assert e1[col] == pytest.approx(e0[col], rel=1e-6, abs=1e-9), col
    assert e1["mean_control"] - 1e12 == pytest.approx(e0["mean_control"], abs=1e-3)


def test_headline_g_spread_test_is_on_the_units_spread_not_their_se():
    from analysis.effect_sizes import Units, headline_g

    rng = np.random.default_rng(5)
    c, t = rng.normal(0, 1, 60), rng.normal(0.5, 1, 60)
    centre = float(np.concatenate([c, t]).mean())
    sd = float(np.sqrt((c.var(ddof=1) + t.var(ddof=1)) / 2))
    ref = headline_g(Units.of_values(c - centre), Units.of_values(t - centre), False, t.mean() - c.mean(), sd)
    # the same units, measured at 1e12: the tolerance scale is the values' magnitude
    got = headline_g(Units.of_values(c - centre), Units.of_values(t - centre), False, t.mean() - c.mean(), sd,
                     scale=1e12)
    assert np.isfinite(got[1]) and got[1:3] == pytest.approx(ref[1:3], rel=1e-12)
    noise = headline_g(Units.of_values(c * 1e-14), Units.of_values(t * 1e-14), False, 1e-14, 1.0, scale=1e12)
    assert np.isnan(noise[0]) or np.isnan(noise[1])  # float noise at 1e12 is still no spread


def test_console_names_both_arms_and_says_not_estimable_and_counts_the_family(tmp_path, capsys):
    # was: rows "m  c" without the arm compared against, method "nan", "1 tests = 2 metrics x 1 comparison(s)"
    from analysis.cli import main

    rng = np.random.default_rng(3)
    rows = [dict(arm=arm, replicate=i, session=f"{arm}{i}", agent="", metric=metric, level="session",
                 value=np.nan if (arm == "c" and metric == "other") else rng.normal())
            for arm in ("a", "m", "c") for i in range(10) for metric in ("score", "other")]
    csv = _write(tmp_path / "x.csv", pd.DataFrame(rows))
    assert main([str(csv), "--all-pairs", "--control", "a", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["metric", "control", "treatment"]
    assert lines[4].split()[:3] == ["other", "a", "c"] and lines[4].endswith("not estimable")
    assert lines[5].split()[:3] == ["score", "m", "c"]
    assert "nan" not in out
    assert "family: 4 tests = 2 metrics x 3 comparison(s) - 2 not estimable (every pair of arms)" in out
    assert "note: other (c vs a): not estimable" in out and "note: other (c vs m): not estimable" in out
    big = pd.DataFrame(rows).assign(value=lambda d: d["value"] * 1e160)
    assert main([str(_write(tmp_path / "b.csv", big)), "--control", "a", "--out", str(tmp_path / "ob")]) == 0
    first = capsys.readouterr().out.splitlines()[1]
    assert "e+159" in first or "e+160" in first or "e+158" in first
    assert len(first) < 200  # not hundreds of digits


def test_a_difference_beyond_the_float_range_is_nan_with_the_overflow_reason():
    import warnings

    rng = np.random.default_rng(0)
    rows = [dict(arm=arm, replicate=i, session=f"{arm}{i}", agent="", metric="m", level="session",
                 value=sign * (1.5e308 - rng.random() * 1e306))
            for arm, sign in (("control", -1), ("treatment", 1)) for i in range(10)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = analyze(pd.DataFrame(rows), n_boot=1000, n_perm=1000)
    row = res.effects.iloc[0]
    assert np.isnan(row["diff"]) and np.isnan(row["ci_low"]) and "numeric overflow: values up to 1.5e+308" in row["notes"]
    assert row["p_value"] < 1e-10 and row["mean_control"] < -1e308  # what is in range is still computed
    assert np.isfinite(res.descriptives["mean"]).all()
