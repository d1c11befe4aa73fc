"""market_research: a product pitch is put to a population; every agent reacts on its own (one
step, nobody hears the others) and its answer is read as a 1-5 purchase intent with a reason (the
paper's market-research design). Measured: vote, persona adherence, self-consistency, fluency per
agent; the share of positive votes (4-5) per session."""

from __future__ import annotations

from trials.session.events import Event
from trials.scenarios.base import SessionContext, SessionOutput, derived_reason
from trials.scenarios.fields import GroupFields, Material, Prompt, options_of
from trials.scenarios.brainstorm import actions_per_session, make_world  # noqa: F401 (same estimate)
from trials.scenarios.measures import judge_metrics, vote_event

#: an agent who says nothing (no TALK/THINK) is not judged, extracted or checked (the estimate's low case)
SILENT_AGENTS_UNMEASURED = True
METRICS = {
    "vote": ("agent", "1-5"), "persona_adherence": ("agent", "0-9"),
    "self_consistency": ("agent", "0-9"), "fluency": ("agent", "0-9"),
    "positive_share": ("session", "real"),
}
MATERIAL_KEY = "products"


class Fields(GroupFields):
    """market_research's experiment keys (trials.scenarios.fields)."""

    products: Material = None
    question: Prompt = None
    instruction: Prompt = None


OPTIONS = options_of(Fields, MATERIAL_KEY)
QUESTION = "Would you buy this product?"
INSTRUCTION = "Say yes or no and why, in one or two sentences."  # experiment.instruction overrides it


def votes_of(results: list) -> list[float]:
    return [float(r.value.vote) for r in results if r.ok]


def rederive(votes: list[float]) -> dict[str, float | None]:
    """Session metrics derived from the agents' votes (also used when votes are re-measured):
    the share of positive votes (4-5) among the agents who gave one."""
    return {"positive_share": sum(v >= 4 for v in votes) / len(votes) if votes else None}


DERIVED_FROM = {"positive_share": "vote"}


def extractions_per_session(exp: dict, group_size: int) -> int:
    """Vote extractions (for the estimate): one per agent."""
    return group_size


def run(ctx: SessionContext) -> SessionOutput:
    from trials.judging.extract import extract_vote

    exp = ctx.experiment
    question = str(exp.get("question") or QUESTION)
    metrics = list(exp.get("metrics") or METRICS)
    out = SessionOutput()
    world = make_world(ctx, "Give your honest opinion as a potential customer.", question)
    instruction = str(exp.get("instruction") or INSTRUCTION)
    world.broadcast(f"Here is a new product.\n{ctx.material}\n{question} {instruction}", source="Interviewer")
    steps = int(exp.get("steps") or 1)
    world.run(steps)
    results = []
    for agent in world.agents:
        r = extract_vote(ctx.judge, world.events, agent=agent.name, question=question, seed=ctx.seed)
        value = float(r.value.vote) if r.ok else None
        out.events.append(Event(step=steps, kind="judge", type="vote", agent=agent.name, **vote_event(r)))
        if "vote" in metrics:
            out.add_metric("vote", value, agent=agent.name, level="agent", scale="1-5",
                           missing_reason=r.missing_reason, missing_detail=r.missing_detail, remeasure=r.remeasure)
        results.append(r)
    if "positive_share" in metrics:
        reason, detail = derived_reason(results)
        share = rederive(votes_of(results))["positive_share"] if reason != "call failed" else None
        out.add_metric("positive_share", share, level="session", scale="real",
                       missing_reason=reason or "no answer", missing_detail=detail or "no vote extracted",
                       remeasure={"kind": "derived"} if reason == "call failed" else None)
    judge_metrics(ctx, out, world, metrics, question, step=steps)
    out.events = [*world.events, *out.events]
    return out
