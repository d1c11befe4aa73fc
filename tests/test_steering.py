"""Steering: action correction, interventions (predicate / proposition / stagnation), story."""

from __future__ import annotations

import itertools
import re

import pytest

from trials.session.agent import AgentConfig
from trials.llm import build_llm
from trials.persona import Persona
from trials.judging.propositions import persona_adherence
from trials.steering import (CorrectionConfig, Intervention, StagnationDetector, Story, broadcast,
                             similarity, story_continuation, think, variety_intervention)
from trials.steering import talk as talk_effect
from trials.similarity import novel_flags
from trials.judging.judge import Proposition
from trials.session.world import World


def _world(rules=(), names=("Ana",), max_actions=1, **kw) -> World:
    world = World(build_llm({"backend": "scripted", "rules": list(rules)}), seed=0,
                  agent_config=AgentConfig(max_actions=max_actions), **kw)
    for name in names:
        world.add_agent(Persona(name=name), goals=["Brainstorm."])
    return world


def _numbered_actions():
    counter = itertools.count()
    return {"match": "What do you do next", "reply": lambda r: f"TALK: candidate {next(counter)}"}


def _purposes(world):
    return [r["purpose"] for r in world.recorder.rows]


# ------------------------------------------------------------------------------ correction
def test_correction_regenerates_and_stops_at_the_cap():
    world = _world([{"match": "Claim:", "reply": "Score: 1\nReason: Too cheerful for her."}, _numbered_actions()],
                   correction=CorrectionConfig(max_attempts=2))
    world.run(1)
    attempts = [e for e in world.events if e.kind == "correction"]
    assert [(e.type, e.attempt) for e in attempts] == [("ATTEMPT", 0), ("ATTEMPT", 1), ("ATTEMPT", 2)]
    assert all(e.scores == {"persona_adherence": 1, "passed": False, "threshold": 5} for e in attempts)
    assert _purposes(world).count("action") == 3 and _purposes(world).count("correction") == 3
    [action] = [e for e in world.events if e.kind == "action"]
    assert action.content == "candidate 0" and action.scores["kept_best"] and action.scores["attempts"] == 3
    stats = world.corrector.stats["Ana"]
    assert (stats.checked, stats.attempts, stats.passed, stats.failed, stats.pass_rate) == (1, 3, 0, 1, 0.0)


def test_correction_feeds_back_the_reason_and_keeps_the_best_attempt():
    scores = {"candidate 0": 2, "candidate 1": 4, "candidate 2": 3}
    action_prompts = []

    def score(request):
        cand = re.search(r"Action to judge \(by Ana\): TALK: (candidate \d)", request.messages[1].content).group(1)
        return f"Score: {scores[cand]}\nReason: {cand} sounds wrong."

    counter = itertools.count()

    def act(request):
        action_prompts.append(request.messages[1].content)
        return f"TALK: candidate {next(counter)}"

    world = _world([{"match": "Claim:", "reply": score}, {"match": "What do you do next", "reply": act}],
                   correction=CorrectionConfig(max_attempts=2, threshold=5))
    world.run(1)
    [action] = [e for e in world.events if e.kind == "action"]
    assert action.content == "candidate 1" and action.scores["persona_adherence"] == 4
    assert "A reviewer rejected it: candidate 0 sounds wrong." in action_prompts[1]
    assert "You first proposed: TALK: candidate 1" in action_prompts[2]
    assert [m for m in world.agent("Ana").memory.own_actions()] == [action]  # rejected attempts are not memories


def test_correction_can_end_the_turn_instead():
    world = _world([{"match": "Claim:", "reply": "Score: 0\nReason: no."}, _numbered_actions()],
                   correction=CorrectionConfig(max_attempts=1, on_failure="done"))
    world.run(1)
    [action] = [e for e in world.events if e.kind == "action"]
    assert action.type == "DONE" and action.scores == {"correction_failed": True, "attempts": 2}


