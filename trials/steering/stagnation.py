"""A cheap stagnation detector (no LLM): has an agent stopped saying anything new?

Similarity of two texts is `jaccard` or `char3` (see `trials.similarity`). An action is novel
when its similarity to every earlier TALK/THINK of the same agent is below `threshold`. The agent
is stagnant when none of its last `window` actions is novel (and it has acted more than `window`
times, so there is history to compare against).

`StagnationDetector` is a precondition for interventions: `detector(world, agent) -> bool`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from trials.similarity import Method, novel_flags

if TYPE_CHECKING:  # pragma: no cover
    from trials.session.agent import Agent
    from trials.session.world import World


@dataclass
class StagnationDetector:
    window: int = 3
    threshold: float = 0.5
    method: Method = "jaccard"
    kinds: tuple[str, ...] = ("TALK", "THINK")

    def stagnant(self, texts: Sequence[str]) -> bool:
        if len(texts) <= self.window:
            return False
        return not any(novel_flags(texts, self.threshold, self.method, last=self.window))

    def __call__(self, world: "World | None", agent: "Agent | None") -> bool:
        if agent is None:
            raise ValueError("StagnationDetector is a per-agent precondition: use targets='each' or names")
        return self.stagnant([e.content for e in agent.memory.own_actions(self.kinds)])
