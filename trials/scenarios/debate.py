"""debate: a politically diverse group debates a motion (the paper's debating design): one
opening step where everyone states a position, then `steps` steps of debate. Opinions are read
from the transcript as 1-5 agreement with the motion, before and after the debate.
Measured: persona adherence, self-consistency, fluency and agreement (before/after) per agent;
task completion, divergence and the spread of final opinions per session."""

from __future__ import annotations

import statistics
from typing import Any

from trials.scenarios.base import SessionContext, SessionOutput, derived_reason
from trials.scenarios.fields import GroupFields, Material, options_of, whole
from trials.scenarios.brainstorm import make_world
from trials.scenarios.measures import judge_metrics

#: an agent who says nothing (no TALK/THINK) is not judged, extracted or checked (the estimate's low case)
SILENT_AGENTS_UNMEASURED = True
METRICS = {
    "persona_adherence": ("agent", "0-9"), "self_consistency": ("agent", "0-9"),
    "fluency": ("agent", "0-9"), "agreement_before": ("agent", "1-5"), "agreement_after": ("agent", "1-5"),
    "task_completion": ("session", "0-9"), "divergence": ("session", "0-9"),
    "opinion_spread": ("session", "real"),
}
MATERIAL_KEY = "motions"


class Fields(GroupFields):
    """debate's experiment keys (trials.scenarios.fields)."""

    motions: Material = None
    opening_steps: whole(0) = None


OPTIONS = options_of(Fields, MATERIAL_KEY)
TASK = "Debate the motion below. Argue for your own view and answer the others' arguments."


def actions_per_session(exp: dict[str, Any], group_size: int) -> int:
    steps = int(exp.get("steps") or 1) + int(exp.get("opening_steps", 1))
    return int(group_size * steps * min(1.5, int(exp.get("max_actions", 2))))


def rederive(votes: list[float]) -> dict[str, float | None]:
    """Session metrics derived from the agents' final votes: the spread (population SD) of opinions."""
    return {"opinion_spread": statistics.pstdev(votes) if len(votes) >= 2 else None}


DERIVED_FROM = {"opinion_spread": "agreement_after"}


def extractions_per_session(exp: dict[str, Any], group_size: int) -> int:
    """Vote extractions (for the estimate): one per agent before and/or after the debate."""
    m = exp.get("metrics") or METRICS
    return group_size * (("agreement_before" in m) + ("agreement_after" in m or "opinion_spread" in m))


def _agreement(ctx: SessionContext, out: SessionOutput, world: Any, metric: str, motion: str) -> list[Any]:
    from trials.judging.extract import extract_vote

    results = []
    for agent in world.agents:
        r = extract_vote(ctx.judge, world.events, agent=agent.name, seed=ctx.seed,
                         question=f"How much do you agree with the motion: {motion}?")
        value = float(r.value.vote) if r.ok else None
        out.add_metric(metric, value, agent=agent.name, level="agent", scale="1-5",
                       missing_reason=r.missing_reason, missing_detail=r.missing_detail, remeasure=r.remeasure)
        results.append(r)
    return results


def run(ctx: SessionContext) -> SessionOutput:
    exp, motion = ctx.experiment, str(ctx.material)
    metrics = list(exp.get("metrics") or METRICS)
    out = SessionOutput()
    task = f"{TASK} Motion: {motion}"
    world = make_world(ctx, "Take part in the debate and defend your own opinion honestly.", task)
    world.broadcast(f"{TASK}\nMotion: {motion}\nFirst, state your position in one or two sentences.")
    world.run(int(exp.get("opening_steps", 1)))
    if "agreement_before" in metrics:
        _agreement(ctx, out, world, "agreement_before", motion)
    world.broadcast("Now debate: reply to the others' arguments and try to convince them.")
    steps = int(exp.get("steps") or 1)
    world.run(steps)
    if "agreement_after" in metrics or "opinion_spread" in metrics:
        results = _agreement(ctx, out, world, "agreement_after", motion)
        if "agreement_after" not in metrics:
            out.metrics = [m for m in out.metrics if m["metric"] != "agreement_after"]
        if "opinion_spread" in metrics:
            reason, detail = derived_reason(results)
            votes = [float(r.value.vote) for r in results if r.ok]
            spread = rederive(votes)["opinion_spread"] if reason != "call failed" else None
            out.add_metric("opinion_spread", spread, level="session", scale="real",
                           missing_reason=reason or "no answer", missing_detail=detail or "fewer than 2 votes",
                           remeasure={"kind": "derived"} if reason == "call failed" else None)
    judge_metrics(ctx, out, world, metrics, task, step=world.step)
    out.events = [*world.events, *out.events]
    return out
