"""market_research: a product pitch is put to a population; every agent reacts on its own (one
step, nobody hears the others) and its answer is read as a 1-5 purchase intent with a reason (the
paper's market-research design). Measured: vote, persona adherence, self-consistency, fluency per
agent; the share of positive votes (4-5) per session."""

from __future__ import annotations

from trials.session.events import Event
from trials.scenarios.base import SessionContext, SessionOutput
from trials.scenarios.brainstorm import actions_per_session, make_world  # noqa: F401 (same estimate)
from trials.scenarios.measures import judge_metrics

METRICS = {
    "vote": ("agent", "1-5"), "persona_adherence": ("agent", "0-9"),
    "self_consistency": ("agent", "0-9"), "fluency": ("agent", "0-9"),
    "positive_share": ("session", "real"),
}
MATERIAL_KEY = "products"
OPTIONS = ("max_actions", "agent_max_tokens", "judge_k", "intervention_options", "question")
QUESTION = "Would you buy this product?"


def extractions_per_session(exp: dict, group_size: int) -> int:
    """Vote extractions (for the estimate): one per agent."""
    return group_size


def run(ctx: SessionContext) -> SessionOutput:
    from trials.judging.extract import extract_vote

    exp = ctx.experiment
    question = str(exp.get("question") or QUESTION)
    metrics = list(exp.get("metrics") or METRICS)
    out = SessionOutput()
    world = make_world(ctx, "Give your honest opinion as a potential customer.")
    world.broadcast(f"Here is a new product.\n{ctx.material}\n{question} Say yes or no and why, "
                    "in one or two sentences.", source="Interviewer")
    steps = int(exp.get("steps") or 1)
    world.run(steps)
    votes = []
    for agent in world.agents:
        r = extract_vote(ctx.judge, world.events, agent=agent.name, question=question, seed=ctx.seed)
        value = float(r.value.vote) if r.ok else None
        out.events.append(Event(step=steps, kind="judge", type="vote", agent=agent.name,
                                content=r.value.reason if r.ok else r.missing_reason,
                                scores={"vote": value, "method": r.method}))
        if "vote" in metrics:
            out.add_metric("vote", value, agent=agent.name, level="agent", scale="1-5",
                           missing_reason="" if r.ok else f"vote extraction failed: {r.missing_reason}"[:300])
        if value is not None:
            votes.append(value)
    if "positive_share" in metrics:
        out.add_metric("positive_share", sum(v >= 4 for v in votes) / len(votes) if votes else None,
                       level="session", scale="real", missing_reason="no vote extracted")
    judge_metrics(ctx, out, world, metrics, question, step=steps)
    out.events = [*world.events, *out.events]
    return out
