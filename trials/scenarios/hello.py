"""hello: one persona answers one question; a judge scores how well the answer fits the persona
(0-9). The quickest end-to-end smoke run of the whole pipeline."""

from __future__ import annotations

from typing import Any

from trials.events import Event
from trials.scenarios.base import SessionContext, SessionOutput, judge_score

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
              "one to three short sentences, in the first person.\n\n" + persona.prompt_text("brief")},
             {"role": "user", "content": question}],
            purpose="action", protocol="text", max_tokens=max_tokens,
        )
        answer = reply.text.strip()
        out.events.append(Event(step=0, kind="action", type="TALK", content=answer,
                                agent=persona.name, prompt_tokens=reply.usage.tokens_in))
        out.add_metric("answer_chars", len(answer), agent=persona.name, level="agent", scale="count")
        if "persona_adherence" not in ctx.experiment.get("metrics", list(METRICS)):
            continue
        score, reason = judge_score(ctx, (
            f"Person:\n{persona.prompt_text('brief')}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
            "How well does the answer fit this person (0 = not at all, 9 = perfectly)?"))
        out.events.append(Event(step=0, kind="judge", type="persona_adherence", content=reason,
                                agent=persona.name, scores={"persona_adherence": score}))
        out.add_metric("persona_adherence", score, agent=persona.name, level="agent", scale="0-9",
                       missing_reason="" if score is not None else "judge reply had no 0-9 score")
    return out
