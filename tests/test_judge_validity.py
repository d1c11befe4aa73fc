"""Measuring the judge: Krippendorff's alpha over judge_k repeats (judge_reliability.csv and the
report's warning), judge_agreement, AUC/accuracy with CIs, `trials judge-check` and
`trials validate-persona` on the scripted backend (and once on the local model)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from analysis.judge_reliability import (accuracy_with_ci, auc_with_ci, judge_agreement, judge_reliability,
                                        ordinal_alpha, samples_from_transcript)
from runner_support import run
from trials.cli import main as trials_main
from trials.judging.check import judge_labelled_set, labelled_set
from trials.judging.interview import parse_questions, validate_persona
from trials.persona import load_library

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TT_AGENT = SHARED / "tinytroupe-data" / "agents" / "Lisa.agent.json"
N = math.nan


def test_ordinal_alpha_reproduces_krippendorffs_worked_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the 4 coders x 12 units
    # example with missing values: ordinal alpha = 0.815
    m = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
                  [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N]])
    alpha, why = ordinal_alpha(m)
    assert round(alpha, 3) == 0.815 and why == ""


def test_alpha_undefined_cases_are_nan_with_a_reason():
    assert "no variation" in ordinal_alpha(np.array([[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]))[1]
    assert math.isnan(ordinal_alpha(np.array([[4.0, N], [5.0, N]]))[0])


def test_judge_reliability_table_from_samples():
    rows = [("p", "i1", 0, 2), ("p", "i1", 1, 6), ("p", "i2", 0, 7), ("p", "i2", 1, 7), ("p", "i3", 0, 1),
            ("p", "i3", 1, N), ("q", "i1", 0, 3), ("q", "i1", 1, 3), ("q", "i2", 0, 3), ("q", "i2", 1, 3)]
    t = judge_reliability(pd.DataFrame(rows, columns=["proposition", "item", "repeat", "score"])).set_index("proposition")
    assert t.loc["p", "n_items"] == 3 and t.loc["p", "k"] == 2 and t.loc["p", "n_scores"] == 5
    assert t.loc["p", "share_disagree_3plus"] == pytest.approx(0.5)  # i1 differs by 4, i2 by 0; i3 has one score
    assert t.loc["p", "alpha_ordinal"] == pytest.approx(ordinal_alpha(np.array([[2, 7, 1], [6, 7, N]], float))[0])
    assert math.isnan(t.loc["q", "alpha_ordinal"]) and "no variation" in t.loc["q", "notes"]


def test_run_with_judge_k_writes_judge_reliability_and_the_report_warns(tmp_path):
    root = tmp_path / "run"
    assert run(root, "experiment=market_research", "experiment.judge_k=3", "run.analyze=true", "run.report=true",
               "run.replicates=1") == 0
    rel = pd.read_csv(root / "analysis" / "judge_reliability.csv")
    assert set(rel["proposition"]) == {"persona_adherence", "self_consistency", "fluency"}
    assert (rel["k"] == 3).all()
    samples = samples_from_transcript(root / "transcript.jsonl")
    assert (rel.set_index("proposition")["n_scores"] == samples.groupby("proposition")["score"].count()).all()
    assert rel["alpha_ordinal"].notna().all()
    report = (root / "report.md").read_text()
    assert "Krippendorff's alpha (ordinal)" in report
    # the scripted judge answers at random: its alpha is far below 0.667, so the report must warn
    low = rel[rel["alpha_ordinal"] < 0.667]
    assert len(low) and "Unreliable judge" in report and str(low["proposition"].iloc[0]) in report
    # `trials analyze <run dir>` writes it too
    (root / "analysis" / "judge_reliability.csv").unlink()
    from analysis.cli import main as analyze_main

    assert analyze_main([str(root), "--n-boot", "1000"]) == 0
    assert pd.read_csv(root / "analysis" / "judge_reliability.csv").equals(rel)


def test_no_reliability_file_when_judge_k_is_1(tmp_path):
    root = tmp_path / "run"
    assert run(root, "experiment=market_research", "run.analyze=true", "run.replicates=1") == 0
    assert not (root / "analysis" / "judge_reliability.csv").exists()


def test_judge_agreement_weighted_kappa():
    a, b = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 5, N], [0, 2, 2, 4, 4, 5, 5, 9, 8, 8, 6, 3]
    r = judge_agreement(a, b)
    x, y = np.array(a[:-1]), np.array(b[:-1])
    # quadratic-weighted kappa by its definition (Cohen 1968): 1 - sum w*O / sum w*E
    obs = np.zeros((10, 10))
    np.add.at(obs, (x.astype(int), y.astype(int)), 1)
    exp = np.outer(obs.sum(1), obs.sum(0)) / obs.sum()
    w = np.subtract.outer(np.arange(10), np.arange(10)) ** 2
    assert r["n"] == 11 and r["kappa_weighted"] == pytest.approx(1 - (w * obs).sum() / (w * exp).sum())
    assert r["exact_agreement"] == pytest.approx(np.mean(x == y))
    assert judge_agreement([3], [3])["notes"] == "fewer than 2 items scored by both judges"
    with pytest.raises(ValueError, match="same items"):
        judge_agreement([1, 2], [1])


def test_auc_and_accuracy_match_scipy_and_statsmodels():
    rng = np.random.default_rng(4)
    y = np.r_[np.ones(20), np.zeros(25)].astype(bool)
    s = np.where(y, rng.integers(3, 10, 45), rng.integers(0, 8, 45)).astype(float)
    s[3] = N
    r = auc_with_ci(s, y, n_boot=500)
    keep = ~np.isnan(s)
    u = stats.mannwhitneyu(s[keep & y], s[keep & ~y]).statistic
    assert r["auc"] == pytest.approx(u / ((keep & y).sum() * (keep & ~y).sum()))
    assert r["n_missing"] == 1 and r["auc_ci_low"] < r["auc"] < r["auc_ci_high"]
    acc = accuracy_with_ci([v >= 5 for v in s[keep]], y[keep])
    hits = int(np.sum((s[keep] >= 5) == y[keep]))
    assert acc["accuracy"] == pytest.approx(hits / keep.sum())
    assert (acc["acc_ci_low"], acc["acc_ci_high"]) == pytest.approx(proportion_confint(hits, keep.sum(), method="wilson"))
    assert math.isnan(auc_with_ci([1, 2], [True, True])["auc"])


def test_labelled_set_is_shipped_balanced_and_varied():
    items = labelled_set()
    assert len(items) >= 40 and len({i["id"] for i in items}) == len(items)
    assert sum(i["fits"] for i in items) == len(items) / 2
    assert {i["subtlety"] for i in items} == {"obvious", "subtle"}
    assert len({i["persona"]["name"] for i in items}) >= 6


def test_judge_check_measures_a_judge_that_knows_the_labels(scripted_llm):
    items = labelled_set()
    # a scripted judge that scores the in-character actions 8 and the others 1 must get AUC 1
    rules = [{"match": re.escape(i["action"][:60]), "reply": f"Score: {8 if i['fits'] else 1}\nReason: r"} for i in items]
    table = judge_labelled_set(scripted_llm(rules=rules), items)
    assert auc_with_ci(table["score"], table["fits"], n_boot=200)["auc"] == 1.0
    assert accuracy_with_ci(table["predicted"], table["fits"])["accuracy"] == 1.0
    flipped = judge_labelled_set(scripted_llm(rules=[{**r, "reply": r["reply"].replace("8", "0")} for r in rules]), items)
    assert auc_with_ci(flipped["score"], flipped["fits"], n_boot=200)["auc"] == 0.0


def test_judge_check_cli_on_scripted(tmp_path, capsys):
    out = tmp_path / "jc"
    assert trials_main(["judge-check", "llm=scripted", "cache.mode=off", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "judge_check.json").read_text())
    table = pd.read_csv(out / "judge_check.csv")
    assert len(table) == summary["n_items"] == len(labelled_set())
    assert f"AUC {summary['all']['auc']:.2f} [" in text and "accuracy at score >= 5" in text
    assert summary["all"]["auc"] == pytest.approx(auc_with_ci(table["score"], table["fits"])["auc"])
    calls = pd.read_parquet(out / "llm_calls.parquet")
    assert len(calls) >= len(table) and set(calls["purpose"]) == {"judge"}
    assert trials_main(["judge-check", "llm=nope"]) == 2
    assert "llm=nope: no llm/nope.yaml" in capsys.readouterr().err  # one line (trials/run/compose.py)
    assert trials_main(["judge-check", "llm=scripted", "--threshold", "12"]) == 2


def test_parse_questions():
    assert parse_questions("1. Why do you farm?\n- What do you eat?\nnot a question\nQ3: Who are you?") == \
        ["Why do you farm?", "What do you eat?", "Who are you?"]


def test_validate_persona_generated_and_standard_questions(scripted_llm):
    persona = load_library("general")[0]
    rules = [{"match": "Write 3 short interview questions", "reply": "1. What do you do at work?\n2. Do you like fads?"},
             {"match": "Claim: In this interview", "reply": "Score: 7\nReason: matches mostly"}]
    interview = validate_persona(persona, "a practical person", llm=scripted_llm(rules=rules), n_questions=3)
    assert [q.source for q in interview.questions] == ["generated", "generated", "standard"]
    assert interview.questions[0].question == "What do you do at work?" and all(q.answer for q in interview.questions)
    assert interview.score == 7 and interview.justification == "matches mostly"
    with pytest.raises(ValueError, match="expectations are empty"):
        validate_persona(persona, " ", llm=scripted_llm())


@pytest.mark.skipif(not TT_AGENT.is_file(), reason="../shared/tinytroupe-data is not beside the checkout")
def test_validate_persona_cli_on_a_tinytroupe_file(tmp_path, capsys):
    out = tmp_path / "lisa.json"
    assert trials_main(["validate-persona", str(TT_AGENT), "--expectations", "a curious data scientist",
                        "--questions", "4", "llm=scripted", "cache.mode=off", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert re.search(rf"^score: {data['score']}/9$", text, re.M)
    assert data["persona"] == "Lisa Carter" and len(data["questions"]) == 4
    assert data["usage"]["calls"] == 1 + 4 + 1  # questions, answers, score (scripted: no re-ask)
    assert trials_main(["validate-persona", str(tmp_path / "missing.json"), "--expectations", "x", "llm=scripted"]) == 2
    assert "missing.json" in capsys.readouterr().err
    assert trials_main(["validate-persona", str(TT_AGENT), "--expectations", "x", "--questions", "0"]) == 2


@pytest.mark.local_model
def test_judge_check_and_validate_persona_on_the_local_model(tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    chosen = [i for i in labelled_set() if i["subtlety"] == "obvious"][:6]
    items.write_text("".join(json.dumps(i) + "\n" for i in chosen))
    out = tmp_path / "jc"
    assert trials_main(["judge-check", "llm=local", "cache.mode=off", "--items", str(items), "--out", str(out)]) == 0
    table = pd.read_csv(out / "judge_check.csv")
    assert len(table) == 6 and table["score"].dropna().between(0, 9).all()
    persona = tmp_path / "p.json"
    persona.write_text(json.dumps(chosen[0]["persona"]))
    code = trials_main(["validate-persona", str(persona), "--expectations", chosen[0]["persona"]["style"],
                        "--questions", "2", "llm=local", "cache.mode=off", "--out", str(tmp_path / "i.json")])
    data = json.loads((tmp_path / "i.json").read_text())
    assert len(data["questions"]) == 2 and (data["score"] is not None or data["missing_reason"])
    assert code == (0 if data["score"] is not None else 1)  # no score: the interview is kept, exit 1
    assert re.search(r"^score: (\d|n/a)/9$", capsys.readouterr().out, re.M)


def test_judge_check_keeps_going_when_a_call_fails(scripted_llm):
    items = labelled_set()[:4]
    llm = scripted_llm(rules=[{"match": re.escape(items[1]["action"][:50]), "error": "permanent"}])
    table = judge_labelled_set(llm, items)
    assert table["score"].isna().tolist() == [False, True, False, False]
    assert table.loc[1, "missing_reason"] == "call failed"  # the fixed vocabulary; the why in missing_detail
    assert "PermanentLLMError" in table.loc[1, "missing_detail"] and table.loc[0, "missing_detail"] == ""
    assert auc_with_ci(table["score"], table["fits"], n_boot=50)["n_missing"] == 1


def test_judge_check_items_file_that_is_not_jsonl_names_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "items.jsonl"
    bad.write_text("just text\n")
    assert trials_main(["judge-check", "llm=scripted", "--items", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad} line 1: not JSON" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="line 1: expected a JSON object"):
        labelled_set(_write(tmp_path / "list.jsonl", "[1, 2]\n"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("change, words", [
    ({"persona": "Nobody Known"}, "line 2: field 'persona': expected an object"),
    ({"persona": {"name": "A", "age": "forty"}}, "line 2: field 'age': expected an integer, got 'forty'"),
    ({"id": "margaret-1"}, "line 2: id 'margaret-1' is already used on line 1"),
    ({"subtlety": "medium"}, "line 2: 'subtlety' is 'medium'; fix: use one of 'obvious', 'subtle'"),
])
def test_judge_check_items_with_a_bad_line_are_one_line_exit_2(tmp_path, capsys, change, words):
    first = labelled_set()[0]
    items = _write(tmp_path / "items.jsonl", json.dumps(first) + "\n" + json.dumps({**first, "id": "x2", **change}) + "\n")
    assert trials_main(["judge-check", "llm=scripted", "cache.mode=off", "--items", str(items),
                        "--out", str(tmp_path / "jc")]) == 2
    err = capsys.readouterr().err
    assert f"{items} {words}" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "jc").exists()


def test_judge_check_with_every_call_failing_cannot_pass(tmp_path, monkeypatch, capsys):
    """The tester's case: HTTP 500 on every call gave exit 0 and AUC nan."""
    from fake_openai import FakeOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    items = _write(tmp_path / "items.jsonl", "".join(json.dumps(i) + "\n" for i in labelled_set()[:4]))
    out = tmp_path / "jc"
    with FakeOpenAI(mode="500") as srv:
        code = trials_main(["judge-check", "llm=openai", "llm.model=fake", f"llm.base_url={srv.base_url}",
                            "llm.max_retries=0", "cache.mode=off", "--items", str(items), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "no AUC: 4 of 4 items got no score (4 call failed); first: judge call failed" in err and "500" in err
    table = pd.read_csv(out / "judge_check.csv")  # the files are still written
    assert set(table["missing_reason"]) == {"call failed"} and table["missing_detail"].str.contains("500").all()
    assert len(pd.read_parquet(out / "llm_calls.parquet")) == 4
    assert json.loads((out / "judge_check.json").read_text())["failure"].startswith("no AUC: 4 of 4 items")


def test_validate_persona_keeps_the_interview_when_the_scoring_call_fails(tmp_path, monkeypatch, capsys):
    """The tester's case: HTTP 500 to the scoring call only; before, exit 1 and no file, no usage."""
    from fake_openai import FakeOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    persona = _write(tmp_path / "p.json", json.dumps({"name": "Sam Doe", "occupation": {"title": "taxi driver"}}))
    out = tmp_path / "i.json"
    with FakeOpenAI(mode="500") as srv:
        srv.queue(*["normal"] * 4)  # the questions and the 3 answers succeed
        code = trials_main(["validate-persona", str(persona), "--expectations", "taxi driver", "--questions", "3",
                            "llm=openai", "llm.model=fake", f"llm.base_url={srv.base_url}", "llm.max_retries=0",
                            "cache.mode=off", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err and "no score (call failed)" in captured.err
    data = json.loads(out.read_text())
    assert len(data["questions"]) == 3 and all(q["answer"].startswith("echo:") for q in data["questions"])
    assert data["score"] is None and data["missing_reason"] == "call failed" and "500" in data["missing_detail"]
    assert data["usage"]["calls"] == 5 and data["usage"]["tokens_in"] > 0


def test_validate_persona_keeps_the_answers_before_a_failed_answer_call(scripted_llm):
    persona = load_library("general")[0]
    rules = [{"match": "How do you usually spend a free weekend", "error": "permanent"}]
    interview = validate_persona(persona, "a practical person", llm=scripted_llm(rules=rules), n_questions=3)
    assert len(interview.questions) == 1 and interview.score is None
    assert interview.missing_reason == "call failed" and "answer to question 2" in interview.missing_detail


@pytest.mark.parametrize("n", [10, 11, 100000])
def test_validate_persona_asks_exactly_n_questions_or_refuses(tmp_path, capsys, n):
    """The tester's case: --questions 8 asked 7, 100000 asked 6, without a word."""
    from trials.judging.interview import MAX_QUESTIONS

    persona = _write(tmp_path / "p.json", json.dumps({"name": "Sam Doe"}))
    out = tmp_path / "i.json"
    code = trials_main(["validate-persona", str(persona), "--expectations", "a taxi driver", "--questions", str(n),
                        "llm=scripted", "cache.mode=off", "--out", str(out)])
    err = capsys.readouterr().err
    if n <= MAX_QUESTIONS:
        assert code == 0 and len(json.loads(out.read_text())["questions"]) == n
    else:
        assert code == 2 and f"--questions {n}: ask 1 to {MAX_QUESTIONS} questions" in err and not out.exists()
