"""Propositions: an LLM judge scores how true a claim is about an agent or a session, 0-9.

A `Proposition` is a claim template ("{agent}'s actions fit the persona..."), a target ("agent" or
"session"), a window over the events (first n + last n, rendered by a neutral observer) and
whether the agent's persona is shown. `judge(...)` returns a `JudgeResult`: the integer score
(None with a `missing_reason` when the judge gave no score even after one re-ask), the
probability-weighted score when the backend has log-probabilities, the judge's reason, and
`passed` (score >= threshold). With `k > 1` it judges k times (the sample index salts the seed)
and reports the mean, the rounded score and the standard deviation (judge noise).

The rubric is the same for every claim (`RUBRIC`): 0 = plainly false ... 9 = plainly true, and
"not enough evidence" is a 5 -- never a 9 (TinyTroupe's judge scored missing data as true).
The judge is blind: its prompt holds the claim, the optional persona and the events, never the
experiment, the arm or the session name (those live in `World.name`, which no prompt uses).

The reply protocol is two plain lines, "Score: <d>" / "Reason: <sentence>", parsed tolerantly
(`parse_score`: the first digit 0-9 after the word "score", else the first standalone digit).
"""

from __future__ import annotations

import logging
import re
import statistics
from typing import TYPE_CHECKING, Any, Literal, Sequence

from pydantic import BaseModel, Field

from trials.persona.prompt import prompt_text
from trials.session.agent import derive_seed
from trials.session.events import Event
from trials.session.memory import render

if TYPE_CHECKING:  # pragma: no cover
    from trials.persona import Persona
    from trials.session.world import World

log = logging.getLogger(__name__)

RUBRIC = ("Score how true the claim is, using only the evidence shown.\n"
          "0 = plainly false, 2 = mostly false, 5 = half true or not enough evidence to tell, "
          "7 = mostly true, 9 = plainly true.\n"
          "If the evidence is not enough to decide, say so in the reason and score 5.\n"
          "Reply in exactly two lines:\nScore: <one digit 0-9>\nReason: <one short sentence>")
SYSTEM = "You are a careful, impartial judge of a role-play simulation.\n" + RUBRIC
REMINDER = "Reply with two lines only: 'Score: <one digit 0-9>' then 'Reason: <one short sentence>'."


class Proposition(BaseModel):
    name: str
    claim: str = Field(description="template; {agent} and any key of `variables` are filled in")
    target: Literal["agent", "session"] = "agent"
    first_n: int = Field(2, ge=0)
    last_n: int = Field(12, ge=0)
    include_persona: bool = False
    persona_detail: Literal["brief", "full"] = "full"  # "brief" keeps judge prompts short for tiny models
    threshold: int = Field(5, ge=0, le=9, description="passed = score >= threshold")
    variables: dict[str, str] = Field(default_factory=dict)
    rubric: str | None = Field(None, description="the 0-9 scale's anchors for this claim; None = RUBRIC")
    higher_is_better: bool = True  # the metric's direction, for reports (judging is unaffected)

    def system_prompt(self) -> str:
        """The judge's system message: the standard RUBRIC, or this claim's own anchors followed
        by the same reply format (so parsing is unchanged)."""
        if not self.rubric:
            return SYSTEM
        return ("You are a careful, impartial judge of a role-play simulation.\n"
                f"Score the claim from 0 to 9 using only the evidence shown.\n{self.rubric.strip()}\n"
                "Reply in exactly two lines:\nScore: <one digit 0-9>\nReason: <one short sentence>")

    def text(self, agent: str | None = None) -> str:
        values = {**self.variables, **({"agent": agent} if agent else {})}
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), self.claim)


class JudgeResult(BaseModel):
    proposition: str
    agent: str | None = None
    score: int | None = None  # 0-9; the rounded mean when k > 1
    mean: float | None = None
    weighted_score: float | None = None  # probability-weighted 0-9 (backends with logprobs)
    justification: str = ""
    passed: bool | None = None
    threshold: int = 5
    samples: list[int | None] = Field(default_factory=list)
    sd: float | None = None  # sample standard deviation of the k scores (None when k == 1)
    missing_reason: str = ""
    prompt_tokens: int = 0


def labelled_digit(text: str, label: str, digits: str = "0-9") -> int | None:
    """The first digit in `digits` after the word `label` ("Score: 7"), else the first standalone
    one; None when there is none. Shared with the extraction parsers (`trials.judging.extract`)."""
    m = (re.search(rf"{label}\D{{0,12}}?(?<!\d)([{digits}])(?!\d)", text or "", re.I)
         or re.search(rf"(?<!\d)([{digits}])(?!\d)", text or ""))
    return int(m.group(1)) if m else None


