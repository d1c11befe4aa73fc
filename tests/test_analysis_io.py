"""Loading and validating metric tables; TinyTroupe import reproduces the paper's headline numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import TableError, analyze, compare, load_table

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAPER = SHARED / "tinytroupe-data" / "paper_results"
needs_shared = pytest.mark.skipif(not PAPER.is_dir(), reason="../shared/tinytroupe-data not present")


def row(effects: pd.DataFrame, metric: str) -> pd.Series:
    return effects.loc[effects["metric"] == metric].iloc[0]


@needs_shared
def test_tinytroupe_2_2b_reproduces_variety_intervention_headline():
    table = load_table(PAPER / "brainstorming_and_focus_group_quantitative_experimentation_2.2b.json")
    assert any("session ids were lost" in n for n in table.notes)
    eff = compare(table, control="control", n_boot=300, n_perm=500)  # "Control" matched case-insensitively
    ideas, adherence = row(eff, "ideas_qty"), row(eff, "Persona Adherence")
    assert (ideas["control"], ideas["treatment"]) == ("Control", "Treatment")
    assert ideas["diff"] == pytest.approx(5.33, abs=0.005)
    assert (ideas["n_control"], ideas["n_treatment"]) == (24, 24)
    assert adherence["diff"] == pytest.approx(-0.60, abs=0.005)
    assert adherence["p_welch"] == pytest.approx(0.0063, abs=0.00005)
    assert adherence["p_value"] == adherence["p_welch"]  # no session ids: Welch on agent values
    assert "no session ids" in adherence["p_method"]
    assert adherence["level"] == "agent" and ideas["level"] == "session"
    # Paper's own Welch CI for ideas_qty, stored in the same JSON.
    assert (ideas["ci_low"], ideas["ci_high"]) == pytest.approx((3.6707, 6.9959), abs=1e-4)


@needs_shared
def test_tinytroupe_2_1c_reproduces_action_correction_headline():
    table = load_table(PAPER / "brainstorming_and_focus_group_quantitative_experimentation_2.1c.json")
    eff = compare(table, control="Control", n_boot=300, n_perm=500)
    assert row(eff, "Hard Persona Adherence")["diff"] == pytest.approx(0.80, abs=0.005)
    ideas = row(eff, "ideas_qty")
    assert ideas["diff"] == pytest.approx(-1.72, abs=0.005)
    assert (ideas["n_control"], ideas["n_treatment"]) == (24, 20)


@needs_shared
@pytest.mark.parametrize("path", sorted(PAPER.glob("*.json")) if PAPER.is_dir() else [], ids=lambda p: p.stem)
def test_every_paper_result_imports_and_matches_its_stored_welch(path):
    table = load_table(path)
    raw = json.loads(path.read_text())["experiments"]
    eff = compare(table, n_boot=50, n_perm=50, mixed=False)
    assert set(eff["metric"]) == set(raw["Control"]["results"])
    stored = raw["Control"].get("statistical_test_results_vs_others", {}).get("Treatment", {})
    for metric, res in stored.items():  # TinyTroupe's own Welch results for the same data
        r = row(eff, metric)
        assert r["diff"] == pytest.approx(res["mean_difference"], abs=1e-9)
        assert r["p_welch"] == pytest.approx(res["p_value"], rel=1e-6)


def tidy(**over) -> pd.DataFrame:
    df = pd.DataFrame({"arm": ["control"] * 3 + ["treatment"] * 3, "replicate": [0, 1, 2] * 2,
                       "session": [f"c{i}" for i in range(3)] + [f"t{i}" for i in range(3)],
                       "agent": [""] * 6, "metric": ["m"] * 6, "value": [1.0, 2, 3, 4, 5, 6]})
    for k, v in over.items():
        df[k] = v
    return df


def test_csv_round_trip_keeps_extra_columns_and_infers_level(tmp_path):
    path = tmp_path / "metrics.csv"
    tidy(extra=list("abcdef")).to_csv(path, index=False)
    table = load_table(path)
    assert "extra" in table.df.columns and (table.df["level"] == "session").all()
    assert table.kind == "table" and table.paired is None


@pytest.mark.parametrize("change, words", [
    (lambda df: df.drop(columns=["metric"]), ["missing column", "metric"]),
    (lambda df: df.assign(value=["1", "2", "x", "4", "5", "6"]), ["non-numeric", "'x'", "row 4"]),
    (lambda df: df.assign(value=["1", "2", "3", "inf", "5", "6"]), ["infinite", "row 5: inf", "finite"]),
    (lambda df: df.assign(value=[1.0, 2, 3, 4, 5, -np.inf]), ["infinite", "row 7: -inf", "treatment/m"]),
    (lambda df: pd.concat([df, df.iloc[[1]]]), ["share an (arm, session, agent, metric) key",
                                                 "arm='control' session='c1' agent='' metric='m'"]),
])
def test_validation_errors_name_file_field_and_fix(tmp_path, change, words):
    path = tmp_path / "bad.csv"
    change(tidy()).to_csv(path, index=False)
    with pytest.raises(TableError) as err:
        load_table(path)
    msg = str(err.value)
    assert str(path) in msg and "Fix" in msg
    for w in words:
        assert w in msg


def test_unknown_control_and_bad_json(tmp_path):
    with pytest.raises(TableError, match="control arm 'placebo' not found"):
        compare(tidy(), control="placebo")
    bad = tmp_path / "x.json"
    bad.write_text('{"experiments": {"A": {"results": {"m": [1, "two"]}}, "B": {"results": {"m": [1]}}}}')
    with pytest.raises(TableError, match="non-numeric"):
        load_table(bad)


def test_run_directory_uses_manifest_control_and_pairing(tmp_path):
    rng = np.random.default_rng(3)
    df = tidy(arm=["base"] * 3 + ["nudge"] * 3, value=rng.normal(size=6))
    df.to_parquet(tmp_path / "metrics.parquet")
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"schema_version": 1, "control": "base", "arms": ["base", "nudge"], "paired": True, "status": "complete"}))
    table = load_table(tmp_path)
    assert (table.control, table.paired, table.arms) == ("base", True, ["base", "nudge"])
    eff = compare(table, control=None, n_boot=100, n_perm=100)
    assert eff.loc[0, "control"] == "base" and eff.loc[0, "n_pairs"] == 3
    d = df["value"].to_numpy()[3:] - df["value"].to_numpy()[:3]
    assert eff.loc[0, "p_value"] == pytest.approx(stats.ttest_rel(df["value"][3:], df["value"][:3]).pvalue)
    assert eff.loc[0, "diff"] == pytest.approx(d.mean())


def test_missing_run_file_is_a_clear_error(tmp_path):
    with pytest.raises(TableError, match="no metrics.parquet or metrics.csv"):
        load_table(tmp_path)
    with pytest.raises(TableError, match="no such file"):
        load_table(tmp_path / "nope.csv")


@pytest.mark.parametrize("arm", ["null", "NA", "nan", "None", "N/A", "NULL", "#N/A"])
def test_names_that_pandas_reads_as_missing_stay_names(tmp_path, arm):
    """Was: a run with an arm named 'null' analysed as "empty 'arm' in row(s) [4, 5]" (pandas'
    default NA words); a session or metric called 'NA' was lost the same way. Values keep them."""
    df = tidy(arm=["control"] * 3 + [arm] * 3, session=["NA", "nan", "c2", "t0", "t1", "t2"],
              metric=["None"] * 6, value=[1.0, 2, 3, 4, 5, np.nan], missing_reason=[""] * 5 + ["no reply"])
    df.to_csv(tmp_path / "metrics.csv", index=False)
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"schema_version": 1, "control": "control", "arms": ["control", arm], "status": "complete"}))
    for source in (tmp_path, tmp_path / "metrics.csv"):
        table = load_table(source)
        assert table.arms == ["control", arm] and list(table.df["session"][:2]) == ["NA", "nan"]
        assert table.metrics == ["None"]
        assert table.df["value"].isna().sum() == 1  # an empty value is still missing
    from reports.load import read_analysis, read_metrics
    got = read_metrics(tmp_path)
    assert list(dict.fromkeys(got["arm"])) == ["control", arm] and got["value"].isna().sum() == 1
    # the analysis tables name arms in control/treatment: the report showed "nan" for them
    analyze(load_table(tmp_path), control="control").write(tmp_path / "analysis")
    tables = read_analysis(tmp_path / "analysis")
    assert list(tables.effects["treatment"]) == [arm] and list(tables.power["treatment"]) == [arm]
    assert arm in set(tables.descriptives["arm"]) and set(tables.effects["metric"]) == {"None"}
