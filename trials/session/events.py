"""Transcript records: every stimulus, action, correction attempt, intervention, story beat and
judge score of a session becomes one `Event`. The runner adds `arm`, `replicate`, `session` and
writes them to `transcript.jsonl` (the run-directory contract)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

EventKind = Literal["stimulus", "action", "correction", "intervention", "story", "judge"]


class Event(BaseModel):
    model_config = ConfigDict(extra="allow")

    step: int
    kind: EventKind
    type: str  # e.g. TALK / THINK / DONE / REACH_OUT, CONVERSATION / OBSERVATION, a proposition name
    content: str = ""
    agent: str | None = None  # who acted, or who received the stimulus
    source: str | None = None  # who a stimulus came from (None = the environment / experimenter)
    target: str | None = None  # the addressee of an action, None = everyone
    attempt: int | None = None  # correction attempt number (0 = the first candidate)
    scores: dict[str, Any] | None = None  # judge scores attached to this event
    prompt_tokens: int | None = None  # prompt size of the LLM call that produced an action
    prompt_chars: int | None = None  # the same in characters (summed over a format re-ask)

    def record(self, **context: Any) -> dict[str, Any]:
        """A flat dict for transcript.jsonl with run context (arm, replicate, session) first."""
        return {**context, **self.model_dump()}
