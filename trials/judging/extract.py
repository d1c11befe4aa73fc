"""Structured results from a transcript: ideas, a 1-5 vote, a choice among options.

Every extractor returns an `ExtractionResult`: `value` (list[Idea] | Vote | Choice) or `None` with a
`missing_reason` -- a failed extraction is a recorded missing value, never a skip -- plus the
`method` used and the `raw` reply. mode="json" asks for a JSON schema (purpose="extract",
protocol="json"); mode="lines" asks for a plain-text line protocol that tiny models manage
("- <idea name>: <description>", "Vote: <1-5>", "Choice: <option>"); mode="auto" tries JSON and
falls back to lines when the reply does not fit the schema. An LLM error after its retries also
becomes a missing value with the error in the reason. A transcript with no TALK/THINK by the
agent gives zero ideas (value=[], method="empty") without a call.

Unique ideas (`dedupe_ideas`, `count_unique_ideas`): deterministic, greedy in the given order.
Each idea is normalised to a set of content words (lower case, stop words removed, plural "s"
stripped; `trials.similarity.words`). An idea is a duplicate of an earlier kept idea when
the Jaccard overlap of their name word sets, or of their name+description word sets, is >=
`threshold` (default 0.6), or their normalised names are equal. The first of a group is kept.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal, Sequence

from pydantic import BaseModel, Field

from trials.session.agent import derive_seed
from trials.session.events import Event
from trials.judging.judge import labelled_digit, labelled_reason
from trials.llm.base import LLMError
from trials.session.memory import render
from trials.similarity import jaccard, words

log = logging.getLogger(__name__)
Mode = Literal["auto", "json", "lines"]
SYSTEM = "You extract results from the transcript of a group conversation. Be literal and complete."


class Idea(BaseModel):
    name: str
    description: str = ""


class IdeaList(BaseModel):
    ideas: list[Idea] = Field(default_factory=list)


class Vote(BaseModel):
    vote: int = Field(ge=1, le=5)
    reason: str = ""


class Choice(BaseModel):
    choice: str
    reason: str = ""


class ExtractionResult(BaseModel):
    value: Any = None
    missing_reason: str = ""
    method: str = ""  # "json" | "lines" | "empty"
    raw: str = ""

    @property
    def ok(self) -> bool:
        return self.value is not None


def transcript_text(events: Sequence[Event], agent: str | None = None, max_events: int = 120) -> str:
    """The last `max_events` events as neutral '- ...' lines; with `agent`, only that agent's
    TALK/THINK actions. Injected THOUGHT stimuli (e.g. an intervention's prompt) are left out:
    they are the experimenter's words, not the participants'."""
    if agent is not None:
        events = [e for e in events if e.kind == "action" and e.agent == agent and e.type in ("TALK", "THINK")]
    events = [e for e in events if not (e.kind == "stimulus" and e.type == "THOUGHT")]
    return render(events, None, first_n=0, last_n=max_events, max_chars=600)


def _ask(llm: Any, user: str, *, schema: Any, seed: int, max_tokens: int) -> tuple[Any, str]:
    reply = llm.chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
                     purpose="extract", protocol="json" if schema is not None else "text", schema=schema,
                     temperature=0.0, max_tokens=max_tokens, seed=seed)
    return reply.data, reply.text or ""


def _run(llm: Any, mode: Mode, json_prompt: str, lines_prompt: str, schema: Any,
         parse_lines: Any, seed: int, max_tokens: int) -> ExtractionResult:
    reasons = []
    if mode in ("auto", "json"):
        try:
            data, raw = _ask(llm, json_prompt, schema=schema, seed=seed, max_tokens=max_tokens)
            return ExtractionResult(value=data, method="json", raw=raw)
        except LLMError as e:
            reasons.append(f"json: {type(e).__name__}: {e}")
            log.info("extraction via JSON failed (%s)%s", e, "; trying the line protocol" if mode == "auto" else "")
    if mode in ("auto", "lines"):
        try:
            _, raw = _ask(llm, lines_prompt, schema=None, seed=derive_seed(seed, "lines"), max_tokens=max_tokens)
        except LLMError as e:
            reasons.append(f"lines: {type(e).__name__}: {e}")
        else:
            value, why = parse_lines(raw)
            if value is not None:
                return ExtractionResult(value=value, method="lines", raw=raw)
            reasons.append(f"lines: {why}")
            return ExtractionResult(missing_reason="; ".join(reasons), method="lines", raw=raw)
    return ExtractionResult(missing_reason="; ".join(reasons), method=mode)


# ------------------------------------------------------------------------------------ ideas
def parse_idea_lines(text: str) -> tuple[list[Idea] | None, str]:
    ideas = []
    for line in (text or "").splitlines():
        m = re.match(r"^\s*(?:[-*•]|\d+[.)])\s*(.+)$", line)
        if not m:
            continue
        name, _, desc = m.group(1).replace("**", "").partition(":")
        if name.strip():
            ideas.append(Idea(name=name.strip(" .\"'"), description=desc.strip()))
    if ideas:
        return ideas, ""
    if re.search(r"\bnone\b", text or "", re.I):
        return [], ""
    return None, f"no '- idea: description' lines in the reply {(text or '')[:200]!r}"


def extract_ideas(llm: Any, events: Sequence[Event], *, agent: str | None = None, topic: str = "",
                  mode: Mode = "auto", max_tokens: int = 400, seed: int = 0,
                  max_events: int = 120) -> ExtractionResult:
    """The ideas proposed in the transcript (by `agent` only, when given), in order of appearance.
    Keep `max_events` small for tiny-context models."""
    text = transcript_text(events, agent, max_events)
    if agent is not None and not text:
        return ExtractionResult(value=[], method="empty")
    who = f" by {agent}" if agent else ""
    about = f" about {topic}" if topic else ""
    head = f"Transcript:\n{text or '- (empty)'}\n\nList every distinct idea proposed{who}{about}"
    json_prompt = head + ", each with a short name and a one-sentence description. No ideas: an empty list."
    lines_prompt = head + ". Write one idea per line as:\n- <idea name>: <one-sentence description>\nWrite NONE if there is no idea."
    result = _run(llm, mode, json_prompt, lines_prompt, IdeaList, parse_idea_lines,
                  derive_seed("ideas", agent, seed), max_tokens)
    if isinstance(result.value, IdeaList):
        result.value = list(result.value.ideas)
    return result


def dedupe_ideas(ideas: Sequence[Idea], threshold: float = 0.6) -> list[Idea]:
    """Near-identical ideas removed, first kept (see the module docstring for the method)."""
    kept: list[tuple[Idea, set[str], set[str]]] = []
    for idea in ideas:
        name_w, all_w = words(idea.name), words(f"{idea.name} {idea.description}")
        if any(name_w == kw or jaccard(name_w, kw) >= threshold or jaccard(all_w, ka) >= threshold
               for _, kw, ka in kept):
            continue
        kept.append((idea, name_w, all_w))
    return [k[0] for k in kept]


def count_unique_ideas(ideas: Sequence[Idea], threshold: float = 0.6) -> int:
    return len(dedupe_ideas(ideas, threshold))


# ------------------------------------------------------------------------------------ votes, choices
def _reason(text: str) -> str:
    return " ".join((labelled_reason(text) or "").split())[:300]


def parse_vote_lines(text: str) -> tuple[Vote | None, str]:
    vote = labelled_digit(text, "vote", "1-5")
    if vote is None:
        return None, f"no vote 1-5 in the reply {(text or '')[:200]!r}"
    return Vote(vote=vote, reason=_reason(text)), ""


def extract_vote(llm: Any, events: Sequence[Event], *, agent: str, question: str, mode: Mode = "auto",
                 max_tokens: int = 80, seed: int = 0, max_events: int = 120) -> ExtractionResult:
    """How `agent` would answer `question` on a 1-5 scale (1 = not at all, 5 = absolutely), from what they said."""
    head = (f"Transcript:\n{transcript_text(events, None, max_events) or '- (empty)'}\n\nFrom what {agent} said, how would "
            f"{agent} answer: {question}\nScale: 1 = not at all, 3 = unsure, 5 = absolutely.")
    return _run(llm, mode, head, head + "\nReply as:\nVote: <1-5>\nReason: <one short sentence>", Vote,
                parse_vote_lines, derive_seed("vote", agent, question, seed), max_tokens)


def extract_choice(llm: Any, events: Sequence[Event], *, options: Sequence[str], question: str,
                   agent: str | None = None, mode: Mode = "auto", max_tokens: int = 80,
                   seed: int = 0, max_events: int = 120) -> ExtractionResult:
    """Which of `options` `agent` (or the group) chose; a reply outside the options is missing."""
    def resolve(raw: str) -> str | None:
        raw = raw.strip().strip(" .\"'").lower()
        exact = [o for o in options if o.lower() == raw]
        inside = [o for o in options if o.lower() in raw or (raw and raw in o.lower())]
        return exact[0] if exact else (inside[0] if len(inside) == 1 else None)

    def parse_lines(text: str) -> tuple[Choice | None, str]:
        m = re.search(r"choice\s*[:\-]\s*(.+)", text or "", re.I)
        hit = resolve(m.group(1).splitlines()[0] if m else (text or ""))
        return (Choice(choice=hit, reason=_reason(text)), "") if hit \
            else (None, f"no option of {list(options)} in the reply {(text or '')[:200]!r}")

    who = agent or "the group"
    head = (f"Transcript:\n{transcript_text(events, None, max_events) or '- (empty)'}\n\n{question}\nWhich option did {who} "
            f"choose? Options: {'; '.join(options)}.")
    result = _run(llm, mode, head, head + "\nReply as:\nChoice: <one option, exactly as written>\nReason: <one short sentence>",
                  Choice, parse_lines, derive_seed("choice", agent, question, seed), max_tokens)
    if isinstance(result.value, Choice):
        hit = resolve(result.value.choice)
        if hit is None:
            return ExtractionResult(missing_reason=f"choice {result.value.choice!r} is not one of {list(options)}",
                                    method=result.method, raw=result.raw)
        result.value.choice = hit
    return result
