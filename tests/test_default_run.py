"""The default `trials run` (brainstorm_variety, small size, local model) must compare two really
different arms, fast: tiny-model prose becomes TALKs (prose_as_talk: auto), the variety
intervention can fire within 4 steps, and llama.cpp uses the machine's cores (n_threads: auto)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from runner_support import config, run

from trials.llm.config import parse_llm_config
from trials.run.plan import ConfigError, build_plan, divide_threads
from trials.scenarios.base import prose_as_talk

PROSE = ["experiment.agent.prose_as_talk=true",  # the scripted backend stands in for the tiny model
         "llm.rules=[{match: 'What do you do next', reply: 'I would add a delivery tracking feature for the app.'}]"]


def test_prose_as_talk_auto_is_on_for_the_local_backend_only():
    ctx = lambda backend, value="auto": SimpleNamespace(  # noqa: E731
        experiment={"agent": {"prose_as_talk": value}}, llm=SimpleNamespace(backend=backend))
    assert prose_as_talk(ctx("local")) and not prose_as_talk(ctx("scripted")) and not prose_as_talk(ctx("openai"))
    assert prose_as_talk(ctx("scripted", True)) and not prose_as_talk(ctx("local", False))


def test_bad_agent_option_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="experiment.agent.prose_as_talk='maybe'"):
        build_plan(config("experiment.agent.prose_as_talk=maybe"), tmp_path)


def test_small_size_variety_k_fits_four_steps():
    small, paper = config(), config("experiment.size=paper")
    assert small["experiment"]["intervention_options"]["variety"]["k"] < small["experiment"]["steps"] - 1
    assert paper["experiment"]["intervention_options"]["variety"]["k"] == 3


def test_default_experiment_with_prose_replies_fires_variety_in_treatment_only(tmp_path):
    assert run(tmp_path, *PROSE) == 0
    events = [json.loads(x) for x in (tmp_path / "transcript.jsonl").read_text().splitlines()]
    actions = [e for e in events if e["kind"] == "action"]
    assert actions and all(e["type"] == "TALK" and e["scores"] == {"format_repair": "prose_as_talk"}
                           for e in actions if e["type"] != "DONE")
    fires = {arm: sum(e["kind"] == "intervention" for e in events if e["arm"] == arm)
             for arm in ("control", "treatment")}
    assert fires["control"] == 0 and fires["treatment"] >= 2  # at least one per treatment session


def test_prose_without_the_option_ends_turns_in_format_errors(tmp_path):
    assert run(tmp_path, PROSE[1]) == 0  # scripted backend + auto = off
    events = [json.loads(x) for x in (tmp_path / "transcript.jsonl").read_text().splitlines()]
    assert not [e for e in events if e["kind"] == "action" and e["type"] == "TALK"]
    assert not [e for e in events if e["kind"] == "intervention"]


def test_n_threads_auto_is_the_default_and_is_shared_among_workers(tmp_path, monkeypatch):
    from trials.llm import local_backend

    assert parse_llm_config({"backend": "local"}).n_threads == "auto"
    monkeypatch.setattr(local_backend.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert local_backend.auto_threads() == 8 and local_backend.auto_threads(2) == 4
    assert local_backend.auto_threads(32) == 1
    plan = build_plan(config("llm.backend=local", "+llm.n_threads=auto"), tmp_path)
    divide_threads(plan.jobs, 4)
    assert {j.llm["n_threads"] for j in plan.jobs} == {2} == {j.judge["n_threads"] for j in plan.jobs}
    plan = build_plan(config("llm.backend=local", "+llm.n_threads=3"), tmp_path)
    divide_threads(plan.jobs, 4)
    assert {j.llm["n_threads"] for j in plan.jobs} == {3}  # an explicit count is kept


def test_judge_prompts_of_one_agent_share_the_events_prefix():
    from trials.session.events import Event
    from trials.judging.judge import judge_messages
    from trials.judging.propositions import standard

    events = [Event(step=0, kind="action", type="TALK", content=f"idea {i}", agent="Ana") for i in range(3)]
    prompts = [judge_messages(standard(m), events, agent="Ana", persona_text="Ana is a nurse.")[1]["content"]
               if m == "persona_adherence" else judge_messages(standard(m), events, agent="Ana")[1]["content"]
               for m in ("persona_adherence", "self_consistency", "fluency")]
    head = prompts[1].split("\n\nClaim:")[0]  # the events block
    assert "idea 2" in head and all(p.startswith(head + "\n\n") for p in prompts)
