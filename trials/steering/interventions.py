"""Interventions: when a precondition holds, apply an effect to the target agent(s).

    iv = Intervention("variety", preconditions=[has_actions(3), StagnationDetector(window=3)],
                      effect=think("Review your ideas so far and propose a completely different one."),
                      targets="each", cooldown=2)
    world.add_hook(iv)                       # checked before every step

- preconditions: all must hold, checked in order (put cheap ones first). Each is a Python predicate
  `f(world, agent) -> bool` (agent is None for targets="session") or a `Proposition` judged by the
  LLM (purpose="intervention"; it holds when score >= the proposition's threshold).
- effect: `think(text)` / `talk(text, source)` a stimulus for the target agent (all agents for a
  session-level intervention), `broadcast(text, source)`, or `story_continuation(story)`.
  Texts may use {agent}.
- targets: "each" (every agent, checked separately), "session" (checked once), or a list of names.
- cooldown: after firing for a target at step s it is not checked again for that target until
  step s + cooldown + 1 (cooldown=0: may fire every step); `max_fires` caps firings per target.
- Trace: each firing is Event(kind="intervention", type=<name>, agent=<target or None>,
  content=<what was injected>, scores={"fires": n, <proposition>: score}); `fires` counts per
  target and `checks` counts precondition evaluations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence, Union

from trials.session.events import Event
from trials.judging.judge import Proposition, judge, placeholder_problem

if TYPE_CHECKING:  # pragma: no cover
    from trials.session.agent import Agent
    from trials.steering.story import Story
    from trials.session.world import World

Predicate = Callable[["World", "Agent | None"], bool]
Precondition = Union[Predicate, Proposition]
#: effect(world, agent or None, step) -> the events it injected
Effect = Callable[["World", "Agent | None", int], list[Event]]

VARIETY_TEXT = ("Look back at the ideas you have proposed so far. Now propose a completely different "
                "idea, unlike any of them.")


def _fill(text: str, agent: "Agent | None") -> str:
    return text.replace("{agent}", agent.name) if agent is not None else text


def _tell_each(text: str, **how: Any) -> Effect:
    """A stimulus for the target agent (every agent for a session-level intervention)."""
    def apply(world: "World", agent: "Agent | None", step: int) -> list[Event]:
        who = [agent] if agent is not None else world.agents
        return [world.tell(a.name, _fill(text, a), **how) for a in who]
    return apply


def think(text: str) -> Effect:
    return _tell_each(text, type="THOUGHT")


def talk(text: str, source: str = "Facilitator") -> Effect:
    return _tell_each(text, source=source)


def broadcast(text: str, source: str | None = "Facilitator") -> Effect:
    def apply(world: "World", agent: "Agent | None", step: int) -> list[Event]:
        return [world.broadcast(_fill(text, agent), source=source)]
    return apply


def story_continuation(story: "Story", requirements: str = "") -> Effect:
    def apply(world: "World", agent: "Agent | None", step: int) -> list[Event]:
        event = story.continue_story(world, requirements)
        return [event] if event is not None else []
    return apply


def has_actions(n: int) -> Predicate:
    """Holds once the agent has made at least n TALK/THINK actions (a cheap gate)."""
    return lambda world, agent: agent is not None and len(agent.memory.own_actions()) >= n


class Intervention:
    def __init__(self, name: str, preconditions: Precondition | Sequence[Precondition], effect: Effect, *,
                 targets: str | Sequence[str] = "each", cooldown: int = 0, max_fires: int | None = None,
                 llm: Any = None):
        self.name = name
        self.preconditions = list(preconditions) if isinstance(preconditions, (list, tuple)) else [preconditions]
        self.effect = effect
        self.targets = targets
        self.cooldown = cooldown
        self.max_fires = max_fires
        self.llm = llm  # for Proposition preconditions; default: the world's judge LLM
        self.fires: dict[str, int] = {}
        self.last_fired: dict[str, int] = {}
        self.checks = 0

    def _targets(self, world: "World") -> list["Agent | None"]:
        if self.targets == "session":
            return [None]
        if self.targets == "each":
            return list(world.agents)
        return [world.agent(n) for n in self.targets]

    def _holds(self, world: "World", agent: "Agent | None", step: int) -> tuple[bool, dict[str, Any]]:
        scores: dict[str, Any] = {}
        for pre in self.preconditions:
            self.checks += 1
            if isinstance(pre, Proposition):
                r = judge(pre, self.llm or world.judge_llm, world=world, agent=agent.name if agent else None,
                          purpose="intervention", salt=("intervention", self.name, step))
                scores[pre.name] = r.score
                if not r.passed:
                    return False, scores
            elif not pre(world, agent):
                return False, scores
        return True, scores

    def __call__(self, world: "World", step: int) -> list[Event]:
        """Check every target and fire where the preconditions hold (a world step hook)."""
        out: list[Event] = []
        for agent in self._targets(world):
            key = agent.name if agent is not None else ""
            if key in self.last_fired and step <= self.last_fired[key] + self.cooldown:
                continue
            if self.max_fires is not None and self.fires.get(key, 0) >= self.max_fires:
                continue
            holds, scores = self._holds(world, agent, step)
            if not holds:
                continue
            self.fires[key] = self.fires.get(key, 0) + 1
            self.last_fired[key] = step
            record = Event(step=step, kind="intervention", type=self.name, agent=agent.name if agent else None,
                           scores={"fires": self.fires[key], **scores})
            world.record(record)  # the record first, then the stimuli it caused
            injected = self.effect(world, agent, step)
            record.content = " | ".join(e.content for e in injected)
            out.extend([record, *injected])
        return out

    @property
    def total_fires(self) -> int:
        return sum(self.fires.values())


def no_new_ideas(k: int = 4, threshold: int = 7) -> Proposition:
    """The paper's LLM precondition for variety: the agent has proposed no new idea lately."""
    return Proposition(name="no_new_ideas", first_n=0, last_n=k, threshold=threshold,
                       claim="In these recent events, {agent} proposed no new idea: {agent} only repeated, "
                             "agreed with or elaborated ideas that were already mentioned.")


def variety_intervention(k: int = 3, *, precondition: "str | Proposition" = "stagnation", cooldown: int = 2,
                         text: str = VARIETY_TEXT, similarity: float = 0.5, llm: Any = None) -> Intervention:
    """The paper's variety intervention: an agent that has not proposed a new idea for k of its
    actions is told to review its ideas and propose a completely different one.
    precondition="stagnation" uses the no-LLM detector; "llm" judges `no_new_ideas(2 * k)`; a
    `Proposition` (e.g. an experiment's own, from config) is judged and holds at >= its threshold."""
    from trials.steering.stagnation import StagnationDetector

    problem = placeholder_problem(text, ["agent"], "text")  # _fill fills {agent} only
    if problem:
        raise ValueError(problem)
    if isinstance(precondition, Proposition):
        pre: Precondition = precondition
    elif precondition == "stagnation":
        pre = StagnationDetector(window=k, threshold=similarity)
    elif precondition == "llm":
        pre = no_new_ideas(2 * k)
    else:
        raise ValueError(f"variety precondition must be 'stagnation' or 'llm', got {precondition!r}")
    return Intervention("variety", [has_actions(k), pre], think(text), targets="each",
                        cooldown=cooldown, llm=llm)
