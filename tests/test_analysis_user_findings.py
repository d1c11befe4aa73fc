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
