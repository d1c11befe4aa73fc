"""hello: one persona answers one question; a judge scores how well the answer fits the persona
(0-9). The quickest end-to-end smoke run of the whole pipeline."""

from __future__ import annotations

from typing import Any

from trials.persona import prompt_text
from trials.session.events import Event
from trials.scenarios.base import SessionContext, SessionOutput

METRICS = {"persona_adherence": ("agent", "0-9"), "answer_chars": ("agent", "count")}
MATERIAL_KEY = "questions"


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
        if "persona_adherence" not in ctx.experiment.get("metrics", list(METRICS)):
            continue
        from trials.judging.judge import judge
        from trials.judging.propositions import persona_adherence

        result = judge(persona_adherence(), ctx.judge, events=out.events[-2:], agent=persona.name,
                       persona=persona, on_error="missing")
        value = result.weighted_score if result.weighted_score is not None else result.mean
        out.events.append(Event(step=0, kind="judge", type="persona_adherence", agent=persona.name,
                                content=result.justification or result.missing_reason,
                                scores={"persona_adherence": value, "score": result.score}))
        out.add_metric("persona_adherence", value, agent=persona.name, level="agent", scale="0-9",
                       missing_reason=result.missing_reason, missing_detail=result.missing_detail,
                       flag=result.flag, remeasure=result.remeasure)
    return out
