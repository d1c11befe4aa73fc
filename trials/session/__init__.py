"""A session: agents with personas and memory act through a small text protocol in a `World`
that delivers their messages step by step and records every event.

Lower layers only (llm, persona); steering (correction, interventions) plugs in from above.
"""

from trials.session.actions import Action, derive_seed, parse_action
from trials.session.agent import Agent, AgentConfig, Proposal
from trials.session.events import Event
from trials.session.memory import EpisodicMemory, MemoryConfig
from trials.session.world import CorrectionFactory, SimulationError, World

__all__ = ["Action", "Agent", "AgentConfig", "CorrectionFactory", "EpisodicMemory", "Event",
           "MemoryConfig", "Proposal", "SimulationError", "World", "derive_seed", "parse_action"]
