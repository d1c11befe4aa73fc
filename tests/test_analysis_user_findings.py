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
