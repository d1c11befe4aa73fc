"""Validation against human data: analysis.validation checked against scipy/statsmodels, the
human-file errors, `trials validate`, and the gazpacho_validation preset end to end (scripted)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind

from analysis.validation import ValidationInputError, compare_answers, read_human, validate_answers
from trials.run.validation import main as validate_main  # `trials validate`
from runner_support import run

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EMPIRICAL = SHARED / "tinytroupe-data" / "empirical"
GAZPACHO = EMPIRICAL / "bottled_gazpacho_market_research_raw.csv"
STORY = EMPIRICAL / "ai_storytelling_device_market_research_raw.csv"
needs_shared = pytest.mark.skipif(not GAZPACHO.is_file(), reason="../shared/tinytroupe-data is not beside the checkout")


def _answers(seed: int, n: int, p: list[float]) -> np.ndarray:
    return np.random.default_rng(seed).choice([1, 2, 3, 4, 5], size=n, p=p).astype(float)


def test_compare_answers_matches_scipy_and_statsmodels():
    x = _answers(1, 40, [0.05, 0.2, 0.4, 0.3, 0.05])
    y = _answers(2, 50, [0.25, 0.15, 0.2, 0.2, 0.2])
    r = compare_answers(x, y, scale=(1, 5), margin=0.5, n_perm=999)
    welch = stats.ttest_ind(x, y, equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert r["diff"] == pytest.approx(x.mean() - y.mean())
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert r["p_welch"] == pytest.approx(welch.pvalue)
    assert r["sd_ratio"] == pytest.approx(x.std(ddof=1) / y.std(ddof=1))
    ks = stats.ks_2samp(x, y)
    assert (r["ks_stat"], r["ks_p"]) == pytest.approx((ks.statistic, ks.pvalue))
    assert r["wasserstein"] == pytest.approx(stats.wasserstein_distance(x, y))
    table = np.array([[np.sum(x == c) for c in range(1, 6)], [np.sum(y == c) for c in range(1, 6)]])
    chi = stats.chi2_contingency(table, correction=False)
    assert (r["chi2"], r["chi2_p"], r["chi2_df"]) == pytest.approx((chi.statistic, chi.pvalue, chi.dof))
    assert 0 < r["chi2_p_perm"] <= 1
    assert r["p_tost"] == pytest.approx(ttost_ind(x, y, -0.5, 0.5, usevar="unequal")[0])
    assert r["extreme_sim"] == pytest.approx(np.mean((x == 1) | (x == 5)))
    assert r["extreme_human"] == pytest.approx(np.mean((y == 1) | (y == 5)))
    assert r["verdict"] in ("different", "not shown equivalent")


def test_verdicts_follow_tost_and_the_welch_ci():
    same = np.tile([2.0, 3.0, 3.0, 4.0], 100)
    assert compare_answers(same, same[::-1], n_perm=99)["verdict"] == "equivalent within 0.5 on the 1-5 scale"
    low, high = np.tile([1.0, 2.0], 50), np.tile([4.0, 5.0], 50)
    assert compare_answers(low, high, n_perm=99)["verdict"] == "different"
    assert compare_answers([2.0, 4.0, 3.0], [3.0, 1.0, 5.0], n_perm=99)["verdict"] == "not shown equivalent"


def test_degenerate_comparisons_are_nan_with_a_reason():
    one = compare_answers([3.0], [2.0, 4.0, 3.0], n_perm=99)
    assert math.isnan(one["ci_low"]) and math.isnan(one["p_tost"]) and "Welch CI needs >= 2" in one["notes"]
    flat = compare_answers([3.0, 3.0, 3.0], [3.0, 3.0], n_perm=99)
    assert math.isnan(flat["sd_ratio"]) and "no variation" in flat["notes"]
    assert math.isnan(flat["chi2"]) and "categories" in flat["notes"]
    empty = compare_answers([], [1.0, 2.0], n_perm=99)
    assert empty["n_sim"] == 0 and empty["verdict"] == "not compared" and math.isnan(empty["mean_sim"])


def test_small_expected_counts_are_flagged():
    r = compare_answers([1.0, 2.0, 5.0, 5.0], [1.0, 1.0, 3.0, 4.0], n_perm=999)
    assert r["chi2_min_expected"] < 5 and "chi2_p_perm" in r["notes"]


def test_subgroups_and_one_sided_groups():
    sim = pd.DataFrame({"answer": [1.0, 2.0, 3.0, 4.0, 5.0, 3.0], "group": ["a", "a", "a", "b", "b", "b"]})
    hum = pd.DataFrame({"answer": [2.0, 2.0, 3.0, 4.0, 1.0], "group": ["a", "a", "c", "b", "b"]})
    t = validate_answers(sim, hum, by="group", n_perm=99)
    assert list(t["group"]) == ["all", "a", "b", "c"]
    assert t.set_index("group").loc["a", "n_sim"] == 3 and t.set_index("group").loc["c", "n_sim"] == 0
    assert t.set_index("group").loc["c", "verdict"] == "not compared"


def test_human_file_errors_name_file_column_and_fix(tmp_path):
    bad = tmp_path / "h.csv"
    bad.write_text("Vote,Gender\n3,F\nseven,M\n")
    with pytest.raises(ValidationInputError, match=r"h.csv: column 'Vote' row 3 holds 'seven'"):
        read_human(bad, "Vote")
    with pytest.raises(ValidationInputError, match=r"no column 'Answer' .*'Vote', 'Gender'"):
        read_human(bad, "Answer")
    bad.write_text("Vote\n3\n9\n")
    with pytest.raises(ValidationInputError, match="outside the scale 1-5"):
        read_human(bad, "Vote", scale=(1, 5))
    with pytest.raises(ValidationInputError, match="no such file"):
        read_human(tmp_path / "nope.csv", "Vote")


@needs_shared
def test_storytelling_rankings_go_through_the_same_path(tmp_path):
    human = read_human(STORY, "Vote", answer="top_choice", by="Gender Identity")
    raw = pd.read_csv(STORY)
    assert len(human) == len(raw) == 50
    assert human["answer"].value_counts().to_dict() == raw["Vote"].str[0].value_counts().to_dict()
    sim = pd.DataFrame({"answer": list("AABCDEAC")})
    row = validate_answers(sim, human, categories=list("ABCDE"), scale=None, n_perm=999).iloc[0]
    counts = np.array([[list(sim["answer"]).count(c) for c in "ABCDE"],
                       [list(human["answer"]).count(c) for c in "ABCDE"]])
    assert row["chi2"] == pytest.approx(stats.chi2_contingency(counts, correction=False).statistic)
    assert math.isnan(row["mean_sim"]) and "categorical" in row["notes"]


@needs_shared
def test_gazpacho_validation_preset_end_to_end(tmp_path, capsys):
    root = tmp_path / "run"
    code = run(root, "experiment=gazpacho_validation", "run.analyze=true", "run.report=true",
               f"experiment.validation.human={GAZPACHO}", "experiment.validation.by='Gender Identity=gender'")
    assert code == 0
    table = pd.read_csv(root / "analysis" / "validation.csv")
    overall = table[table["group"] == "all"].iloc[0]
    votes = pd.read_parquet(root / "metrics.parquet").query("metric == 'vote'")
    assert len(votes) == 50  # one vote row per simulated respondent, answered or missing with a reason
    # a persona whose only action was DONE gave no answer: no vote (issue #11), not a guessed one
    assert overall["n_human"] == 50 and overall["n_sim"] == votes["value"].notna().sum() > 0
    assert (votes.loc[votes["value"].isna(), "missing_reason"] == "no answer").all()
    assert overall["mean_human"] == pytest.approx(2.86)
    for col in ("ks_stat", "ks_p", "wasserstein", "chi2", "chi2_p_perm", "sd_ratio", "p_tost", "ci_low", "ci_high"):
        assert math.isfinite(overall[col]), col
    votes = pd.read_parquet(root / "metrics.parquet").query("metric == 'vote'")["value"]
    assert overall["mean_sim"] == pytest.approx(votes.mean())
    assert set(table["group"]) == {"all", "Female", "Male", "Non-binary"}
    answers = pd.read_csv(root / "analysis" / "validation_answers.csv")
    human_all = answers.query("side == 'human' and group == 'all'")
    assert human_all["count"].sum() == 50
    report = (root / "report.md").read_text()
    assert "## Validity" in report and "figures/validation.png" in report and (root / "figures" / "validation.png").is_file()
    assert overall["verdict"] in report
    assert json.loads((root / "analysis" / "validation.json").read_text())["human_file"] == GAZPACHO.name


def test_preset_without_human_data_runs_and_says_how_to_add_it(tmp_path, capsys):
    assert run(tmp_path / "r", "experiment=gazpacho_validation", "experiment.group_size=3",
               "experiment.population.n=3") == 0
    assert "experiment.validation.human is not set" in capsys.readouterr().out
    assert not (tmp_path / "r" / "analysis" / "validation.csv").exists()


def test_bad_validation_config_is_a_config_error_before_any_call(tmp_path, capsys):
    assert run(tmp_path / "r", "experiment=gazpacho_validation", "experiment.validation.human=/no/such.csv") == 2
    assert "experiment.validation.human='/no/such.csv': no such file" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@needs_shared
def test_trials_validate_cli(tmp_path, capsys):
    root = tmp_path / "run"
    assert run(root, "experiment=gazpacho_validation", "experiment.group_size=20") == 0
    capsys.readouterr()
    assert validate_main([str(root), "--human", str(GAZPACHO), "--column", "Vote", "--metric", "vote",
                          "--by", "Political Affiliation=political_affiliation", "--margin", "0.3"]) == 0
    out = capsys.readouterr().out
    answered = pd.read_parquet(root / "metrics.parquet").query("metric == 'vote'")["value"].notna().sum()
    assert f"control / all: n_sim={answered} n_human=50" in out and "mean_human=2.86" in out
    table = pd.read_csv(root / "analysis" / "validation.csv")
    assert set(table["group"]) == {"all", "Democrat", "Independent / other", "Republican"}
    assert (table["margin"] == 0.3).all()
    # bad input: exit 2 with a message naming the file / column, no traceback
    # (--force: the first call wrote validation.csv, which `trials validate` replaces only when asked)
    assert validate_main([str(root), "--human", str(GAZPACHO), "--column", "Score", "--metric", "vote", "--force"]) == 2
    assert "no column 'Score'" in capsys.readouterr().err
    assert validate_main([str(root), "--human", str(GAZPACHO), "--column", "Vote", "--metric", "ideas", "--force"]) == 2
    assert "no metric 'ideas'" in capsys.readouterr().err
    assert (pd.read_csv(root / "analysis" / "validation.csv")["margin"] == 0.3).all()  # a failed call replaced nothing
    assert validate_main([str(tmp_path), "--human", str(GAZPACHO), "--column", "Vote", "--metric", "vote"]) == 2
    assert "no metrics.parquet" in capsys.readouterr().err


@needs_shared
def test_storytelling_file_through_trials_validate(tmp_path, capsys):
    # no shipped scenario asks for a top choice yet, so the run directory is written by hand: a
    # categorical metric stores the 1-based index into --categories (A=1 ... E=5)
    root = tmp_path / "run"
    root.mkdir()
    codes = [1, 1, 3, 2, 5, 4, 3, 1, 2, 3]
    pd.DataFrame({"experiment": "x", "arm": "control", "replicate": 0, "session": "control-r0",
                  "agent": [f"a{i}" for i in range(10)], "metric": "choice", "value": codes}).to_parquet(
        root / "metrics.parquet")
    assert validate_main([str(root), "--human", str(STORY), "--column", "Vote", "--metric", "choice",
                          "--answer", "top_choice", "--categories", "A,B,C,D,E"]) == 0
    row = pd.read_csv(root / "analysis" / "validation.csv").iloc[0]
    assert row["n_sim"] == 10 and row["n_human"] == 50 and math.isfinite(row["chi2_p_perm"])
    answers = pd.read_csv(root / "analysis" / "validation_answers.csv")
    sim = answers.query("side == 'sim'").set_index("answer")["count"].to_dict()
    assert sim == {"A": 3, "B": 2, "C": 3, "D": 1, "E": 1}


def test_categorical_side_without_answers_in_categories_is_nan_with_reason_not_a_traceback():
    # every simulated answer is outside A,B: the chi-square table has an empty row (was: scipy ValueError)
    row = compare_answers(["C", "C", "C"], ["A", "B", "A"], categories=["A", "B"], n_perm=99)
    assert math.isnan(row["chi2"]) and math.isnan(row["chi2_p_perm"]) and row["verdict"] == "not compared"
    assert "no simulated answer falls in the categories A, B" in row["notes"]
    assert "3 simulated answer(s) outside the categories (e.g. 'C')" in row["notes"]
    # a category unused on both sides is dropped: the statistic equals scipy's on the used ones
    row = compare_answers(["A", "A", "B", "C"], ["A", "B", "B"], categories=["A", "B", "D"], n_perm=99)
    ref = stats.chi2_contingency(np.array([[2, 1], [1, 2]]), correction=False)
    assert row["chi2"] == pytest.approx(ref.statistic) and row["chi2_df"] == 1


def test_out_of_scale_message_shows_plain_numbers(tmp_path):
    path = tmp_path / "h.csv"
    pd.DataFrame({"Vote": [1, 2, 4]}).to_csv(path, index=False)
    with pytest.raises(ValidationInputError) as err:
        read_human(path, "Vote", scale=(1, 3))
    assert "holds 4, outside the scale 1-3" in str(err.value) and "np." not in str(err.value)
