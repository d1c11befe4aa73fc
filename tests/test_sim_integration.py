"""Integration on the real embedded model (SmolLM2-135M): a 3-agent, 3-step brainstorm with action
correction and the variety intervention on, then idea extraction. The model is tiny: this checks
that the whole pipeline runs and leaves a complete trace, not that the ideas are good."""

from __future__ import annotations

import pytest

from trials.session.agent import AgentConfig
from trials.judging.extract import Idea, count_unique_ideas, extract_ideas
from trials.llm import build_llm
from trials.session.memory import MemoryConfig
from trials.persona import load_folder, library_path
from trials.judging.propositions import persona_adherence
from trials.steering import CorrectionConfig, variety_intervention
from trials.session.world import World

TASK = "Brainstorm: propose one new feature for a city bike-sharing app. Give a concrete idea."


@pytest.mark.local_model
def test_local_brainstorm_with_correction_and_variety():
    pytest.importorskip("llama_cpp")
    llm = build_llm({"backend": "local", "max_tokens": 32, "temperature": 0.7})
    world = World(llm, seed=11, name="integration-r0",
                  agent_config=AgentConfig(max_actions=1, max_tokens=32, prose_as_talk=True,
                                           memory=MemoryConfig(first_n=1, last_n=4)),
                  correction=CorrectionConfig(
                      propositions=[persona_adherence(first_n=1, last_n=2, persona_detail="brief")],
                      max_attempts=1, judge_max_tokens=16))
    for persona in load_folder(library_path("general"))[:3]:
        world.add_agent(persona, goals=["Propose new ideas in the brainstorm."])
    variety = variety_intervention(k=1, cooldown=0, similarity=0.25)
    world.add_hook(variety)
    world.broadcast(TASK)
    world.run(3)

    kinds = {e.kind for e in world.events}
    assert {"stimulus", "action", "correction"} <= kinds and world.step == 3
    actions = [e for e in world.events if e.kind == "action"]
    assert {e.agent for e in actions} == set(world.names) and {e.step for e in actions} == {0, 1, 2}
    spoken = [e for e in actions if e.type in ("TALK", "THINK")]
    assert spoken and all(e.content.strip() and e.prompt_tokens > 0 for e in spoken)
    for e in actions:  # every DONE says why, every kept action carries its correction scores
        assert e.type != "DONE" or e.scores
        if e.type in ("TALK", "THINK"):
            assert e.scores["threshold"] == 5 and "attempts" in e.scores
    for e in (e for e in world.events if e.kind == "correction"):
        assert e.type == "ATTEMPT" and e.attempt in (0, 1) and {"passed", "threshold"} <= set(e.scores)
    # the variety intervention was evaluated; each firing left a record and a THOUGHT for its agent
    fired = [e for e in world.events if e.kind == "intervention"]
    assert variety.checks > 0 and len(fired) == variety.total_fires
    thoughts = [e for e in world.events if e.kind == "stimulus" and e.type == "THOUGHT"]
    assert [(e.step, e.agent) for e in thoughts] == [(e.step, e.agent) for e in fired]
    stats = world.corrector.stats
    assert sum(s.checked for s in stats.values()) == len([e for e in world.events
                                                           if e.kind == "correction" and e.attempt == 0])
    purposes = {r["purpose"] for r in world.recorder.rows}
    assert {"action", "correction"} <= purposes

    ideas = extract_ideas(world.llm, world.events, topic="a bike-sharing app", mode="lines", max_tokens=120)
    assert ideas.ok or ideas.missing_reason  # a failure must say why
    if ideas.ok:
        assert all(isinstance(i, Idea) and i.name for i in ideas.value)
        assert 0 <= count_unique_ideas(ideas.value) <= len(ideas.value)
    transcript = world.transcript()
    assert TASK in transcript and all(name in transcript for name in world.names)
    print(transcript, "\nideas:", ideas, "\nvariety fires:", variety.fires,
          "\ncorrection:", {n: s.model_dump() for n, s in stats.items()})
