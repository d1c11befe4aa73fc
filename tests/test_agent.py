"""Agent: action parsing, prompts, memory window, format-breakage recovery, turn endings."""

from __future__ import annotations

import itertools

import pytest

from trials.session.agent import Action, Agent, AgentConfig, parse_action
from trials.session.events import Event
from trials.session.memory import EpisodicMemory, MemoryConfig, describe, render
from trials.persona import Persona

NAMES = ["Ana Ruiz", "Tom Berg"]


@pytest.mark.parametrize("text, expected", [
    ("TALK: Hello all", Action("TALK", "Hello all")),
    ("talk: hello", Action("TALK", "hello")),
    ("TALK Hello without colon", Action("TALK", "Hello without colon")),
    ('TALK: "quoted words"', Action("TALK", "quoted words")),
    ("**TALK:** bold markdown", Action("TALK", "bold markdown")),
    ("TALK to Tom Berg: just you", Action("TALK", "just you", "Tom Berg")),
    ("TALK to tom: first name", Action("TALK", "first name", "Tom Berg")),
    ("TALK to Tom hello no colon", Action("TALK", "hello no colon", "Tom Berg")),
    ("Ana Ruiz: TALK: with speaker prefix", Action("TALK", "with speaker prefix")),
    ("Ana Ruiz: plain words", Action("TALK", "plain words")),
    ("Sure! Here is my action:\nTHINK: a thought\nTALK: second", Action("THINK", "a thought")),
    ("- think: bullet thought", Action("THINK", "bullet thought")),
    ("1. TALK: numbered", Action("TALK", "numbered")),
    ("Ana Ruiz: 3D printed bells", Action("TALK", "3D printed bells")),
    ("TALK:\nThe content on the next line", Action("TALK", "The content on the next line")),
    ("done.", Action("DONE")),
    ("REACH_OUT: Tom Berg", Action("REACH_OUT", target="Tom Berg")),
    ("reach out to tom", Action("REACH_OUT", target="Tom Berg")),
    ("TALK to Nobody: hi", Action("TALK", "hi", None)),
])
def test_parse_action_tolerates_format_breakage(text, expected):
    assert parse_action(text, ["Tom Berg"], "Ana Ruiz") == expected


@pytest.mark.parametrize("text", ["", "   ", "I would like to suggest a park.", "TALK:", "REACH_OUT:", "Score: 7",
                                  "TALK: <what you say to everyone>"])
def test_parse_action_rejects_text_without_an_action(text):
    assert parse_action(text, ["Tom Berg"], "Ana Ruiz") is None


def _agent(llm, **cfg) -> Agent:
    agent = Agent(Persona(name="Ana Ruiz", occupation="nurse"), llm, goals=["Find a good idea."],
                  config=AgentConfig(**cfg))
    agent.peers = ["Tom Berg"]
    return agent


def test_prompt_has_persona_goals_format_and_window(scripted_llm):
    agent = _agent(scripted_llm(), memory=MemoryConfig(first_n=1, last_n=2))
    for i in range(6):
        agent.listen(f"message {i}", source="Tom Berg", step=i)
    system, user = (m["content"] for m in agent.messages())
    assert "You are Ana Ruiz" in system and "nurse" in system
    assert "Your goals: Find a good idea." in system and "Others here: Tom Berg." in system
    assert "TALK to <Name>:" in system and "REACH_OUT: <Name>" in system
    assert "message 0" in user and "message 4" in user and "message 5" in user
    assert not any(f"message {i}" in user for i in (1, 2, 3))
    assert "(3 earlier events omitted)" in user
    assert user.rstrip().endswith("What do you do next?")


def test_memory_window_skips_bookkeeping_events():
    mem = EpisodicMemory("Ana", MemoryConfig(first_n=1, last_n=1))
    mem.add(Event(step=0, kind="stimulus", type="CONVERSATION", content="task", source="Host"))
    mem.add(Event(step=0, kind="action", type="DONE", agent="Ana"))
    mem.add(Event(step=0, kind="correction", type="ATTEMPT", agent="Ana", content="x"))
    mem.add(Event(step=1, kind="action", type="TALK", agent="Bo", content="hi", target="Ana"))
    kept, omitted = mem.window()
    assert [e.content for e in kept] == ["task", "hi"] and omitted == 0
    assert mem.render() == "- Host said: task\n- Bo said to you: hi"
    assert describe(kept[1], None) == "Bo said to Ana: hi"


