"""hello: one persona answers one question; a judge scores how well the answer fits the persona
(0-9). The quickest end-to-end smoke run of the whole pipeline."""

from __future__ import annotations

from typing import Any

from trials.persona import prompt_text
from trials.session.events import Event
from trials.scenarios.base import SessionContext, SessionOutput
from trials.scenarios.fields import ExperimentFields, Material, options_of
from trials.scenarios.measures import record_judgement

METRICS = {"persona_adherence": ("agent", "0-9"), "answer_chars": ("agent", "count")}
MATERIAL_KEY = "questions"


class Fields(ExperimentFields):
    """hello's experiment keys (trials.scenarios.fields)."""

    questions: Material = None


OPTIONS = options_of(Fields, MATERIAL_KEY)


def actions_per_session(exp: dict[str, Any], group_size: int) -> int:
    return group_size


def run(ctx: SessionContext) -> SessionOutput:
    out = SessionOutput()
    question = str(ctx.material or "What do you do on a typical weekend?")
    max_tokens = int(ctx.experiment.get("max_tokens", 60))
    for persona in ctx.personas:
        out.events.append(Event(step=0, kind="stimulus", type="CONVERSATION", content=question,
                                agent=persona.name, source=None))
        reply = ctx.llm.chat(
            [{"role": "system", "content": "You are this person. Stay in character and answer in "
              "one to three short sentences, in the first person.\n\n" + prompt_text(persona, "brief")},
             {"role": "user", "content": question}],
            purpose="action", protocol="text", max_tokens=max_tokens,
        )
        answer = reply.text.strip()
        out.events.append(Event(step=0, kind="action", type="TALK", content=answer,
                                agent=persona.name, prompt_tokens=reply.usage.tokens_in))
        out.add_metric("answer_chars", len(answer), agent=persona.name, level="agent", scale="count")
        for name in _judged(ctx, "agent"):
            _judge_one(ctx, out, name, events=out.events[-2:], persona=persona, task=question)
    for name in _judged(ctx, "session"):
        _judge_one(ctx, out, name, events=[e for e in out.events if e.kind != "judge"], persona=None, task=question)
    return out


def _judged(ctx: SessionContext, level: str) -> list[str]:
    """Metrics judged at `level`: persona_adherence (agent) and the experiment's own propositions."""
    from trials.judging.propositions import own_propositions

    own = own_propositions(ctx.experiment)
    metrics = ctx.experiment.get("metrics") or list(METRICS)
    return [m for m in metrics if (m == "persona_adherence" and level == "agent")
            or (m in own and str(own[m].get("level", "agent")) == level)]


def _judge_one(ctx: SessionContext, out: SessionOutput, name: str, *, events: list[Event],
               persona: Any, task: str) -> None:
    """Judge metric `name`; {task} in an own claim is the question asked, {material} the same."""
    from trials.judging.judge import judge
    from trials.judging.propositions import from_config, own_propositions, persona_adherence

    own = own_propositions(ctx.experiment)
    prop = (persona_adherence() if name == "persona_adherence"
            else from_config(name, own[name], task=task, material=task))
    agent = persona.name if persona is not None else None
    result = judge(prop, ctx.judge, events=events, agent=agent, persona=persona, on_error="missing",
                   k=int(ctx.experiment.get("judge_k") or 1))
    record_judgement(ctx, out, result, name, 0, agent or "")