def test_passing_check_costs_one_judge_call_per_action():
    world = _world([{"match": "Claim:", "reply": "Score: 8\nReason: fits."}, _numbered_actions()],
                   names=("Ana", "Bo"), max_actions=3, correction=CorrectionConfig())
    world.run(2)
    actions = [e for e in world.events if e.kind == "action"]
    assert len(actions) == 12
    assert _purposes(world).count("action") == 12 and _purposes(world).count("correction") == 12
    assert all(e.scores["passed"] and e.scores["attempts"] == 1 for e in actions)
    assert world.corrector.stats["Bo"].first_try_pass_rate == 1.0


def test_correction_terminates_for_a_self_contradictory_persona():
    world = World(build_llm({"backend": "scripted", "rules": [{"match": "Claim:", "reply": "Score: 0\nReason: contradicts."}]}),
                  seed=4, agent_config=AgentConfig(max_actions=3), correction=CorrectionConfig(max_attempts=3))
    world.add_agent(Persona(name="Zed", traits=["never speaks", "talks all the time"],
                            beliefs=["everything is true", "nothing is true"]))
    world.run(2)
    n_actions = _purposes(world).count("action")
    assert 0 < n_actions <= 2 * 3 * 4 * 2  # steps x actions x attempts x (call + possible re-ask)
    assert world.corrector.stats["Zed"].passed == 0 and world.step == 2


def test_non_talk_candidates_are_not_judged():
    world = _world([{"match": "What do you do next", "reply": "DONE"}], correction=CorrectionConfig())
    world.run(1)
    assert "correction" not in _purposes(world) and not [e for e in world.events if e.kind == "correction"]


def test_correction_config_takes_other_propositions():
    cfg = CorrectionConfig(propositions=[persona_adherence(), Proposition(name="brevity", claim="{agent} is brief.")])
    world = _world([{"match": "is brief", "reply": "Score: 2\nReason: long."},
                    {"match": "Claim:", "reply": "Score: 9\nReason: fine."}, _numbered_actions()],
                   correction=cfg.model_copy(update={"max_attempts": 0}))
    world.run(1)
    [attempt] = [e for e in world.events if e.kind == "correction"]
    assert attempt.scores == {"persona_adherence": 9, "brevity": 2, "passed": False, "threshold": 5}


# ------------------------------------------------------------------------------ interventions
def test_intervention_fires_when_precondition_holds_and_respects_cooldown():
    world = _world([_numbered_actions()], names=("Ana", "Bo"))
    iv = Intervention("nudge", lambda w, a: a.name == "Ana", think("Say something bold, {agent}."), cooldown=2)
    world.add_hook(iv)
    world.run(6)
    fired = [e for e in world.events if e.kind == "intervention"]
    assert [(e.step, e.agent) for e in fired] == [(0, "Ana"), (3, "Ana")]
    assert iv.fires == {"Ana": 2} and iv.total_fires == 2 and fired[1].scores == {"fires": 2}
    thoughts = [e for e in world.events if e.kind == "stimulus" and e.type == "THOUGHT"]
    assert [e.agent for e in thoughts] == ["Ana", "Ana"] and thoughts[0].content == "Say something bold, Ana."
    assert "You thought: Say something bold, Ana." in world.agent("Ana").memory.render()
    assert "bold" not in world.agent("Bo").memory.render()


def test_intervention_with_a_proposition_precondition_and_max_fires():
    world = _world([{"match": "Claim: Ana is stuck", "reply": "Score: 8\nReason: stuck."},
                    {"match": "Claim:", "reply": "Score: 1\nReason: fine."}, _numbered_actions()], names=("Ana", "Bo"))
    iv = Intervention("unstick", Proposition(name="stuck", claim="{agent} is stuck.", threshold=6),
                      think("Try again."), max_fires=1)
    world.add_hook(iv)
    world.run(3)
    assert iv.fires == {"Ana": 1} and iv.checks == 3 + 1  # Bo every step; Ana once, then max_fires
    [record] = [e for e in world.events if e.kind == "intervention"]
    assert record.scores == {"fires": 1, "stuck": 8} and record.content == "Try again."
    assert _purposes(world).count("intervention") == iv.checks


