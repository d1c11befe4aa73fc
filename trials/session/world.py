"""A session: agents, message delivery, the step loop and its hooks.

Usage (the scripted backend is a deterministic test double; use {"backend": "local"} for the
embedded SmolLM2 model or an `openai` config for a real endpoint):

    from trials.llm import build_llm
    from trials.persona import library_path, load_folder
    from trials.session.world import World

    llm = build_llm({"backend": "scripted"})
    world = World(llm, seed=1)
    for persona in load_folder(library_path("general"))[:2]:
        world.add_agent(persona, goals=["Propose ideas for a new travel app feature."])
    world.broadcast("Brainstorm: what one feature should a travel app add next?")
    world.run(2)
    print(world.transcript())

On the tiny local model also pass `agent_config=AgentConfig(prose_as_talk=True)` (trials.session.agent):
it rarely keeps to the action format.

Semantics (what scenarios rely on):
- `World(llm, seed=..., recorder=...)` takes its own view of the LLM (`llm.bind(seed, recorder)`),
  so two worlds share nothing; `judge_llm` (default: the same LLM) scores correction checks and
  LLM preconditions. `correction=CorrectionConfig(...)` (trials.steering) turns on action correction for every agent.
- `broadcast(text, source)` reaches every agent; `tell(name, text, type=...)` one agent (a
  CONVERSATION, THOUGHT or OBSERVATION stimulus). Both record an `Event` in `world.events`.
- `run(steps)`: per step, `before_step` hooks (interventions, story) run, then all agents act
  concurrently (at most `max_workers` at once: the session's thread and helper threads
  of one process-wide pool, `trials.session.threads`; LLM calls are I/O bound). Their events are then appended and delivered in
  a seeded order -- agents shuffled by (seed, step), then each agent's actions in order -- so the
  transcript is identical for a given seed whatever the thread timing. A TALK reaches everyone else,
  a "TALK to X" only X, a REACH_OUT only its target; THINK and DONE reach no one. Messages sent
  in step k are read in step k+1. Then the `after_step` hooks run.
- Per-call seeds derive from (agent name, step, action index, attempt) on top of the world seed,
  so a rerun with the same seed repeats every request (and, on the scripted backend, every reply).
- The session `name` (which may contain the arm's name) is never put into any prompt.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence

from trials.session.agent import Agent, AgentConfig, derive_seed
from trials.session.events import Event
from trials.session.memory import describe
from trials.session.threads import overlap_width, run_all

if TYPE_CHECKING:  # pragma: no cover
    from trials.persona import Persona

log = logging.getLogger(__name__)

Hook = Callable[["World", int], Any]
DEFAULT_KINDS = ("stimulus", "action", "story", "intervention")


class CorrectionFactory(Protocol):
    """What `World(correction=...)` takes: `trials.steering.CorrectionConfig` (the session layer
    does not import steering; steering plugs in from above)."""

    def build(self, judge_llm: Any) -> Any: ...


class SimulationError(RuntimeError):
    """An agent could not act (e.g. the LLM failed after its retries); earlier events are kept."""


class World:
    def __init__(self, llm: Any, *, seed: int = 0, recorder: Any = None, name: str = "session",
                 agent_config: AgentConfig | None = None, judge_llm: Any = None,
                 correction: "CorrectionFactory | None" = None, max_workers: int = 8):
        if recorder is None:
            from trials.llm import CallRecorder
            recorder = CallRecorder()
        self.name = name
        self.seed = seed
        self.recorder = recorder
        self.llm = llm.bind(seed=seed, recorder=recorder)
        self.judge_llm = (judge_llm or llm).bind(seed=derive_seed(seed, "judge"), recorder=recorder)
        self.agent_config = agent_config or AgentConfig()
        self.corrector = None
        if correction is not None:
            self.corrector = correction.build(self.judge_llm)
        self.max_workers = max_workers
        self.agents: list[Agent] = []
        self.events: list[Event] = []
        self.step = 0  # the index of the next step to run (events outside `run` carry this step)
        self.before_step: list[Hook] = []
        self.after_step: list[Hook] = []

    # ---------------------------------------------------------------- population
    def add_agent(self, persona: "Persona", goals: Sequence[str] = ()) -> Agent:
        if any(a.name == persona.name for a in self.agents):
            raise ValueError(f"World {self.name!r}: two agents named {persona.name!r}; names must be unique")
        agent = Agent(persona, self.llm, goals=goals, config=self.agent_config, corrector=self.corrector)
        self.agents.append(agent)
        for a in self.agents:
            a.peers = [b.name for b in self.agents if b is not a]
        return agent

    def agent(self, name: str) -> Agent:
        for a in self.agents:
            if a.name == name:
                return a
        raise KeyError(f"World {self.name!r} has no agent {name!r}; agents: {[a.name for a in self.agents]}")

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.agents]

    def add_hook(self, hook: Hook, when: str = "before_step") -> None:
        {"before_step": self.before_step, "after_step": self.after_step}[when].append(hook)

    # ---------------------------------------------------------------- stimuli
    def record(self, *events: Event) -> None:
        self.events.extend(events)

    def broadcast(self, text: str, source: str | None = "Facilitator", *, kind: str = "stimulus",
                  type: str = "CONVERSATION") -> Event:
        """One event, delivered to every agent's memory (kind="story" for story beats)."""
        event = Event(step=self.step, kind=kind, type=type, content=text, source=source)
        self.record(event)
        for a in self.agents:
            a.receive(event)
        return event

    def tell(self, name: str, text: str, source: str | None = None, type: str = "CONVERSATION") -> Event:
        """A stimulus for one agent: type CONVERSATION (from `source`), THOUGHT or OBSERVATION."""
        event = Event(step=self.step, kind="stimulus", type=type, content=text, agent=name, source=source)
        self.agent(name).receive(event)
        self.record(event)
        return event

    # ---------------------------------------------------------------- the loop
    def order(self, step: int) -> list[Agent]:
        """The seeded delivery order of the agents for a step."""
        agents = list(self.agents)
        random.Random(derive_seed(self.seed, "order", step)).shuffle(agents)
        return agents

    def _deliver(self, event: Event) -> None:
        if event.kind != "action" or event.type not in ("TALK", "REACH_OUT"):
            return
        if event.target is not None:
            if event.target in self.names:
                self.agent(event.target).receive(event)
            else:
                log.warning("%s: %s addressed unknown %r; not delivered", self.name, event.agent, event.target)
            return
        for a in self.agents:
            if a.name != event.agent:
                a.receive(event)

    def run_step(self) -> list[Event]:
        step, start = self.step, len(self.events)
        for hook in self.before_step:
            hook(self, step)
        order = self.order(step)
        # at most max_workers agents at once (this thread and helpers from the process's shared
        # pool), one at a time when the endpoints answer too fast for overlapping to gain anything
        width = overlap_width(self.max_workers, (self.llm, self.judge_llm))
        outcomes = run_all(lambda a: a.act(step), order, width)
        failures = []
        for agent, (ok, produced) in zip(order, outcomes):
            if not ok:  # re-raised below, after keeping the others' work
                failures.append((agent, produced))
                continue
            self.record(*produced)
            for event in produced:
                self._deliver(event)
        self.step = step + 1
        if failures:
            agent, exc = failures[0]
            raise SimulationError(f"session {self.name!r} step {step}: agent {agent.name!r} failed: {type(exc).__name__}: {exc}") from exc
        for hook in self.after_step:
            hook(self, step)
        return self.events[start:]

    def run(self, steps: int) -> list[Event]:
        """Run `steps` steps; returns the events they produced (also in `self.events`)."""
        start = len(self.events)
        for _ in range(steps):
            self.run_step()
        return self.events[start:]

    # ---------------------------------------------------------------- output
    def actions(self, agent: str | None = None, types: Iterable[str] = ("TALK", "THINK")) -> list[Event]:
        types = tuple(types)
        return [e for e in self.events if e.kind == "action" and e.type in types
                and (agent is None or e.agent == agent)]

    def transcript(self, kinds: Sequence[str] = DEFAULT_KINDS) -> str:
        """A readable transcript: one line per event of the given kinds."""
        lines = []
        for e in self.events:
            if e.kind not in kinds:
                continue
            if e.kind == "intervention":
                text = f"(intervention {e.type} -> {e.agent or 'all'}: {e.content})"
            elif e.kind == "correction":
                text = f"(correction attempt {e.attempt} by {e.agent}: {e.content} {e.scores})"
            elif e.kind == "action" and e.type == "DONE":
                text = f"{e.agent}: DONE" + (f" ({e.content})" if e.content else "") + \
                       (f" [format error: {e.scores['format_error']}]" if e.scores and "format_error" in e.scores else "")
            elif e.kind == "stimulus" and e.agent and e.type in ("THOUGHT", "OBSERVATION"):
                text = f"({e.agent} {'is made to think' if e.type == 'THOUGHT' else 'notices'}: {e.content})"
            else:
                text = describe(e, None, max_chars=10_000) or f"{e.type}: {e.content}"
            lines.append(f"[{e.step}] {text}")
        return "\n".join(lines)
