"""Propositions and the judge: rubric, tolerant parsing, blindness, windows, k-sample noise."""

from __future__ import annotations

import statistics

import pytest

from trials.judging import propositions as P
from trials.session.events import Event
from trials.judging.judge import RUBRIC, Proposition, judge, judge_messages, parse_score
from trials.llm import build_llm
from trials.persona import Persona
from trials.steering import CorrectionConfig
from trials.session.world import World


@pytest.mark.parametrize("text, score", [
    ("Score: 7\nReason: fits well", 7),
    ("score 3 - reason: weak", 3),
    ("**Score:** 9", 9),
    ("I would give it a 4 out of 9.", 4),
    ("Score: 10\nReason: then 6", 9),  # issue #11: 10 is clamped to 9 (flagged), never the later digit
    ("Score: 10\nthen 6", None),  # a later number outside the reason may be a correction: missing
    ("Score = 2/9", 2),
    ("no digits at all", None),
])
def test_parse_score_is_tolerant(text, score):
    assert parse_score(text)[0] == score


def test_parse_score_reason():
    assert parse_score("Score: 7\nReason: She sounds like a nurse.")[1] == "She sounds like a nurse."


def _events(n=5):
    return [Event(step=i, kind="action", type="TALK", agent="Ana", content=f"line {i}") for i in range(n)]


def test_rubric_is_explicit_and_missing_evidence_is_the_middle():
    system = judge_messages(P.fluency(), _events(), agent="Ana")[0]["content"]
    assert system.endswith(RUBRIC)
    assert "0 = plainly false" in system and "9 = plainly true" in system
    assert "not enough to decide, say so in the reason and score 5" in system


def test_window_and_persona_inclusion():
    prop = P.persona_adherence(first_n=1, last_n=2)
    user = judge_messages(prop, _events(6), agent="Ana", persona_text="Ana is a shy nurse.")[1]["content"]
    assert "Persona of Ana:\nAna is a shy nurse." in user
    assert "line 0" in user and "line 4" in user and "line 5" in user and "line 2" not in user
    assert "(3 earlier events omitted)" in user
    assert "Claim: Ana's words and thoughts fit the persona" in user


def test_persona_shown_only_when_asked(scripted_llm):
    llm = scripted_llm()
    persona = Persona(name="Ana", occupation="lighthouse keeper")
    judge(P.fluency(), llm, events=_events(), agent="Ana", persona=persona)
    judge(P.persona_adherence(), llm, events=_events(), agent="Ana", persona=persona)
    assert [r["prompt_chars"] for r in llm.recorder.rows][0] < llm.recorder.rows[1]["prompt_chars"]


def test_score_passed_and_weighted(scripted_llm):
    llm = scripted_llm(rules=[{"match": "Claim:", "reply": "Score: 4\nReason: partly."}])
    low = judge(P.fluency(threshold=5), llm, events=_events(), agent="Ana")
    assert (low.score, low.passed, low.justification, low.sd, low.samples) == (4, False, "partly.", None, [])
    assert low.weighted_score is not None and 3 < low.weighted_score < 5  # scripted digit_probs peak at 4
    assert judge(P.fluency(threshold=4), llm, events=_events(), agent="Ana").passed is True
    assert all(r["purpose"] == "judge" for r in llm.recorder.rows)


def test_unscoreable_reply_is_re_asked_once_then_missing(scripted_llm):
    llm = scripted_llm(rules=[{"match": "Claim:", "reply": "I cannot say."}])
    r = judge(P.fluency(), llm, events=_events(), agent="Ana")
    assert r.score is None and r.passed is None and r.missing_reason == "no answer"  # a refusal
    assert "re-ask" in r.missing_detail
    assert len(llm.recorder.rows) == 2


