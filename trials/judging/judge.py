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

The reply protocol is two plain lines, "Score: <d>" / "Reason: <sentence>", parsed by
`trials.judging.answers.parse_score` (anchored on the label; a scale restated in the reply is never
the score; "10" is clamped to 9 and flagged; anything ambiguous is missing with its reason). The
probability-weighted score is kept only when the reply's first digit is the parsed score (else
the digit probabilities belong to another number). With `on_error="missing"` an LLM call that
fails after its retries gives a missing score (reason "call failed") and `JudgeResult.remeasure`,
the exact request to repeat later (`rejudge`), instead of raising.
"""

from __future__ import annotations

import logging
import re
import statistics
from typing import TYPE_CHECKING, Any, Literal, Sequence

from pydantic import BaseModel, Field, model_validator

from trials.judging import answers
from trials.llm.base import LLMError, add_tokens
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


#: a placeholder in a template: "{agent}", "{task}"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def placeholder_problem(text: str, known: Sequence[str], where: str) -> str:
    """'' when every {placeholder} of `text` is one of `known`, else one line naming the first
    unknown one, the closest known one and all of them (a typo would reach the model verbatim)."""
    import difflib

    unknown = [p for p in PLACEHOLDER.findall(text or "") if p not in known]
    if not unknown:
        return ""
    close = difflib.get_close_matches(unknown[0], list(known), n=1, cutoff=0.6)
    hint = f" (did you mean {{{close[0]}}}?)" if close else ""
    names = ", ".join("{" + k + "}" for k in known) or "none"
    return f"{where}: unknown placeholder {{{unknown[0]}}}{hint}; known placeholders here: {names}"


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

    def placeholders(self) -> list[str]:
        """The names the claim may use: its `variables`, and {agent} for an agent-level claim."""
        return [*(["agent"] if self.target == "agent" else []), *self.variables]

    @model_validator(mode="after")
    def _known_placeholders(self) -> "Proposition":
        problem = placeholder_problem(self.claim, self.placeholders(), f"proposition {self.name!r} claim")
        if problem:
            raise ValueError(problem)
        return self

    def text(self, agent: str | None = None) -> str:
        values = {**self.variables, **({"agent": agent} if agent else {})}

        def fill(m: re.Match) -> str:
            if m.group(1) not in values:  # the validator makes this unreachable but for agent=None
                raise ValueError(f"proposition {self.name!r}: no value for {{{m.group(1)}}}")
            return values[m.group(1)]
        return PLACEHOLDER.sub(fill, self.claim)


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
    missing_reason: str = ""  # one of trials.judging.answers.MISSING_REASONS
    missing_detail: str = ""  # free text: the reply, or the error of the failed call
    flag: str = ""  # "clamped" when a sample's score was clamped to the scale
    prompt_tokens: int | None = 0  # None: unknown (an endpoint that reports no usage)
    #: when missing because a call failed: the request to repeat (`rejudge`), else None
    remeasure: dict[str, Any] | None = None


def parse_score(text: str) -> tuple[int | None, str]:
    """(score, reason) from a judge reply; score None when the reply has no clear 0-9 score
    (`trials.judging.answers.parse_score` gives the missing reason and the clamp flag)."""
    answer = answers.parse_score(text)
    reason = answer.reason or " ".join(re.sub(r"(?im)^\s*\**score\b.*$", "", text or "").split())
    return answer.value, reason[:500]


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


def _one(llm: Any, messages: list[dict[str, str]], *, purpose: str, seed: int, max_tokens: int,
         on_error: str) -> tuple[answers.Answer, float | None, int | None]:
    tokens: int | None = 0
    answer = answers.missing(answers.NO_ANSWER)
    for retry in range(2):
        try:
            reply = llm.chat(messages, purpose=purpose, protocol="score", score_digits=True,
                             max_tokens=max_tokens, seed=derive_seed(seed, retry))
        except LLMError as e:
            if on_error != "missing":
                raise
            return answers.missing(answers.CALL_FAILED, f"judge call failed: {type(e).__name__}: {e}"), None, tokens
        tokens = add_tokens(tokens, reply.usage.tokens_in)
        text = reply.text or ""
        answer = answers.parse_score(text)
        if answer.ok:
            first = re.search(r"\d+", text)  # the logprobs are those of the reply's first digit
            same = answer.flag == "" and first is not None and first.group() == str(answer.value)
            return answer, reply.score if same else None, tokens
        log.info("judge reply without a clear score (%s: %s); %s", answer.missing_reason, answer.detail[:150],
                 "re-asking" if retry == 0 else "missing")
        messages = [*messages, {"role": "assistant", "content": text}, {"role": "user", "content": REMINDER}]
    return answers.missing(answer.missing_reason, f"after a re-ask: {answer.detail}"), None, tokens


def judge(prop: Proposition, llm: Any, *, events: Sequence[Event] | None = None,
          world: "World | None" = None, agent: str | None = None, persona: "Persona | None" = None,
          focus: str | None = None, k: int = 1, salt: Any = 0, purpose: str = "judge",
          max_tokens: int = 40, max_chars: int = 300, on_error: str = "raise") -> JudgeResult:
    """Score `prop`. Evidence: `events`, or from `world` (the agent's memory for target="agent",
    all session events for target="session"). `focus` is a candidate action to judge (correction).
    `on_error`: "raise" (an LLMError after retries propagates) or "missing" (the score is missing,
    reason "call failed", with `remeasure` set)."""
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
    return score_messages(prop, llm, messages, agent=agent, k=k, salt=salt, purpose=purpose,
                          max_tokens=max_tokens, on_error=on_error)


def score_messages(prop: Proposition, llm: Any, messages: list[dict[str, str]], *, agent: str | None,
                   k: int = 1, salt: Any = 0, purpose: str = "judge", max_tokens: int = 40,
                   on_error: str = "raise") -> JudgeResult:
    """The judging half of `judge`: ask `messages` k times and combine the scores."""
    samples: list[int | None] = []
    weights, reasons, failed, flags = [], [], [], []
    tokens: int | None = 0
    for i in range(max(1, k)):
        answer, weighted, used = _one(llm, messages, purpose=purpose, max_tokens=max_tokens, on_error=on_error,
                                      seed=derive_seed("judge", prop.name, agent, salt, i))
        tokens = add_tokens(tokens, used)
        samples.append(answer.value)
        (reasons if answer.ok else failed).append(answer)
        if answer.flag:
            flags.append(answer.flag)
        if weighted is not None:
            weights.append(weighted)
    valid = [s for s in samples if s is not None]
    result = JudgeResult(proposition=prop.name, agent=agent, threshold=prop.threshold,
                         samples=samples if k > 1 else [], prompt_tokens=tokens,
                         flag=flags[0] if flags else "")
    if not valid:
        # a failed call outranks a bad reply: it is the reason a retry may fix
        first = next((a for a in failed if a.missing_reason == answers.CALL_FAILED), failed[0])
        result.missing_reason, result.missing_detail = first.missing_reason, first.detail
        if first.missing_reason == answers.CALL_FAILED:
            result.remeasure = {"kind": "judge", "proposition": prop.model_dump(), "messages": messages,
                                "agent": agent, "k": k, "salt": str(salt), "purpose": purpose,
                                "max_tokens": max_tokens}
        return result
    result.mean = statistics.fmean(valid)
    result.score = int(result.mean + 0.5)
    result.sd = statistics.stdev(valid) if len(valid) > 1 else None
    # weighted only when every valid sample had usable digit probabilities
    result.weighted_score = statistics.fmean(weights) if len(weights) == len(valid) else None
    result.justification = " ".join(reasons[0].reason.split())[:500]
    result.passed = result.mean >= prop.threshold
    return result


def rejudge(spec: dict[str, Any], llm: Any) -> JudgeResult:
    """Repeat a judgement recorded in `JudgeResult.remeasure` (same messages, seeds and k)."""
    return score_messages(Proposition.model_validate(spec["proposition"]), llm, spec["messages"],
                          agent=spec.get("agent"), k=int(spec.get("k", 1)), salt=spec.get("salt", 0),
                          purpose=spec.get("purpose", "judge"), max_tokens=int(spec.get("max_tokens", 40)),
                          on_error="missing")