def labelled_reason(text: str) -> str | None:
    """The text after "Reason:" (to the end), or None when the reply has no reason line."""
    r = re.search(r"reason\w*\s*[:\-=]\s*(.+)", text or "", re.I | re.S)
    return r.group(1) if r else None


def parse_score(text: str) -> tuple[int | None, str]:
    """(digit, reason) from a judge reply; digit None when the reply has no usable digit."""
    text = text or ""
    reason = labelled_reason(text)
    if reason is None:
        reason = re.sub(r"(?im)^\s*score\b.*$", "", text)
    return labelled_digit(text, "score"), " ".join(reason.split())[:500]


def judge_messages(prop: Proposition, events: Sequence[Event], *, agent: str | None = None,
                   persona_text: str | None = None, focus: str | None = None,
                   max_chars: int = 300) -> list[dict[str, str]]:
    # events first, then the persona and the claim: the judge prompts of one agent then share a
    # long prefix, which a local backend evaluates once (its KV cache)
    history = render(events, None, first_n=prop.first_n, last_n=prop.last_n, max_chars=max_chars)
    parts = ["Events:\n" + (history or "- (no events yet)")]
    if persona_text:
        parts.append(f"Persona of {agent}:\n{persona_text.strip()}")
    claim = f"Claim: {prop.text(agent)}"
    if focus:
        parts.append(f"Action to judge (by {agent}): {focus}")
        claim += "\nJudge the claim for the action to judge; the events are only context."
    parts.append(claim)
    return [{"role": "system", "content": prop.system_prompt()},
            {"role": "user", "content": "\n\n".join(parts)}]


def _one(llm: Any, messages: list[dict[str, str]], *, purpose: str, seed: int,
         max_tokens: int) -> tuple[int | None, str, float | None, int]:
    tokens, text = 0, ""
    for retry in range(2):
        reply = llm.chat(messages, purpose=purpose, protocol="score", score_digits=True,
                         max_tokens=max_tokens, seed=derive_seed(seed, retry))
        tokens += reply.usage.tokens_in
        text = reply.text or ""
        score, reason = parse_score(text)
        if score is not None:
            return score, reason, reply.score, tokens
        messages = [*messages, {"role": "assistant", "content": text}, {"role": "user", "content": REMINDER}]
    return None, f"no score digit in the judge reply after a re-ask: {text[:200]!r}", None, tokens


def judge(prop: Proposition, llm: Any, *, events: Sequence[Event] | None = None,
          world: "World | None" = None, agent: str | None = None, persona: "Persona | None" = None,
          focus: str | None = None, k: int = 1, salt: Any = 0, purpose: str = "judge",
          max_tokens: int = 40, max_chars: int = 300) -> JudgeResult:
    """Score `prop`. Evidence: `events`, or from `world` (the agent's memory for target="agent",
    all session events for target="session"). `focus` is a candidate action to judge (correction)."""
    if prop.target == "agent" and agent is None:
        raise ValueError(f"proposition {prop.name!r} targets an agent: pass agent=<name>")
    if events is None:
        if world is None:
            raise ValueError(f"proposition {prop.name!r}: pass events=... or world=...")
        if prop.target == "agent":
            a = world.agent(agent)  # type: ignore[arg-type]
            events, persona = a.memory.events, persona or a.persona
        else:
            events = world.events
    persona_text = prompt_text(persona, prop.persona_detail) if (prop.include_persona and persona is not None) else None
    messages = judge_messages(prop, events, agent=agent, persona_text=persona_text, focus=focus,
                              max_chars=max_chars)
    samples: list[int | None] = []
    weights, reasons, missing, tokens = [], [], [], 0
    for i in range(max(1, k)):
        score, reason, weighted, used = _one(llm, messages, purpose=purpose, max_tokens=max_tokens,
                                             seed=derive_seed("judge", prop.name, agent, salt, i))
        tokens += used
        samples.append(score)
        (reasons if score is not None else missing).append(reason)
        if weighted is not None:
            weights.append(weighted)
    valid = [s for s in samples if s is not None]
    result = JudgeResult(proposition=prop.name, agent=agent, threshold=prop.threshold,
                         samples=samples if k > 1 else [], prompt_tokens=tokens)
    if not valid:
        result.missing_reason = missing[0]
        return result
    result.mean = statistics.fmean(valid)
    result.score = int(result.mean + 0.5)
    result.sd = statistics.stdev(valid) if len(valid) > 1 else None
    result.weighted_score = statistics.fmean(weights) if weights else None
    result.justification = reasons[0]
    result.passed = result.mean >= prop.threshold
    return result