def test_k_samples_give_mean_and_sd(scripted_llm):
    llm = scripted_llm()  # the scripted judge draws a seeded score per call; the sample index salts it
    r = judge(P.self_consistency(), llm, events=_events(), agent="Ana", k=6)
    assert len(r.samples) == 6 and len(set(r.samples)) > 1
    assert r.mean == pytest.approx(statistics.fmean(r.samples))
    assert r.sd == pytest.approx(statistics.stdev(r.samples))
    assert r.score == int(r.mean + 0.5)
    again = judge(P.self_consistency(), scripted_llm(), events=_events(), agent="Ana", k=6)
    assert again.samples == r.samples  # seeded: the same noise on a rerun


def test_judge_never_sees_the_arm_or_session_name():
    prompts = []

    def reply(request):
        prompts.append("\n".join(m.content for m in request.messages))
        return "Score: 6\nReason: ok." if request.protocol == "score" else f"TALK: idea number {request.seed}"

    llm = build_llm({"backend": "scripted", "rules": [{"match": ".", "reply": reply}]})
    world = World(llm, seed=2, name="treatment_correction-r3", correction=CorrectionConfig())
    for name in ("Ana", "Bo"):
        world.add_agent(Persona(name=name), goals=["Discuss."])
    world.broadcast("Talk about parks.")
    world.run(2)
    judge(P.persona_adherence(), world.judge_llm, world=world, agent="Ana")
    judge(P.divergence(), world.judge_llm, world=world)
    judge(P.task_completion("Talk about parks."), world.judge_llm, world=world)
    n_checked = sum(s.checked for s in world.corrector.stats.values())
    assert n_checked > 0 and sum("Claim:" in p for p in prompts) == 3 + n_checked
    assert not any("treatment" in p or "correction-r3" in p for p in prompts)


def test_session_proposition_reads_world_events(scripted_llm):
    seen = []
    llm = scripted_llm(rules=[{"match": "Claim:", "reply": lambda r: seen.append(r.messages[1].content)
                               or "Score: 8\nReason: many ideas."}])
    world = World(llm, seed=0)
    world.add_agent(Persona(name="Ana"))
    world.broadcast("Ideas for parks, please.")
    r = judge(P.divergence(), llm, world=world)
    assert r.agent is None and r.score == 8 and r.justification == "many ideas."
    assert "- Facilitator said: Ideas for parks, please." in seen[0]


def test_standard_library():
    names = set(P.STANDARD)
    assert names == {"persona_adherence", "self_consistency", "fluency", "suitability", "task_completion",
                     "divergence", "convergence"}
    for name in names - {"task_completion"}:
        prop = P.standard(name)
        assert prop.name == name and "{" not in prop.text("Ana")
    task = P.standard("task_completion", task="pick a logo")
    assert task.target == "session" and task.text() == "The group completed this task: pick a logo"
    assert P.persona_adherence().include_persona and P.divergence().target == "session"
    with pytest.raises(ValueError, match="needs task"):
        P.standard("task_completion")
    with pytest.raises(ValueError, match="unknown proposition"):
        P.standard("charisma")
    with pytest.raises(ValueError, match="agent=<name>"):
        judge(P.fluency(), None, events=[])


def test_proposition_template_refuses_unknown_placeholders():
    """A placeholder the claim cannot fill would reach the judge verbatim ("{agnt} clearly wants
    to buy"): refused when the proposition is made, naming it and the known ones."""
    with pytest.raises(ValueError, match=r"unknown placeholder \{thing\}; known placeholders here: \{agent\}"):
        Proposition(name="x", claim="{agent} likes {thing}")
    with pytest.raises(ValueError, match=r"\{agnt\} \(did you mean \{agent\}\?\)"):
        Proposition(name="x", claim="{agnt} likes it")
    with pytest.raises(ValueError, match=r"unknown placeholder \{agent\}"):  # no agent at session level
        Proposition(name="x", claim="{agent} likes it", target="session")
    p = Proposition(name="x", claim="{agent} likes {thing}", variables={"thing": "soup"})
    assert p.text("Ana") == "Ana likes soup"