def test_session_intervention_broadcasts():
    world = _world([_numbered_actions()], names=("Ana", "Bo"))
    iv = Intervention("clock", lambda w, a: w.step == 1, broadcast("Five minutes left."), targets="session")
    world.add_hook(iv)
    world.run(3)
    [record] = [e for e in world.events if e.kind == "intervention"]
    assert record.agent is None and record.step == 1 and iv.fires == {"": 1}
    assert all("Facilitator said: Five minutes left." in a.memory.render() for a in world.agents)


def test_variety_intervention_fires_on_stagnation():
    repeats = iter(["TALK: we should build a park", "TALK: build a park, we should", "TALK: a park we should build",
                    "TALK: we build a park", "TALK: park building we should", "TALK: a new museum"])
    world = _world([{"match": "What do you do next", "reply": lambda r: next(repeats)}])
    iv = variety_intervention(k=2, cooldown=5)
    world.add_hook(iv)
    world.run(5)
    fired = [e for e in world.events if e.kind == "intervention"]
    assert [(e.type, e.step) for e in fired] == [("variety", 3)]
    assert "propose a completely different idea" in world.agent("Ana").messages()[1]["content"]


def test_variety_intervention_with_llm_precondition_and_bad_option():
    iv = variety_intervention(k=2, precondition="llm")
    assert isinstance(iv.preconditions[1], Proposition) and iv.preconditions[1].last_n == 4
    with pytest.raises(ValueError, match="stagnation"):
        variety_intervention(precondition="vibes")


# ------------------------------------------------------------------------------ stagnation
def test_similarity_measures():
    assert similarity("We should build a park!", "build a park, we should") == 1.0
    assert similarity("solar bikes for kids", "a quiet museum") == 0.0
    assert 0.5 < similarity("community garden", "community gardens", "char3") < 1.0
    with pytest.raises(ValueError):
        similarity("a", "b", "bleu")


def test_stagnation_detector():
    det = StagnationDetector(window=2, threshold=0.5)
    assert novel_flags(["park", "museum", "park again"], 0.5) == [True, True, False]
    assert det.stagnant(["a park for dogs", "a dog park", "dogs park"]) is True
    assert det.stagnant(["a park for dogs", "a dog park", "a night market"]) is False
    assert det.stagnant(["a park", "a park"]) is False  # not enough history yet


# ------------------------------------------------------------------------------ story
def test_story_start_and_continue_are_broadcast():
    world = _world([{"match": "Write the opening", "reply": "The hall is full."},
                    {"match": "Continue the story", "reply": "The lights go out."}, _numbered_actions()],
                   names=("Ana", "Bo"))
    story = Story(world.judge_llm)
    start = story.start(world, "A town hall meeting.")
    world.run(1)
    cont = story.continue_story(world, requirements="Something surprising.")
    assert (start.kind, start.type, cont.type) == ("story", "START", "CONTINUATION")
    assert all("Story: The lights go out." in a.memory.render() for a in world.agents)
    assert _purposes(world).count("story") == 2 and story.beats == ["The hall is full.", "The lights go out."]


def test_empty_story_reply_is_recorded_not_broadcast():
    world = _world([{"match": "Write the opening", "reply": "  "}])
    assert Story(world.llm).start(world, "x") is None
    [event] = world.events
    assert event.type == "FAILED" and "empty" in event.scores["missing_reason"]
    assert world.agent("Ana").memory.events == []


def test_talk_and_story_effects():
    world = _world([{"match": "Continue the story", "reply": "A storm reaches the town."}, _numbered_actions()],
                   names=("Ana", "Bo"))
    story = Story(world.llm)
    world.add_hook(Intervention("coach", lambda w, a: w.step == 0, talk_effect("Speak up, {agent}.", source="Coach"),
                                targets=["Bo"]))
    world.add_hook(Intervention("plot", lambda w, a: w.step == 1, story_continuation(story), targets="session"))
    world.run(2)
    assert "Coach said to you: Speak up, Bo." in world.agent("Bo").memory.render()
    assert "Speak up" not in world.agent("Ana").memory.render()
    [plot] = [e for e in world.events if e.kind == "intervention" and e.type == "plot"]
    assert plot.content == "A storm reaches the town." and plot.step == 1
    assert [e.type for e in world.events if e.kind == "story"] == ["CONTINUATION"]
    assert all("Story: A storm reaches the town." in a.memory.render() for a in world.agents)
