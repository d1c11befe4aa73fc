"""Extraction: ideas (JSON and line protocol), votes, choices, recorded failures, de-duplication."""

from __future__ import annotations

from trials.session.events import Event
from trials.judging.extract import (Idea, count_unique_ideas, dedupe_ideas, extract_choice, extract_ideas,
                            extract_vote, parse_idea_lines, parse_vote_lines)


def _events():
    return [Event(step=0, kind="stimulus", type="CONVERSATION", content="Ideas for the town?", source="Host"),
            Event(step=0, kind="action", type="TALK", agent="Ana", content="A night market on Fridays."),
            Event(step=1, kind="action", type="TALK", agent="Bo", content="Solar benches in the park."),
            Event(step=1, kind="action", type="THINK", agent="Ana", content="Bo is right about the park.")]


def test_ideas_via_json_schema(scripted_llm):
    llm = scripted_llm()
    r = extract_ideas(llm, _events())
    assert r.ok and r.method == "json" and r.missing_reason == ""
    assert r.value and all(isinstance(i, Idea) and i.name for i in r.value)
    assert llm.recorder.rows[0]["purpose"] == "extract"


def test_ideas_fall_back_to_lines_when_json_breaks(scripted_llm):
    llm = scripted_llm(rules=[{"match": "short name and a one-sentence", "reply": "not json at all"},
                              {"match": "Write one idea per line", "reply":
                               "Here you go:\n- Night market: stalls on Fridays\n2. **Solar benches**: charge phones"}])
    r = extract_ideas(llm, _events())
    assert r.method == "lines" and [i.name for i in r.value] == ["Night market", "Solar benches"]
    assert r.value[1].description == "charge phones"
    assert len(llm.recorder.rows) == 3  # json + its one repair, then the line protocol


def test_failed_extraction_is_a_missing_value_with_a_reason(scripted_llm):
    llm = scripted_llm(rules=[{"match": "short name and a one-sentence", "reply": "garbage"},
                              {"match": "Write one idea per line", "reply": "I like turtles."}])
    r = extract_ideas(llm, _events())
    assert r.value is None and not r.ok
    assert r.missing_reason == "unparseable"
    assert "json: " in r.missing_detail and "no '- idea: description' lines" in r.missing_detail


def test_llm_error_is_a_missing_value(scripted_llm):
    llm = scripted_llm(rules=[{"match": "Transcript", "error": "permanent"}])
    r = extract_ideas(llm, _events(), mode="lines")
    assert r.value is None and r.missing_reason == "call failed" and "PermanentLLMError" in r.missing_detail
    assert r.remeasure["kind"] == "ideas" and r.remeasure["mode"] == "lines"  # repeatable on resume


def test_agent_without_actions_has_zero_ideas_without_a_call(scripted_llm):
    llm = scripted_llm()
    r = extract_ideas(llm, _events(), agent="Cy")
    assert r.value == [] and r.method == "empty" and not llm.recorder.rows


def test_agent_filter_shows_only_that_agents_actions(scripted_llm):
    seen = []
    llm = scripted_llm(rules=[{"match": "Transcript", "reply": lambda r: seen.append(r.messages[1].content) or "NONE"}])
    r = extract_ideas(llm, _events(), agent="Ana", mode="lines")
    assert r.value == [] and r.method == "lines"
    assert "night market" in seen[0] and "Solar benches" not in seen[0] and "proposed by Ana" in seen[0]


def test_vote_and_choice(scripted_llm):
    llm = scripted_llm(rules=[{"match": "Reply as:\nVote", "reply": "Vote: 4\nReason: She liked it."},
                              {"match": "Reply as:\nChoice", "reply": "Choice: solar benches.\nReason: cheap."}])
    vote = extract_vote(llm, _events(), agent="Ana", question="Would you visit?", mode="lines")
    assert (vote.value.vote, vote.value.reason) == (4, "She liked it.")
    choice = extract_choice(llm, _events(), options=["Night market", "Solar benches"], question="Pick one.", mode="lines")
    assert choice.value.choice == "Solar benches" and choice.value.reason == "cheap."
    json_vote = extract_vote(scripted_llm(), _events(), agent="Ana", question="Would you visit?")
    assert json_vote.method == "json" and 1 <= json_vote.value.vote <= 5


def test_choice_outside_the_options_is_missing(scripted_llm):
    llm = scripted_llm(rules=[{"match": "Choice", "reply": "Choice: a zoo"}])
    r = extract_choice(llm, _events(), options=["Night market", "Solar benches"], question="Pick.", mode="lines")
    assert r.value is None and r.missing_reason == "unparseable" and "no option of" in r.missing_detail
    bad_json = extract_choice(scripted_llm(), _events(), options=["Night market", "Solar benches"], question="Pick.")
    assert bad_json.value is None and "is not one of" in bad_json.missing_detail  # scripted JSON is random text


def test_line_parsers():
    assert parse_idea_lines("NONE")[0] == []
    assert parse_idea_lines("just prose")[0] is None
    assert parse_vote_lines("I'd say 5")[0].vote == 5
    assert parse_vote_lines("Vote: 9")[0] is None


def test_dedupe_is_deterministic_greedy_and_documented_threshold():
    ideas = [Idea(name="Night market", description="Food stalls on Friday nights"),
             Idea(name="Night Markets!", description="A market at night with stalls"),
             Idea(name="Friday night market", description="food stalls every friday night"),
             Idea(name="Solar benches", description="Benches that charge phones"),
             Idea(name="Community garden", description="Shared vegetable plots"),
             Idea(name="Vegetable plots", description="shared community garden plots")]
    kept = dedupe_ideas(ideas)
    assert [i.name for i in kept] == ["Night market", "Solar benches", "Community garden"]
    assert count_unique_ideas(ideas) == 3 and count_unique_ideas(list(reversed(ideas))) == 3
    assert count_unique_ideas(ideas, threshold=1.01) == 5  # only the equal normalised names merge
    assert count_unique_ideas([]) == 0


def test_transcript_leaves_out_injected_thoughts_and_keeps_a_window():
    from trials.judging.extract import transcript_text

    events = _events() + [Event(step=2, kind="stimulus", type="THOUGHT", agent="Ana", content="Propose a new idea.")]
    text = transcript_text(events)
    assert "Propose a new idea" not in text and "Host said: Ideas for the town?" in text
    assert transcript_text(events, max_events=1) == "- (3 earlier events omitted)\n- Ana thought: Bo is right about the park."


def test_a_json_reply_without_the_ideas_key_is_unparseable_not_zero_ideas(scripted_llm):
    """`{"answer": "ok"}`, `{}` or a wrongly cased key once validated as zero ideas."""
    for reply in ('{"answer": "ok"}', '{}', '{"Ideas": [{"name": "Night market"}]}'):
        llm = scripted_llm(rules=[{"match": "short name and a one-sentence", "reply": reply}])
        r = extract_ideas(llm, _events(), mode="json")
        assert r.value is None and r.missing_reason == "unparseable", reply
        assert "ideas" in r.missing_detail and "Field required" in r.missing_detail, r.missing_detail
    ok = extract_ideas(scripted_llm(rules=[{"match": "short name and a one-sentence", "reply": '{"ideas": []}'}]),
                       _events(), mode="json")
    assert ok.value == [] and ok.method == "json"  # an explicit empty list is zero ideas