def test_one_call_per_action_and_prompt_size_recorded(scripted_llm):
    counter = itertools.count()
    llm = scripted_llm(rules=[{"match": "What do you do next", "reply": lambda r: f"TALK: idea {next(counter)}"}])
    agent = _agent(llm, max_actions=3)
    events = agent.act(step=0)
    assert [e.type for e in events] == ["TALK"] * 3  # the per-turn cap
    assert len(llm.recorder.rows) == 3
    assert all(r["purpose"] == "action" for r in llm.recorder.rows)
    for event, row in zip(events, llm.recorder.rows):
        assert event.prompt_tokens == row["tokens_in"] > 0 and event.prompt_chars == row["prompt_chars"] > 0
    assert [e.content for e in agent.memory.own_actions()] == ["idea 0", "idea 1", "idea 2"]


def test_garbage_reply_is_re_asked_once_then_recorded_as_done(scripted_llm):
    llm = scripted_llm(rules=[{"match": ".", "reply": "I am not sure what to say here."}])
    events = _agent(llm).act(step=3)
    assert len(llm.recorder.rows) == 2  # the action call + one re-ask, then give up
    [done] = events
    assert done.type == "DONE" and done.kind == "action" and done.step == 3
    assert "no action in reply" in done.scores["format_error"]
    assert done.prompt_tokens == sum(r["tokens_in"] for r in llm.recorder.rows)


def test_re_ask_recovers_and_shows_the_bad_reply(scripted_llm):
    prompts = []

    def reply(request):
        prompts.append(request.messages)
        return "mumble" if len(prompts) == 1 else "THINK: recovered"

    llm = scripted_llm(rules=[{"match": "What do you do next", "reply": reply}])
    first = _agent(llm, max_actions=1).act(step=0)[0]
    assert (first.type, first.content) == ("THINK", "recovered")
    assert prompts[1][-2].content == "mumble" and "starting with TALK:" in prompts[1][-1].content


def test_repeated_identical_action_ends_the_turn(scripted_llm):
    llm = scripted_llm(rules=[{"match": ".", "reply": "TALK: the same thing"}])
    events = _agent(llm, max_actions=5).act(step=0)
    assert [e.type for e in events] == ["TALK", "DONE"]
    assert events[1].scores == {"repeated_action": True} and "the same thing" in events[1].content
    assert len(llm.recorder.rows) == 2


def test_done_ends_the_turn_early(scripted_llm):
    replies = iter(["TALK: one", "DONE", "TALK: never asked"])
    llm = scripted_llm(rules=[{"match": ".", "reply": lambda r: next(replies)}])
    assert [e.type for e in _agent(llm, max_actions=5).act(step=0)] == ["TALK", "DONE"]


def test_render_marks_omitted_events():
    events = [Event(step=0, kind="stimulus", type="OBSERVATION", content=f"o{i}") for i in range(5)]
    text = render(events, None, first_n=1, last_n=1)
    assert text.splitlines() == ["- Observation: o0", "- (3 earlier events omitted)", "- Observation: o4"]


def test_prose_as_talk_repairs_without_a_re_ask_and_says_so(scripted_llm):
    llm = scripted_llm(rules=[{"match": ".", "reply": "I think we need shade. Trees help!\nAnd more.\nTHINK"}])
    [talk, done] = _agent(llm, prose_as_talk=True, max_actions=2).act(step=0)
    assert (talk.type, talk.content) == ("TALK", "I think we need shade. Trees help!")
    assert talk.scores == {"format_repair": "prose_as_talk"} and len(llm.recorder.rows) == 2
    assert done.scores == {"repeated_action": True}


def test_prose_as_talk_still_records_empty_replies(scripted_llm):
    llm = scripted_llm(rules=[{"match": ".", "reply": "   "}])
    [done] = _agent(llm, prose_as_talk=True).act(step=0)
    assert done.type == "DONE" and "format_error" in done.scores
