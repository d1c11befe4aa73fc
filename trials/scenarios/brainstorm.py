"""brainstorm: a group of personas brainstorms on a theme for `steps` steps (the paper's
brainstorming / focus-group design). Arms differ by steering: action correction and/or variety
interventions. Measured: persona adherence, self-consistency, fluency per agent; task
completion, divergence and the number of unique ideas per session."""

from __future__ import annotations

from typing import Any

from trials.scenarios.base import SessionContext, SessionOutput, prose_as_talk
from trials.scenarios.fields import GroupFields, Material, Prompt, options_of, whole
from trials.scenarios.measures import count_ideas, judge_metrics
from trials.scenarios.steer import correction_config, install_interventions, install_story

#: an agent who says nothing (no TALK/THINK) is not judged, extracted or checked (the estimate's low case)
SILENT_AGENTS_UNMEASURED = True
METRICS = {
    "persona_adherence": ("agent", "0-9"), "self_consistency": ("agent", "0-9"),
    "fluency": ("agent", "0-9"), "task_completion": ("session", "0-9"),
    "divergence": ("session", "0-9"), "ideas": ("session", "count"),
}
MATERIAL_KEY = "themes"


class Fields(GroupFields):
    """brainstorm's experiment keys (trials.scenarios.fields)."""

    themes: Material = None
    task: Prompt = None
    goal: Prompt = None
    extract_max_tokens: whole(1) = None


OPTIONS = options_of(Fields, MATERIAL_KEY)
TASK = "Propose as many distinct, concrete ideas as you can for the theme below."


def actions_per_session(exp: dict[str, Any], group_size: int) -> int:
    """Expected agent actions: about 1.5 per agent per step (turns end on DONE or a repeat)."""
    return int(group_size * int(exp.get("steps") or 1) * min(1.5, int(exp.get("max_actions", 2))))


def extractions_per_session(exp: dict[str, Any], group_size: int) -> int:
    """Extraction calls (for the estimate): one idea extraction when `ideas` is measured."""
    return int("ideas" in (exp.get("metrics") or METRICS))


def make_world(ctx: SessionContext, goal: str, task: str) -> Any:
    """The session's world with its agents and the arm's steering; `task` (the session's task, as
    the judge sees it) and the material fill {task} and {material} in own propositions."""
    from trials.session.agent import AgentConfig
    from trials.session.world import World

    exp = ctx.experiment
    values = {"task": task, "material": str(ctx.material)}
    world = World(ctx.llm, seed=ctx.seed, recorder=ctx.recorder, name=ctx.session, judge_llm=ctx.judge,
                  correction=correction_config(ctx.arm_config, exp.get("propositions"), values),
                  max_workers=ctx.threads,
                  agent_config=AgentConfig(max_actions=int(exp.get("max_actions", 2)),
                                           max_tokens=int(exp.get("agent_max_tokens", 60)),
                                           prose_as_talk=prose_as_talk(ctx)))
    for persona in ctx.personas:
        world.add_agent(persona, goals=[goal])
    install_interventions(world, ctx.arm_config, dict(exp.get("intervention_options") or {}),
                          exp.get("propositions"), values)
    install_story(world, ctx.arm_config)
    return world


def run(ctx: SessionContext) -> SessionOutput:
    exp = ctx.experiment
    task = str(exp.get("task") or TASK)
    judged_task = f"{task} Theme: {ctx.material}"
    world = make_world(ctx, str(exp.get("goal") or "Take part in the brainstorm and propose ideas."), judged_task)
    world.broadcast(f"{task}\nTheme: {ctx.material}")
    steps = int(exp.get("steps") or 1)
    world.run(steps)
    out = SessionOutput()
    metrics = list(exp.get("metrics") or METRICS)
    judge_metrics(ctx, out, world, metrics, judged_task, step=steps)
    if "ideas" in metrics:
        count_ideas(ctx, out, world.events, step=steps, topic=str(ctx.material))
    out.events = [*world.events, *out.events]
    return out
