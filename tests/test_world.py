"""World: delivery (broadcast, targeted, REACH_OUT), seeded order, determinism, hooks, failures."""

from __future__ import annotations

import random
import re
import time

import pytest

from trials.session.agent import AgentConfig
from trials.llm import CallRecorder, build_llm
from trials.persona import Persona
from trials.session.world import SimulationError, World

NAMES = ["Ana Ruiz", "Bo Chen", "Cy Diaz"]


def _world(rules=(), seed=0, **kw) -> World:
    world = World(build_llm({"backend": "scripted", "rules": list(rules)}), seed=seed, **kw)
    for name in NAMES:
        world.add_agent(Persona(name=name), goals=["Brainstorm."])
    return world


def _by_agent(replies: dict[str, list[str]]):
    """A scripted rule answering each agent's action calls from its own list, in order."""
    queues = {name: list(r) for name, r in replies.items()}

    def reply(request):
        name = re.match(r"You are (.+?)\. Act as", request.messages[0].content).group(1)
        queue = queues.get(name, [])
        return queue.pop(0) if queue else "DONE"

    return [{"match": "What do you do next", "reply": reply}]


def _contents(agent) -> list[str]:
    return [e.content for e in agent.memory.events if e.agent != agent.name]


def test_broadcast_reaches_every_agent_once():
    world = _world()
    event = world.broadcast("Brainstorm about parks.")
    assert world.events == [event]
    assert all(a.memory.events == [event] for a in world.agents)
    assert all("Facilitator said: Brainstorm about parks." in a.messages()[1]["content"] for a in world.agents)


def test_talk_think_targeted_and_reach_out_delivery():
    world = _world(_by_agent({"Ana Ruiz": ["TALK: hello everyone", "THINK: secret plan",
                                          "TALK to Bo Chen: only for Bo", "REACH_OUT: Cy Diaz"]}),
                   agent_config=AgentConfig(max_actions=5))
    world.run(1)
    ana, bo, cy = (world.agent(n) for n in NAMES)
    assert _contents(bo) == ["hello everyone", "only for Bo"]
    assert _contents(cy) == ["hello everyone", ""]  # the REACH_OUT
    assert [e.type for e in cy.memory.events if e.agent == "Ana Ruiz"] == ["TALK", "REACH_OUT"]
    assert "Ana Ruiz reached out to you." in cy.memory.render()
    assert "secret plan" not in bo.memory.render() + cy.memory.render()
    assert "You thought: secret plan" in ana.memory.render()
    assert "Ana Ruiz said to you: only for Bo" in bo.memory.render()


def test_messages_of_a_step_are_read_in_the_next_step():
    world = _world(_by_agent({"Ana Ruiz": ["TALK: first words"]}))
    prompts = []
    world.before_step.append(lambda w, step: prompts.append(w.agent("Bo Chen").messages()[1]["content"]))
    world.run(2)
    assert "first words" not in prompts[0] and "Ana Ruiz said: first words" in prompts[1]


def test_same_seed_gives_identical_transcripts_and_other_seeds_differ():
    def run(seed):
        world = _world(seed=seed)
        world.broadcast("Go.")
        world.run(3)
        return [e.model_dump() for e in world.events]

    first = run(7)
    assert first == run(7)
    assert any(e["kind"] == "action" for e in first)
    assert run(8) != first


def test_delivery_order_does_not_depend_on_thread_timing():
    def jittery(request):  # a reply that takes a random time, so threads finish in any order
        time.sleep(random.random() * 0.02)
        return None

    def run(workers):
        rules = [{"match": "What do you do next",
                  "reply": lambda r: (jittery(r), f"TALK: {r.seed} from {r.messages[0].content[8:14]}")[1]}]
        world = _world(rules, seed=3, max_workers=workers)
        world.run(3)
        return [(e.agent, e.content) for e in world.events], [a.memory.render() for a in world.agents]

    sequential = run(1)
    assert run(8) == sequential and run(8) == sequential


def test_delivery_order_is_seeded_shuffle():
    world = _world(seed=1)
    orders = {tuple(a.name for a in world.order(step)) for step in range(10)}
    assert len(orders) > 1 and all(sorted(o) == NAMES for o in orders)
    assert [a.name for a in world.order(4)] == [a.name for a in world.order(4)]


def test_hooks_run_before_and_after_each_step():
    world = _world()
    calls = []
    world.add_hook(lambda w, s: calls.append(("before", s)))
    world.add_hook(lambda w, s: calls.append(("after", s)), when="after_step")
    world.run(2)
    assert calls == [("before", 0), ("after", 0), ("before", 1), ("after", 1)]
    assert world.step == 2


def test_worlds_share_no_state():
    llm = build_llm({"backend": "scripted"})
    r1, r2 = CallRecorder(), CallRecorder()
    w1, w2 = World(llm, seed=1, recorder=r1), World(llm, seed=1, recorder=r2)
    w1.add_agent(Persona(name="Ana"))
    w2.add_agent(Persona(name="Ana"))
    w1.run(1)
    assert r1.rows and not r2.rows and not w2.events and w1.agents[0] is not w2.agents[0]


def test_failing_agent_raises_after_keeping_the_others_work():
    rules = [{"match": r"^You are Bo Chen\. Act as", "error": "permanent"},
             {"match": "What do you do next", "reply": "TALK: fine"}]
    world = _world(rules)
    with pytest.raises(SimulationError, match="Bo Chen"):
        world.run(1)
    assert {e.agent for e in world.events} == {"Ana Ruiz", "Cy Diaz"}
    assert world.step == 1


def test_duplicate_names_are_rejected():
    world = _world()
    with pytest.raises(ValueError, match="two agents named"):
        world.add_agent(Persona(name="Bo Chen"))


def test_docstring_example_runs():
    import trials.session.world as mod

    code = mod.__doc__.split("embedded SmolLM2 model or an `openai` config for a real endpoint):")[1]
    code = code.split("On the tiny local model")[0]
    lines = [ln[4:] for ln in code.splitlines() if ln.strip()]
    namespace: dict = {}
    printed = []
    exec("\n".join(lines), {"print": printed.append, **namespace})
    assert printed and "Facilitator said: Brainstorm" in printed[0] and "[1]" in printed[0]
