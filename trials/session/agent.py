"""An agent: a persona, an episodic memory, and one LLM call per action.

Stimuli in: `listen` (a CONVERSATION from someone), `think` (a THOUGHT put into its mind),
`observe` (an OBSERVATION of the context), `receive` (any event the world delivers, e.g. another
agent's TALK). Actions out: `act(step)` asks the LLM for one action at a time, in the plain-text
protocol below, until the agent says DONE, repeats itself, or reaches `max_actions` for the turn.

    TALK: <what you say>          TALK to <Name>: <what you say to one person>
    THINK: <a private thought>    REACH_OUT: <Name>          DONE

The prompt: system = who you are (persona text) + goals + who else is here + the format; user =
the memory window (first n + last n events) + "What do you do next?". The reply is parsed
tolerantly (`parse_action`: case, missing colon, quotes, markdown, a "Name:" speaker prefix,
preamble lines; the first action line wins). If nothing parses, the agent is re-asked once with a
one-line reminder; if that fails too the turn ends with a DONE event that carries
`scores={"format_error": <reason>}` -- never a crash, never a silent drop. For tiny models,
`AgentConfig(prose_as_talk=True)` takes a keyword-less reply as a TALK of its first sentences
instead (no re-ask), marked `scores={"format_repair": "prose_as_talk"}` on the action event.

Every action `Event` records `prompt_tokens` / `prompt_chars` summed over the calls that produced
it (a format re-ask adds a call). With an action corrector (`trials.steering.correction`) each
TALK/THINK candidate is judged and possibly regenerated before it becomes the action.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Sequence

from pydantic import BaseModel, Field

from trials.llm.base import add_tokens
from trials.persona.prompt import prompt_text
from trials.session.actions import (  # noqa: F401  (re-exported: the agent's public protocol)
    FORMAT, REMINDER, Action, ActionType, derive_seed, first_sentences, parse_action, resolve_name,
)
from trials.session.events import Event
from trials.session.memory import EpisodicMemory, MemoryConfig

if TYPE_CHECKING:  # pragma: no cover
    from trials.persona import Persona

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ agent
class AgentConfig(BaseModel):
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    max_actions: int = Field(3, ge=1, description="actions per turn before the turn ends")
    persona_detail: Literal["brief", "full"] = "brief"
    max_tokens: int = Field(60, ge=8, description="tokens per action reply")
    temperature: float | None = None  # None = the LLM's configured temperature
    prose_as_talk: bool = Field(False, description=(
        "tiny-model mode: a reply without an action keyword is taken as a TALK of its first line "
        "(no re-ask), recorded on the event as scores={'format_repair': 'prose_as_talk'}"))


@dataclass
class Proposal:
    """A candidate action and what it cost (before correction decides to keep it)."""

    action: Action
    text: str
    calls: int
    prompt_tokens: int | None  # None: unknown (an endpoint that reports no usage)
    prompt_chars: int
    format_error: str | None = None
    scores: dict[str, Any] | None = None  # put on the action event (e.g. why correction gave up)


class Agent:
    def __init__(self, persona: "Persona", llm: Any, *, goals: Sequence[str] = (),
                 config: AgentConfig | None = None, corrector: Any = None):
        self.persona = persona
        self.name: str = persona.name
        self.llm = llm
        self.goals = list(goals)
        self.config = config or AgentConfig()
        self.memory = EpisodicMemory(self.name, self.config.memory)
        self.corrector = corrector  # trials.steering.correction.ActionCorrector or None
        self.peers: list[str] = []  # names of the other agents (set by the world)

    def __repr__(self) -> str:
        return f"Agent({self.name!r})"

    # -------------------------------------------------------------- stimuli
    def _stimulus(self, type_: str, content: str, step: int, source: str | None) -> Event:
        event = Event(step=step, kind="stimulus", type=type_, content=content, agent=self.name, source=source)
        self.memory.add(event)
        return event

    def listen(self, content: str, source: str | None = None, step: int = 0) -> Event:
        return self._stimulus("CONVERSATION", content, step, source)

    def think(self, content: str, step: int = 0, source: str | None = None) -> Event:
        return self._stimulus("THOUGHT", content, step, source)

    def observe(self, content: str, step: int = 0, source: str | None = None) -> Event:
        return self._stimulus("OBSERVATION", content, step, source)

    def receive(self, event: Event) -> None:
        """An event delivered as is (another agent's action, a broadcast, a story beat)."""
        self.memory.add(event)

    # -------------------------------------------------------------- prompting
    def system_prompt(self) -> str:
        parts = [f"You are {self.name}. Act as this person would, in the first person.",
                 "About you:\n" + prompt_text(self.persona, self.config.persona_detail).strip()]
        if self.goals:
            parts.append("Your goals: " + "; ".join(self.goals))
        if self.peers:
            parts.append("Others here: " + ", ".join(self.peers) + ".")
        parts.append(FORMAT)
        return "\n\n".join(parts)

    def messages(self, feedback: str | None = None) -> list[dict[str, str]]:
        history = self.memory.render() or "- Nothing has happened yet."
        user = f"What happened so far:\n{history}\n\n"
        if feedback:
            user += feedback.strip() + "\n\n"
        return [{"role": "system", "content": self.system_prompt()},
                {"role": "user", "content": user + "What do you do next?"}]

    def propose(self, step: int, index: int, *, attempt: int = 0, feedback: str | None = None) -> Proposal:
        """One candidate action: one LLM call, plus one re-ask when the reply does not parse."""
        messages = self.messages(feedback)
        calls = chars = 0
        tokens: int | None = 0
        text = ""
        for retry in range(2):
            reply = self.llm.chat(messages, purpose="action", protocol="action",
                                  max_tokens=self.config.max_tokens, temperature=self.config.temperature,
                                  seed=derive_seed(self.name, step, index, attempt, retry))
            calls += 1
            tokens = add_tokens(tokens, reply.usage.tokens_in)
            chars += reply.usage.prompt_chars
            text = reply.text or ""
            action = parse_action(text, self.peers, self.name)
            if action is not None:
                return Proposal(action, text, calls, tokens, chars)
            if self.config.prose_as_talk and (prose := first_sentences(text)):
                return Proposal(Action("TALK", prose), text, calls, tokens, chars,
                                scores={"format_repair": "prose_as_talk"})
            log.info("%s: unparseable action reply %r (retry %d)", self.name, text[:120], retry)
            messages = [*messages, {"role": "assistant", "content": text}, {"role": "user", "content": REMINDER}]
        reason = f"no action in reply after a re-ask: {text[:200]!r}"
        return Proposal(Action("DONE"), text, calls, tokens, chars, format_error=reason,
                        scores={"format_error": reason})

    # -------------------------------------------------------------- acting
    def _event(self, step: int, p: Proposal, **extra: Any) -> Event:
        a = p.action
        return Event(step=step, kind="action", type=a.type, content=a.content, agent=self.name,
                     target=a.target, prompt_tokens=p.prompt_tokens, prompt_chars=p.prompt_chars,
                     scores=p.scores, **extra)

    def act(self, step: int, max_actions: int | None = None) -> list[Event]:
        """Act until DONE, a repeated action, or the cap. Returns every event produced (actions,
        correction attempts, the DONE records); actions are also added to the agent's memory."""
        cap = max_actions or self.config.max_actions
        out: list[Event] = []
        seen: set[tuple[str, str, str | None]] = set()
        for index in range(cap):
            proposal = self.propose(step, index)
            if proposal.format_error:
                out.append(self._event(step, proposal))
                break
            if self.corrector is not None and proposal.action.type in self.corrector.kinds:
                proposal, attempts = self.corrector.review(self, step, index, proposal)
                out.extend(attempts)
            if proposal.action.key() in seen:
                out.append(Event(step=step, kind="action", type="DONE", agent=self.name,
                                 content=f"repeated action ended the turn: {proposal.action.line()}",
                                 scores={"repeated_action": True}, prompt_tokens=proposal.prompt_tokens,
                                 prompt_chars=proposal.prompt_chars))
                break
            seen.add(proposal.action.key())
            event = self._event(step, proposal)
            self.memory.add(event)
            out.append(event)
            if proposal.action.type == "DONE":
                break
        return out
