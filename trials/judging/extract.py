"""Structured results from a transcript: ideas, a 1-5 vote, a choice among options.

Every extractor returns an `ExtractionResult`: `value` (list[Idea] | Vote | Choice) or `None` with a
`missing_reason` -- a failed extraction is a recorded missing value, never a skip -- plus the
`method` used and the `raw` reply. mode="json" asks for a JSON schema (purpose="extract",
protocol="json"); mode="lines" asks for a plain-text line protocol that tiny models manage
("- <idea name>: <description>", "Vote: <1-5>", "Choice: <option>"); mode="auto" tries JSON and
falls back to lines when the reply does not fit the schema. Votes and choices are read by
`trials.judging.answers` (the one parsing layer). `missing_reason` is one of
`trials.judging.answers.MISSING_REASONS` with the free text in `missing_detail`: an LLM error
after its retries is "call failed" (and `remeasure` holds the request to repeat, `reextract`);
an agent who said nothing has no vote ("no answer", no call). A transcript with no TALK/THINK by
the agent gives zero ideas (value=[], method="empty") without a call.

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
from trials.judging import answers
from trials.llm.base import LLMError, StructuredOutputError
from trials.session.memory import render
from trials.similarity import jaccard, words

log = logging.getLogger(__name__)
Mode = Literal["auto", "json", "lines"]
SYSTEM = "You extract results from the transcript of a group conversation. Be literal and complete."


class Idea(BaseModel):
    name: str
    description: str = ""


class IdeaList(BaseModel):
    # required: a reply without an `ideas` key is unparseable, not zero ideas (an empty list is zero)
    ideas: list[Idea]


class Vote(BaseModel):
    vote: int = Field(ge=1, le=5)
    reason: str = ""


class Choice(BaseModel):
    choice: str
    reason: str = ""


class ExtractionResult(BaseModel):
    value: Any = None
    missing_reason: str = ""  # one of trials.judging.answers.MISSING_REASONS
    missing_detail: str = ""
    method: str = ""  # "json" | "lines" | "empty"
    raw: str = ""
    #: when missing because a call failed: what to repeat later (`reextract`), else None
    remeasure: dict[str, Any] | None = None

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
    """JSON and/or the line protocol; parse_lines(raw) -> (value, answers.Answer-like missing)."""
    details, failed = [], False
    if mode in ("auto", "json"):
        try:
            data, raw = _ask(llm, json_prompt, schema=schema, seed=seed, max_tokens=max_tokens)
            return ExtractionResult(value=data, method="json", raw=raw)
        except StructuredOutputError as e:
            details.append(f"json: {e}")
            log.info("extraction via JSON failed (%s)%s", e, "; trying the line protocol" if mode == "auto" else "")
        except LLMError as e:
            failed = True
            details.append(f"json: call failed: {type(e).__name__}: {e}")
    if mode in ("auto", "lines"):
        try:
            _, raw = _ask(llm, lines_prompt, schema=None, seed=derive_seed(seed, "lines"), max_tokens=max_tokens)
        except LLMError as e:
            failed = True
            details.append(f"lines: call failed: {type(e).__name__}: {e}")
        else:
            value, why = parse_lines(raw)
            if value is not None:
                return ExtractionResult(value=value, method="lines", raw=raw)
            details.append(f"lines: {why.detail}")
            return ExtractionResult(missing_reason=why.missing_reason, missing_detail="; ".join(details)[:500],
                                    method="lines", raw=raw)
    return ExtractionResult(missing_reason=answers.CALL_FAILED if failed else answers.UNPARSEABLE,
                            missing_detail="; ".join(details)[:500], method=mode)


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
        return ideas, answers.Answer()
    if re.search(r"\bnone\b", text or "", re.I):
        return [], answers.Answer()
    if not (text or "").strip():
        return None, answers.missing(answers.NO_ANSWER, "empty reply")
    return None, answers.missing(answers.UNPARSEABLE, f"no '- idea: description' lines in the reply {(text or '')[:200]!r}")


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
    args = dict(json_prompt=json_prompt, lines_prompt=lines_prompt, seed=derive_seed("ideas", agent, seed),
                max_tokens=max_tokens, mode=mode)
    result = _run(llm, mode, json_prompt, lines_prompt, IdeaList, parse_idea_lines, args["seed"], max_tokens)
    if isinstance(result.value, IdeaList):
        result.value = list(result.value.ideas)
    return _remeasurable(result, "ideas", args)


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
def parse_vote_lines(text: str) -> tuple[Vote | None, answers.Answer]:
    a = answers.parse_vote(text)
    return (Vote(vote=a.value, reason=a.reason[:300]) if a.ok else None), a


def _silent(events: Sequence[Event], agent: str) -> bool:
    return not any(e.kind == "action" and e.agent == agent and e.type in ("TALK", "THINK") and e.content
                   for e in events)


def extract_vote(llm: Any, events: Sequence[Event], *, agent: str, question: str, mode: Mode = "auto",
                 max_tokens: int = 80, seed: int = 0, max_events: int = 120) -> ExtractionResult:
    """How `agent` would answer `question` on a 1-5 scale (1 = not at all, 5 = absolutely), from
    what they said. An agent who said nothing (no TALK/THINK) has no vote: missing "no answer",
    no call."""
    if _silent(events, agent):
        return ExtractionResult(missing_reason=answers.NO_ANSWER, method="empty",
                                missing_detail=f"{agent} said nothing (no TALK/THINK action)")
    head = (f"Transcript:\n{transcript_text(events, None, max_events) or '- (empty)'}\n\nFrom what {agent} said, how would "
            f"{agent} answer: {question}\nScale: 1 = not at all, 3 = unsure, 5 = absolutely.")
    lines = head + "\nReply as:\nVote: <1-5>\nReason: <one short sentence>"
    args = dict(json_prompt=head, lines_prompt=lines, seed=derive_seed("vote", agent, question, seed),
                max_tokens=max_tokens, mode=mode)
    return _remeasurable(_run(llm, mode, head, lines, Vote, parse_vote_lines, args["seed"], max_tokens),
                         "vote", args)


def _remeasurable(result: ExtractionResult, kind: str, args: dict[str, Any]) -> ExtractionResult:
    if result.missing_reason == answers.CALL_FAILED:
        result.remeasure = {"kind": kind, **args}
    return result


def reextract(spec: dict[str, Any], llm: Any) -> ExtractionResult:
    """Repeat an extraction recorded in `ExtractionResult.remeasure` (votes and ideas): same
    prompts, seeds and limits."""
    kind = spec["kind"]
    schema, parse = {"vote": (Vote, parse_vote_lines), "ideas": (IdeaList, parse_idea_lines)}[kind]
    args = {k: spec[k] for k in ("json_prompt", "lines_prompt", "seed", "max_tokens", "mode")}
    result = _run(llm, args["mode"], args["json_prompt"], args["lines_prompt"], schema, parse,
                  args["seed"], args["max_tokens"])
    if isinstance(result.value, IdeaList):
        result.value = list(result.value.ideas)
    return _remeasurable(result, kind, args)


def extract_choice(llm: Any, events: Sequence[Event], *, options: Sequence[str], question: str,
                   agent: str | None = None, mode: Mode = "auto", max_tokens: int = 80,
                   seed: int = 0, max_events: int = 120) -> ExtractionResult:
    """Which of `options` `agent` (or the group) chose; a reply outside the options is missing."""
    def parse_lines(text: str) -> tuple[Choice | None, answers.Answer]:
        a = answers.parse_choice(text, options)
        return (Choice(choice=a.value, reason=a.reason[:300]) if a.ok else None), a

    who = agent or "the group"
    head = (f"Transcript:\n{transcript_text(events, None, max_events) or '- (empty)'}\n\n{question}\nWhich option did {who} "
            f"choose? Options: {'; '.join(options)}.")
    result = _run(llm, mode, head, head + "\nReply as:\nChoice: <one option, exactly as written>\nReason: <one short sentence>",
                  Choice, parse_lines, derive_seed("choice", agent, question, seed), max_tokens)
    if isinstance(result.value, Choice):
        hit = answers.resolve_option(result.value.choice, options)
        if not hit.ok:
            return ExtractionResult(missing_reason=hit.missing_reason, method=result.method, raw=result.raw,
                                    missing_detail=f"choice {result.value.choice!r} is not one of {list(options)}: {hit.detail}")
        result.value.choice = hit.value
    return result
