"""Every scenario on the scripted backend: it runs through the real World, writes the metrics it
declares (a value or a missing reason for each agent / session), and its transcript holds the
stimuli, actions and judge events. One test runs `hello` on the real local model."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from runner_support import config, run

from trials.run.plan import load_scenario

CASES = {
    "hello": ["experiment=hello", "run.replicates=2"],
    "brainstorm_variety": ["experiment=brainstorm_variety", "experiment.steps=3"],
    "debate": ["experiment=debate"],
    "market_research": ["experiment=market_research"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_scenario_writes_every_declared_metric(tmp_path, name):
    assert run(tmp_path, *CASES[name]) == 0
    cfg = config(*CASES[name])
    exp = cfg["experiment"]
    declared = load_scenario(exp["scenario"]).METRICS
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    assert set(m["metric"]) == set(exp["metrics"])
    n_sessions = cfg["run"]["replicates"] * len(exp["arms"])
    for metric in exp["metrics"]:
        rows = m[m["metric"] == metric]
        level, scale = declared[metric]
        assert (rows["level"] == level).all() and (rows["scale"] == scale).all(), metric
        per_session = exp["group_size"] if level == "agent" else 1
        assert len(rows) == n_sessions * per_session, metric
        assert (rows["value"].notna() | (rows["missing_reason"] != "")).all()
        lo, hi = {"0-9": (0, 9), "1-5": (1, 5)}.get(scale, (0, float("inf")))
        assert rows["value"].dropna().between(lo, hi).all(), metric
    events = [json.loads(x) for x in (tmp_path / "transcript.jsonl").read_text().splitlines()]
    assert {"stimulus", "action", "judge"} <= {e["kind"] for e in events}


def test_debate_asks_for_opinions_before_and_after(tmp_path):
    assert run(tmp_path, *CASES["debate"], "run.replicates=1") == 0
    events = [json.loads(x) for x in (tmp_path / "transcript.jsonl").read_text().splitlines()]
    broadcasts = [e for e in events if e["kind"] == "stimulus" and e["source"] == "Facilitator"
                  and e["session"] == "control-r0"]
    assert len(broadcasts) == 2 and broadcasts[1]["step"] == 1  # opening step, then the debate
    steps = {e["step"] for e in events if e["kind"] == "action" and e["session"] == "control-r0"}
    assert steps == {0, 1, 2}


def test_correction_arm_judges_candidates_and_control_does_not(tmp_path):
    assert run(tmp_path, *CASES["market_research"], "run.replicates=1") == 0
    calls = pd.read_parquet(tmp_path / "llm_calls.parquet")
    by_arm = calls[calls["purpose"].isin(["judge", "correction"])].groupby("arm").size()
    events = [json.loads(x) for x in (tmp_path / "transcript.jsonl").read_text().splitlines()]
    corrections = {e["arm"] for e in events if e["kind"] == "correction"}
    assert corrections == {"treatment"} and by_arm["treatment"] > by_arm["control"]


@pytest.mark.local_model
def test_hello_on_the_local_model(tmp_path, capsys):
    from runner_support import CONF
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from trials.run.experiment import run_experiment

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=hello", "llm=local", "llm.max_tokens=48",
                                           "cache.mode=off", "run.n_jobs=1", "run.report=false"])
    assert run_experiment(OmegaConf.to_container(cfg, resolve=True), tmp_path) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"run directory: {tmp_path.resolve()}"
    events = [json.loads(x) for x in (tmp_path / "transcript.jsonl").read_text().splitlines()]
    answer = next(e for e in events if e["kind"] == "action")
    assert answer["content"].strip()
    calls = pd.read_parquet(tmp_path / "llm_calls.parquet")
    assert set(calls["backend"]) == {"local"} and (calls["tokens_out"] > 0).all()
    adherence = pd.read_parquet(tmp_path / "metrics.parquet").query("metric == 'persona_adherence'")
    assert len(adherence) == 1
    value = adherence["value"].iloc[0]
    from trials.judging.answers import MISSING_REASONS

    row = adherence.iloc[0]
    if pd.isna(value):  # tiny judges may give no clear score: then a reason from the vocabulary
        assert row["missing_reason"] in MISSING_REASONS and row["missing_detail"]
    else:  # a real score, never a digit fished out of the judge's reason
        assert 0 <= value <= 9 and row["missing_reason"] == "" and row["flag"] in ("", "clamped")
