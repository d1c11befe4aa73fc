"""The paper's metrics over a finished session, judged by the judge LLM (0-9, blind to the arm):
agent-level persona adherence, self-consistency, fluency; session-level task completion,
divergence (trials.judging.propositions via trials.judging.judge), and the number of unique ideas (trials.judging.extract,
then de-duplicated). A reply without a usable score becomes a missing value with its reason,
never a skipped row.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from trials.session.events import Event
from trials.session.threads import map_all, overlap_width
from trials.scenarios.base import SessionContext, SessionOutput

AGENT_METRICS = ("persona_adherence", "self_consistency", "fluency")
SESSION_METRICS = ("task_completion", "divergence")


def said(events: Sequence[Event], agent: str | None = None) -> list[Event]:
    return [e for e in events if e.kind == "action" and e.type in ("TALK", "THINK") and e.content
            and (agent is None or e.agent == agent)]


def judgement_event(result: Any, metric: str) -> dict[str, Any]:
    """The content and scores of the judge event of a JudgeResult (also for a re-measurement)."""
    value = result.weighted_score if result.weighted_score is not None else result.mean
    return {"content": result.justification or result.missing_reason,
            "scores": {metric: value, "score": result.score, "samples": result.samples}}


def vote_event(result: Any) -> dict[str, Any]:
    """The content and scores of the judge event of an extracted vote (an ExtractionResult)."""
    return {"content": result.value.reason if result.ok else result.missing_reason,
            "scores": {"vote": float(result.value.vote) if result.ok else None, "method": result.method}}


def ideas_event(result: Any) -> dict[str, Any]:
    """The content and scores of the judge event of a successful idea extraction."""
    from trials.judging.extract import dedupe_ideas

    kept = dedupe_ideas(result.value)
    return {"content": "; ".join(i.name for i in kept)[:4000],
            "scores": {"ideas": len(kept), "extracted": len(result.value), "method": result.method}}


def record_judgement(ctx: SessionContext, out: SessionOutput, result: Any, metric: str, step: int,
                     agent: str = "") -> None:
    """A judge result (`trials.judging.judge.JudgeResult`) as a judge event and a metric row, with
    its k samples (judge_k, judge_sd) and, when missing, its reason."""
    value = result.weighted_score if result.weighted_score is not None else result.mean
    out.events.append(Event(step=step, kind="judge", type=metric, agent=agent or None,
                            **judgement_event(result, metric)))
    out.add_metric(metric, value, agent=agent, level="session" if not agent else "agent", scale="0-9",
                   missing_reason=result.missing_reason, missing_detail=result.missing_detail, flag=result.flag,
                   judge_k=max(1, len(result.samples)), judge_sd=result.sd if result.sd is not None else math.nan,
                   remeasure=result.remeasure)


def judge_metrics(ctx: SessionContext, out: SessionOutput, world: Any, metrics: Sequence[str],
                  task: str, step: int) -> None:
    """Agent- and session-level propositions (trials.judging.propositions) over the finished world. The
    judge calls are independent, so they run on `ctx.threads` threads; results are recorded in a
    fixed order (agents, then session metrics) whatever the timing."""
    from trials.judging.judge import judge
    from trials.judging.propositions import from_config, own_propositions, standard

    k = int(ctx.experiment.get("judge_k", 1))
    own = own_propositions(ctx.experiment)
    variables = {"task": task, "material": str(ctx.material)}

    def level(m: str) -> str:
        if m in own:
            return str(own[m].get("level", "agent"))
        return "agent" if m in AGENT_METRICS else "session" if m in SESSION_METRICS else ""

    def prop(m: str) -> Any:
        if m in own:
            return from_config(m, own[m], **variables)
        return standard(m, task=task) if m == "task_completion" else standard(m)

    tasks: list[tuple[str, str, Any]] = []  # (metric, agent or "", proposition or None = missing)
    for agent in world.agents:
        for metric in (m for m in metrics if level(m) == "agent"):
            tasks.append((metric, agent.name, prop(metric) if said(world.events, agent.name) else None))
    for metric in (m for m in metrics if level(m) == "session"):
        tasks.append((metric, "", prop(metric) if said(world.events) else None))

    def one(item: tuple[int, tuple[str, str, Any]]) -> Any:
        i, (metric, agent, prop) = item
        if prop is None:
            return None
        return judge(prop, ctx.judge, world=world, agent=agent or None, k=k, salt=i, on_error="missing")

    results = map_all(one, list(enumerate(tasks)), overlap_width(max(1, ctx.threads), (ctx.judge,)))
    for (metric, agent, _), result in zip(tasks, results):
        if result is None:
            out.add_metric(metric, None, agent=agent, level="agent" if agent else "session", scale="0-9",
                           missing_reason="no answer",
                           missing_detail="agent produced no TALK/THINK action" if agent else "no actions")
        else:
            record_judgement(ctx, out, result, metric, step, agent)


def count_ideas(ctx: SessionContext, out: SessionOutput, events: Sequence[Event], step: int,
                topic: str = "") -> None:
    """Unique ideas of the session: one extraction call (trials.judging.extract), then de-duplication."""
    from trials.judging.extract import extract_ideas

    if not said(events):
        out.add_metric("ideas", None, level="session", scale="count", missing_reason="no answer",
                       missing_detail="no actions")
        return
    result = extract_ideas(ctx.judge, events, topic=topic, seed=ctx.seed,
                           max_tokens=int(ctx.experiment.get("extract_max_tokens", 250)))
    if not result.ok:
        out.add_metric("ideas", None, level="session", scale="count", missing_reason=result.missing_reason,
                       missing_detail=f"extraction failed: {result.missing_detail}", remeasure=result.remeasure)
        return
    event = ideas_event(result)
    out.events.append(Event(step=step, kind="judge", type="ideas", **event))
    out.add_metric("ideas", event["scores"]["ideas"], level="session", scale="count")
