"""Episodic memory and event rendering.

An agent's memory is the list of `Event`s it has experienced, in order: stimuli delivered to it
(a broadcast, a THOUGHT or OBSERVATION stimulus, a story beat), its own actions, and the actions
of others that reached it (a TALK to everyone, a TALK or REACH_OUT addressed to it). Delivery is
by reference: the world appends the speaker's action `Event` itself to each receiver's memory, so
the transcript holds every message once.

The prompt never shows the whole memory: `EpisodicMemory.window()` keeps the first `first_n`
events (usually the task) and the last `last_n` (the recent conversation), with a marker for how
many were left out. `describe(event, viewer)` renders one event from the viewer's point of view
("You said: ...", "Ana said to you: ...") or, with viewer=None, from a neutral observer's (used by
judges, extraction and story continuation). Events that are bookkeeping (DONE, correction attempts,
intervention records, judge scores) render to None and never take a place in a window.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence, TypeVar

from pydantic import BaseModel, Field

from trials.session.events import Event

T = TypeVar("T")


class MemoryConfig(BaseModel):
    first_n: int = Field(2, ge=0, description="oldest events always shown (the task, the setting)")
    last_n: int = Field(8, ge=0, description="most recent events shown")
    max_chars_per_event: int = Field(300, ge=20, description="longer event texts are cut")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def shown(event: Event) -> bool:
    """Whether `describe` renders `event` (for anyone): False for bookkeeping (DONE, correction
    attempts, intervention records, judge scores, an empty story beat). Cheap: no text is built."""
    if event.kind == "action":
        return event.type in ("TALK", "THINK", "REACH_OUT")
    if event.kind == "story":
        return bool(event.content.strip())
    return event.kind == "stimulus"


def describe(event: Event, viewer: str | None = None, max_chars: int = 300) -> str | None:
    """One line for `event` as `viewer` would remember it (None = a neutral observer), or None when
    the event is bookkeeping that neither agents nor judges should see (`shown` is False)."""
    if not shown(event):
        return None
    text = _clip(event.content, max_chars)

    def who(name: str | None, default: str = "Someone") -> str:
        if name is None:
            return default
        return "You" if viewer is not None and name == viewer else name

    def to(name: str | None) -> str:
        if name is None:
            return ""
        return " to you" if viewer is not None and name == viewer else f" to {name}"

    if event.kind == "action":
        if event.type == "TALK":
            return f"{who(event.agent)} said{to(event.target)}: {text}"
        if event.type == "THINK":
            return f"{who(event.agent)} thought: {text}"
        if event.type == "REACH_OUT":
            return f"{who(event.agent)} reached out{to(event.target)}."
        return None  # DONE: the end of a turn is not worth a memory slot
    if event.kind == "stimulus":
        if event.type == "CONVERSATION":
            if event.source is None:
                return f"Announcement{to(event.agent) if event.agent else ''}: {text}"
            return f"{who(event.source)} said{to(event.agent)}: {text}"
        if event.type == "THOUGHT":
            return f"{who(event.agent, 'Someone')} thought: {text}"
        if event.type == "OBSERVATION":
            if viewer is not None and event.agent in (viewer, None):
                return f"You notice: {text}"
            return f"{event.agent + ' notices' if event.agent else 'Observation'}: {text}"
        return f"{event.type.capitalize()}: {text}"
    if event.kind == "story":
        return f"Story: {text}"
    return None


def window(events: Sequence[T], first_n: int, last_n: int,
           visible: Callable[[T], bool] = lambda e: True) -> tuple[list[T], int]:
    """The first `first_n` and last `last_n` visible events (no overlap) and how many were omitted."""
    candidates = [e for e in events if visible(e)]
    if len(candidates) <= first_n + last_n:
        return candidates, 0
    tail = candidates[len(candidates) - last_n:] if last_n else []
    return candidates[:first_n] + tail, len(candidates) - first_n - last_n


def render(events: Iterable[Event], viewer: str | None = None, *, first_n: int = 2, last_n: int = 8,
           max_chars: int = 300) -> str:
    """The windowed events as '- ...' lines, with an '(N earlier events omitted)' marker.

    Only the events kept are described (a session's memory grows with every step; the window does not)."""
    kept, omitted = window(events if isinstance(events, Sequence) else list(events), first_n, last_n, shown)
    lines = [f"- {describe(e, viewer, max_chars)}" for e in kept]
    if omitted:
        lines.insert(min(first_n, len(lines)), f"- ({omitted} earlier events omitted)")
    return "\n".join(lines)


class EpisodicMemory:
    """The events one agent has experienced; see the module docstring."""

    def __init__(self, owner: str, config: MemoryConfig | None = None):
        self.owner = owner
        self.config = config or MemoryConfig()
        self.events: list[Event] = []

    def add(self, event: Event) -> None:
        self.events.append(event)

    def __len__(self) -> int:
        return len(self.events)

    def own_actions(self, types: Sequence[str] = ("TALK", "THINK")) -> list[Event]:
        return [e for e in self.events if e.kind == "action" and e.agent == self.owner and e.type in types]

    def window(self) -> tuple[list[Event], int]:
        c = self.config
        return window(self.events, c.first_n, c.last_n, shown)

    def render(self) -> str:
        c = self.config
        return render(self.events, self.owner, first_n=c.first_n, last_n=c.last_n,
                      max_chars=c.max_chars_per_event)
