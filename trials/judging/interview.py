"""Persona validation by interview (after TinyTroupe's TinyPersonValidator, our own prompts):

1. the judge LLM writes `n_questions` interview questions that would reveal whether someone
   matches the `expectations`; when its reply holds fewer usable questions, the rest are taken
   from `STANDARD_QUESTIONS` and marked `"source": "standard"` (never silently). So at most
   `MAX_QUESTIONS` (the size of that list) are asked: a larger `n_questions` is refused, as an
   interview with fewer questions than asked would be;
2. the persona answers each question in the first person (the agent LLM, the persona's full
   prompt text, one call per question);
3. the judge scores 0-9 how well the answers match the expectations (the rubric and parser of
   `trials.judging.judge`, the answers as the persona's TALK events), with a one-sentence reason.

`validate_persona(persona, expectations, llm=..., judge_llm=...)` returns an `Interview`
(`score` None with `missing_reason` from `trials.judging.answers.MISSING_REASONS` and the why in
`missing_detail` when the judge gave no digit after a re-ask, or "call failed" when an LLM call
failed after its retries: the questions and answers got so far are kept, nothing is guessed);
`Interview.to_json()` is the file `trials validate-persona` writes.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from trials.judging.answers import CALL_FAILED
from trials.judging.judge import Proposition, judge
from trials.llm.base import LLMError
from trials.persona import Persona, prompt_text
from trials.session.actions import derive_seed
from trials.session.events import Event

STANDARD_QUESTIONS = (
    "Tell me about yourself: what do you do, and what matters most to you?",
    "How do you usually spend a free weekend?",
    "What is something you feel strongly about, and why?",
    "How do you decide whether to buy something new?",
    "What kind of people do you get along with best, and who annoys you?",
    "What would your friends say is your biggest strength and your biggest flaw?",
    "What does a typical working day look like for you?",
    "Where do you get your news and information, and which sources do you trust?",
    "What was the last thing you spent a lot of money on, and was it worth it?",
    "How do you react when plans change at the last minute?",
)
#: the most questions an interview asks: the fixed list must be able to fill every one the judge
#: fails to write
MAX_QUESTIONS = len(STANDARD_QUESTIONS)
ANSWER_SYSTEM = ("You are {name}. Stay in character and answer the interviewer in the first person, "
                 "in two or three sentences, as this person really would.\n\nAbout you:\n{persona}")


class Answer(BaseModel):
    question: str
    answer: str
    source: str  # "generated" | "standard"


class Interview(BaseModel):
    persona: str
    expectations: str
    questions: list[Answer] = Field(default_factory=list)
    score: int | None = None  # 0-9
    justification: str = ""
    missing_reason: str = ""  # one of trials.judging.answers.MISSING_REASONS when score is None
    missing_detail: str = ""  # free text: the reply, or the error of the failed call
    llm_model: str = ""
    judge_model: str = ""

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def parse_questions(text: str) -> list[str]:
    """Lines of a reply that are questions ('1. Why ...?', '- What ...?'), without the numbering."""
    out = []
    for line in (text or "").splitlines():
        q = re.sub(r"^\s*(?:[-*•]|\d+[.):]|Q\d*[.:)]?)\s*", "", line).strip().strip('"')
        if q.endswith("?") and len(q) > 8 and q not in out:
            out.append(q)
    return out


def make_questions(judge_llm: Any, expectations: str, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` (question, source) pairs; see the module docstring."""
    reply = judge_llm.chat([
        {"role": "system", "content": "You prepare short interviews that test whether a person fits a description."},
        {"role": "user", "content": f"Expected traits of the person:\n{expectations}\n\nWrite {n} short interview "
                                    "questions whose answers would show whether the person has these traits. "
                                    "One question per line, each ending with '?'."}],
        purpose="judge", protocol="text", max_tokens=40 * n + 20, seed=derive_seed(seed, "questions"))
    generated = [(q, "generated") for q in parse_questions(reply.text)[:n]]
    standard = [(q, "standard") for q in STANDARD_QUESTIONS if q not in {g for g, _ in generated}]
    return (generated + standard)[:n]


def validate_persona(persona: Persona, expectations: str, *, llm: Any, judge_llm: Any | None = None,
                     n_questions: int = 5, seed: int = 0, answer_max_tokens: int = 90) -> Interview:
    """Interview `persona` and score it against `expectations` (module docstring). `llm` answers
    as the persona, `judge_llm` (default: `llm`) writes the questions and scores."""
    if not expectations.strip():
        raise ValueError("expectations are empty; describe who the persona should be (e.g. 'a frugal, "
                         "skeptical farmer who dislikes fads')")
    if not 1 <= n_questions <= MAX_QUESTIONS:
        raise ValueError(f"n_questions={n_questions}: ask 1 to {MAX_QUESTIONS} questions ({MAX_QUESTIONS} "
                         "standard questions fill in for any the judge fails to write)")
    judge_llm = judge_llm or llm
    system = ANSWER_SYSTEM.format(name=persona.name, persona=prompt_text(persona, "full").strip())
    interview = Interview(persona=persona.name, expectations=expectations,
                          llm_model=str(getattr(llm, "model", "") or ""),
                          judge_model=str(getattr(judge_llm, "model", "") or ""))
    events: list[Event] = []
    try:
        questions = make_questions(judge_llm, expectations, n_questions, seed)
    except LLMError as exc:
        return _call_failed(interview, "the questions", exc)
    for i, (question, source) in enumerate(questions):
        try:
            reply = llm.chat([{"role": "system", "content": system}, {"role": "user", "content": question}],
                             purpose="action", protocol="text", max_tokens=answer_max_tokens,
                             seed=derive_seed(seed, "answer", i))
        except LLMError as exc:  # the answers so far are kept; no score from a partial interview
            return _call_failed(interview, f"the answer to question {i + 1}", exc)
        answer = " ".join((reply.text or "").split())
        interview.questions.append(Answer(question=question, answer=answer, source=source))
        events += [Event(step=i, kind="stimulus", type="CONVERSATION", content=question, agent=persona.name,
                         source="Interviewer"),
                   Event(step=i, kind="action", type="TALK", content=answer or "(no answer)", agent=persona.name)]
    prop = Proposition(name="persona_expectations", first_n=0, last_n=len(events),
                       claim="In this interview, {agent}'s answers match these expectations: {expectations}",
                       variables={"expectations": " ".join(expectations.split())})
    result = judge(prop, judge_llm, events=events, agent=persona.name, salt=seed, max_chars=400,
                   on_error="missing")  # a failed scoring call keeps the interview, score missing
    interview.score, interview.justification = result.score, result.justification
    interview.missing_reason, interview.missing_detail = result.missing_reason, result.missing_detail
    return interview


def _call_failed(interview: Interview, what: str, exc: LLMError) -> Interview:
    interview.missing_reason = CALL_FAILED
    interview.missing_detail = f"the call for {what} failed: {type(exc).__name__}: {exc}"[:300]
    return interview
