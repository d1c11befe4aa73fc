"""What a scenario receives and returns. A scenario is a module in `trials.scenarios` with:

- `METRICS: dict[str, tuple[level, scale]]` - the metrics it computes (level "agent"|"session").
- `Fields` - the types of its experiment keys, a pydantic model (`trials.scenarios.fields`);
  `OPTIONS = options_of(Fields, MATERIAL_KEY)` - its own keys.
- `MATERIAL_KEY: str | None` - the experiment key listing its material (themes, motions, ...);
  the runner picks one item per replicate so that paired arms share it.
- `run(ctx: SessionContext) -> SessionOutput` - drive one session.
- `actions_per_session(exp, group_size) -> int` - agent actions, for the cost estimate.

The runner owns seeds, pairing, the LLM views (already bound to the session seed and recorder)
and the run directory; a scenario only simulates and measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from trials.session.events import Event
from trials.persona import Persona


@dataclass
class SessionContext:
    experiment: dict[str, Any]  # resolved experiment config (name, scenario, steps, ...)
    arm: str
    arm_config: dict[str, Any]  # correction, interventions, ... (the mechanism under test)
    replicate: int
    session: str
    seed: int
    llm: Any  # trials.llm LLM bound to (seed, recorder): agent actions
    judge: Any  # trials.llm LLM bound to (seed, recorder): propositions, extraction
    personas: list[Persona]
    material: Any = None  # this replicate's theme / motion / product
    threads: int = 4  # concurrent agent calls within a step
    judge_model: str = ""
    recorder: Any = None  # the job's CallRecorder (a World binds its LLM views to it)


AGENT_KEYS = ("prose_as_talk",)


def metrics_of(scenario_metrics: dict[str, tuple[str, str]], exp: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The metrics an experiment can measure: its scenario's `METRICS` plus its own propositions
    (`experiment.propositions`, judged 0-9 at their `level`). name -> (level, scale)."""
    own = {name: (str((spec or {}).get("level", "agent")), "0-9")
           for name, spec in dict(exp.get("propositions") or {}).items()}
    return {**scenario_metrics, **own}


def check_agent_options(exp: dict[str, Any]) -> None:
    """Validate `experiment.agent` (raises ValueError naming the key and the fix)."""
    opts = exp.get("agent") or {}
    if not isinstance(opts, dict) or set(opts) - set(AGENT_KEYS):
        raise ValueError(f"experiment.agent={opts!r}: known keys are {list(AGENT_KEYS)}")
    if opts.get("prose_as_talk", "auto") not in ("auto", True, False):
        raise ValueError(f"experiment.agent.prose_as_talk={opts['prose_as_talk']!r}: use auto, true or false")


def prose_as_talk(ctx: "SessionContext") -> bool:
    """`experiment.agent.prose_as_talk`: auto = on for the local backend, whose tiny model often
    answers in prose without an action keyword (off, most of its turns end in format-error DONEs)."""
    value = (ctx.experiment.get("agent") or {}).get("prose_as_talk", "auto")
    return getattr(ctx.llm, "backend", "") == "local" if value == "auto" else bool(value)


@dataclass
class SessionOutput:
    events: list[Event] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    #: measurements to repeat on resume (their call failed): {"metric", "agent", "kind", ...}
    remeasure: list[dict[str, Any]] = field(default_factory=list)

    def add_metric(self, metric: str, value: float | None, *, agent: str = "", level: str,
                   scale: str, missing_reason: str = "", missing_detail: str = "", flag: str = "",
                   judge_k: int = 1, judge_sd: float = math.nan,
                   remeasure: dict[str, Any] | None = None) -> None:
        """Record one observation. A missing value must come with a reason from
        `trials.judging.answers.MISSING_REASONS` (free text goes to `missing_detail`); `flag` marks
        a value the parser adjusted ("clamped"); `remeasure` is the request to repeat on resume."""
        from trials.judging.answers import MISSING_REASONS

        if value is None or (isinstance(value, float) and math.isnan(value)):
            if missing_reason not in MISSING_REASONS:
                raise ValueError(f"metric {metric!r}: missing_reason {missing_reason!r} is not one of "
                                 f"{MISSING_REASONS}; put free text in missing_detail")
            value = math.nan
        else:
            missing_reason = missing_detail = ""
        self.metrics.append({"agent": agent, "metric": metric, "value": float(value),
                             "level": level, "scale": scale, "missing_reason": missing_reason,
                             "missing_detail": missing_detail[:500], "flag": flag,
                             "judge_k": judge_k, "judge_sd": judge_sd})
        if remeasure is not None and math.isnan(float(value)):
            self.remeasure.append({"metric": metric, "agent": agent, **remeasure})


def derived_reason(results: list[Any]) -> tuple[str, str]:
    """(missing_reason, detail) of a value derived from several measurements (a share of votes,
    a spread) when some inputs are missing: "call failed" first (a retry may fix it), then the
    most common reason of the others."""
    reasons = [r.missing_reason for r in results if getattr(r, "missing_reason", "")]
    if not reasons:
        return "", ""
    from collections import Counter

    top = "call failed" if "call failed" in reasons else Counter(reasons).most_common(1)[0][0]
    return top, f"{len(reasons)} of {len(results)} inputs missing ({', '.join(sorted(set(reasons)))})"
