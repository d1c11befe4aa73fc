"""Story: the LLM starts and continues a story for a session; each beat is broadcast to all agents.

    story = Story(world.judge_llm)             # any LLM view; purpose="story" is recorded
    story.start(world, "A town hall meeting about a new bus line.")
    world.run(2)
    story.continue_story(world, requirements="Something surprising happens.")

A beat is an Event(kind="story", type="START" | "CONTINUATION") in `world.events` and in every
agent's memory (agents see "Story: ..."). An empty reply is not broadcast; it is recorded as
Event(kind="story", type="FAILED", scores={"missing_reason": ...}) and `None` is returned.
One `Story` belongs to one world (it keeps that session's beats).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trials.session.agent import derive_seed
from trials.session.events import Event
from trials.session.memory import render

if TYPE_CHECKING:  # pragma: no cover
    from trials.session.world import World

SYSTEM = ("You write short story passages that move a group simulation forward. Write 2-3 plain "
          "sentences in the present tense, about the people named, with no lists and no headings.")


class Story:
    def __init__(self, llm: Any, *, max_tokens: int = 120, first_n: int = 2, last_n: int = 10):
        self.llm = llm
        self.max_tokens = max_tokens
        self.first_n, self.last_n = first_n, last_n
        self.beats: list[str] = []

    def _ask(self, world: "World", user: str, type_: str) -> Event | None:
        reply = self.llm.chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
                              purpose="story", protocol="text", max_tokens=self.max_tokens,
                              seed=derive_seed("story", world.step, len(self.beats)))
        text = " ".join((reply.text or "").split())
        if not text:
            world.record(Event(step=world.step, kind="story", type="FAILED",
                               scores={"missing_reason": "the story model returned an empty reply"}))
            return None
        self.beats.append(text)
        return world.broadcast(text, source=None, kind="story", type=type_)

    def start(self, world: "World", context: str, requirements: str = "") -> Event | None:
        user = (f"Setting: {context}\nPeople: {', '.join(world.names)}\n"
                + (f"Requirements: {requirements}\n" if requirements else "")
                + "Write the opening of the story.")
        return self._ask(world, user, "START")

    def continue_story(self, world: "World", requirements: str = "") -> Event | None:
        so_far = " ".join(self.beats[-3:]) or "(no story yet)"
        recent = render(world.events, None, first_n=self.first_n, last_n=self.last_n) or "- (nothing yet)"
        user = (f"Story so far: {so_far}\nWhat happened recently:\n{recent}\n"
                + (f"Requirements: {requirements}\n" if requirements else "")
                + "Continue the story.")
        return self._ask(world, user, "CONTINUATION")
