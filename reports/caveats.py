"""The plain-language caveat block: what the models, the judge and the design imply for trust."""

from __future__ import annotations

import re

import pandas as pd

from reports.load import RunData
from reports.runinfo import delivery, models

TINY = re.compile(r"(\d+(?:\.\d+)?)\s*([mb])\b", re.IGNORECASE)


def _params_billions(model: str) -> float | None:
    """`SmolLM2-135M-Instruct` -> 0.135; `llama-3-8b` -> 8.0; unknown -> None."""
    match = TINY.search(model.replace("-", " ").replace("_", " "))
    if not match:
        return None
    value = float(match.group(1))
    return value / 1000 if match.group(2).lower() == "m" else value


def caveats(data: RunData) -> list[str]:
    man = data.manifest or {}
    llm, judge = models(data)
    items: list[str] = []
    if "scripted" in (llm.get("backend"), judge.get("backend")):
        items.append("This run used the scripted backend: a deterministic test double, not a language model. "
                     "Every utterance and every score is canned. The numbers show that the pipeline works "
                     "(mechanics only); they say nothing about people or about whether a mechanism helps.")
    for role, spec in (("agents", llm), ("judge", judge)):
        if spec.get("backend") == "scripted":
            continue
        size = _params_billions(str(spec.get("model", "")))
        if size is None and spec.get("backend") == "local":
            items.append(f"The {role} ran on a local model of unrecorded size ({spec.get('model') or 'no name'}); "
                         "small local models role-play and judge weakly, so treat the numbers as a dry run.")
        if size is not None and size < 1:
            what = ("role-play is shallow and often drifts off persona" if role == "agents" else
                    "its 0-9 scores are only loosely related to the text, so judge-scored metrics are noisy "
                    "and may be biased; treat their differences as indicative at best")
            items.append(f"The {role} ran on {spec.get('model')} (about {size * 1000:.0f}M parameters), a very "
                         f"small model: {what}. Rerun with a stronger model before drawing conclusions.")
    if llm and judge and llm.get("model") == judge.get("model") and llm.get("backend") != "scripted":
        items.append("The judge is the same model as the agents, so it grades its own writing; a different, "
                     "stronger judge is safer.")
    reps = man.get("replicates")
    if isinstance(reps, int) and reps < 10:
        items.append(f"Only {reps} session(s) per arm: confidence intervals are wide and a real effect of "
                     "moderate size can easily be missed (see the power table).")
    for arm, role, delivered, why in delivery(data):  # the manipulation check (trials.run.delivery)
        if delivered is not False:
            continue
        if role == "baseline":
            items.insert(0, f"Arm {arm!r}, the control of these comparisons, did not get its own mechanism "
                         f"({why}): its sessions ran like the run's control {data.run_control!r}, so every "
                         "difference here is measured against an arm without that mechanism.")
        else:
            items.insert(0, f"Arm {arm!r}: treatment not delivered ({why}). Its sessions "
                         f"ran without the mechanism under test, so its comparison with {data.control or 'control'} "
                         "measures nothing about that mechanism"
                         + ("; the tables mark it 'treatment not delivered'." if data.control == data.run_control
                            else "."))
    miss = data.tables.missing
    if "differential" in miss.columns:
        flagged = miss[miss["differential"].astype(str).str.lower() == "true"][["arm", "metric"]].drop_duplicates()
        if len(flagged):
            cells = ", ".join(f"{r.metric} in {r.arm}" for r in flagged.itertuples())
            items.append(f"Missing values differ between arms ({cells}); a comparison that loses more values in "
                         "one arm can be biased. See the measurement check under Quality of the run.")
    if man.get("n_failed"):
        items.append(f"{man['n_failed']} job(s) failed; the analysis uses only the sessions that finished.")
    if data.kind == "tinytroupe":
        items.append("Imported TinyTroupe results: session ids were lost, so agent-level scores are treated "
                     "as independent; their p-values are probably too small (agents in one session are "
                     "correlated). There is no transcript, configuration or cost record to check.")
    eff = data.tables.effects
    if len(eff) > 1:
        items.append(f"{len(eff)} comparisons were tested; read the Holm / BH adjusted p-values, not the raw ones.")
    items.append("Simulated people are not people. Use these results to compare mechanisms and to generate "
                 "hypotheses, not as evidence about a real population.")
    return items


def judge_note(metrics: pd.DataFrame | None) -> str:
    if metrics is None or "judge_model" not in metrics:
        return ""
    models = sorted({str(m) for m in metrics["judge_model"].dropna() if str(m)})
    return f"Judge model(s) recorded in the metrics: {', '.join(models)}." if models else ""


#: Public name for the summary's "tiny model" check.
params_billions = _params_billions
