"""The standard library of propositions (claims judged 0-9 by `trials.judging.judge.judge`).

Agent-level: persona_adherence (with the persona shown), self_consistency, fluency, suitability.
Session-level: task_completion(task), divergence (of ideas), convergence. Each factory takes
keyword overrides of any `Proposition` field (window, threshold, ...). `standard(name, **kw)`
builds one by name, for configs; the claims are our own wording.
"""

from __future__ import annotations

from typing import Any, Callable

from trials.judging.judge import Proposition, placeholder_problem


def persona_adherence(**kw: Any) -> Proposition:
    return Proposition(**{
        "name": "persona_adherence", "include_persona": True,
        "claim": "{agent}'s words and thoughts fit the persona above: the personality, beliefs, "
                 "background and speaking style all match.", **kw})


def self_consistency(**kw: Any) -> Proposition:
    return Proposition(**{
        "name": "self_consistency",
        "claim": "{agent} is consistent: nothing {agent} says or thinks contradicts what {agent} "
                 "said or thought earlier.", **kw})


def fluency(**kw: Any) -> Proposition:
    return Proposition(**{
        "name": "fluency",
        "claim": "{agent} writes fluent, natural sentences and does not repeat the same phrases "
                 "or ideas over and over.", **kw})


def suitability(**kw: Any) -> Proposition:
    return Proposition(**{
        "name": "suitability",
        "claim": "{agent}'s actions suit the situation: they respond sensibly to what others said "
                 "and to the task at hand.", **kw})


def task_completion(task: str, **kw: Any) -> Proposition:
    return Proposition(**{
        "name": "task_completion", "target": "session", "last_n": 30,
        "claim": "The group completed this task: {task}", "variables": {"task": task}, **kw})


def divergence(**kw: Any) -> Proposition:
    return Proposition(**{
        "name": "divergence", "target": "session", "last_n": 30,
        "claim": "The participants proposed many clearly different ideas from varied angles, "
                 "rather than variations of one idea.", **kw})


def convergence(**kw: Any) -> Proposition:
    return Proposition(**{
        "name": "convergence", "target": "session", "last_n": 30,
        "claim": "The participants converged: by the end they agree on a shared conclusion or choice.",
        **kw})


STANDARD: dict[str, Callable[..., Proposition]] = {
    "persona_adherence": persona_adherence, "self_consistency": self_consistency, "fluency": fluency,
    "suitability": suitability, "task_completion": task_completion, "divergence": divergence,
    "convergence": convergence,
}


#: the placeholders of an own proposition's claim besides {agent} (agent level only): every
#: scenario fills both (`from_config(..., task=, material=)`)
CLAIM_VARIABLES = {"task": "the session's task", "material": "its theme / product / motion / question"}

#: keys of an own proposition in an experiment config (`experiment.propositions.<name>`)
CONFIG_KEYS = ("claim", "rubric", "level", "scale", "higher_is_better", "first_n", "last_n",
               "include_persona", "threshold")


def from_config(name: str, spec: Any, *, task: str, material: str) -> Proposition:
    """An own proposition from config: `{claim: "...{agent}...", rubric: optional text,
    level: agent|session, scale: 0-9, higher_is_better: true, first_n, last_n, include_persona,
    threshold}`. `task` and `material` fill `{task}` and `{material}` in the claim (CLAIM_VARIABLES);
    any other placeholder, or {agent} at session level, is refused. Raises ValueError naming
    `experiment.propositions.<name>.<field>` and the fix."""
    variables = {"task": task, "material": material}
    where = f"experiment.propositions.{name}"
    if name in STANDARD:
        raise ValueError(f"{where}: {name!r} is a standard proposition; give yours another name")
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping {{claim: ..., level: agent|session}}, got {spec!r}")
    unknown = sorted(set(spec) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {list(CONFIG_KEYS)}")
    if not isinstance(spec.get("claim"), str) or not spec["claim"].strip():
        raise ValueError(f"{where}.claim is missing; write the claim the judge scores, e.g. "
                         "\"{agent} would recommend the product to a friend.\"")
    level = spec.get("level", "agent")
    if level not in ("agent", "session"):
        raise ValueError(f"{where}.level={level!r}: use agent or session")
    known = [*(["agent"] if level == "agent" else []), *CLAIM_VARIABLES]
    problem = placeholder_problem(spec["claim"], known, f"{where}.claim")
    if problem:
        raise ValueError(problem + ("" if level == "agent" else " ({agent} only at level: agent)"))
    if isinstance(spec.get("rubric"), str):
        problem = placeholder_problem(spec["rubric"], [], f"{where}.rubric")
        if problem:
            raise ValueError(problem + " (the rubric is not filled in; placeholders go in the claim)")
    if str(spec.get("scale", "0-9")) != "0-9":
        raise ValueError(f"{where}.scale={spec.get('scale')!r}: judged propositions score 0-9; use scale: 0-9")
    if not isinstance(spec.get("higher_is_better", True), bool):
        raise ValueError(f"{where}.higher_is_better={spec['higher_is_better']!r}: use true or false")
    fields = {k: spec[k] for k in ("rubric", "first_n", "last_n", "include_persona", "threshold",
                                   "higher_is_better") if spec.get(k) is not None}
    if level == "session":
        fields.setdefault("last_n", 30)
    try:
        return Proposition(name=name, claim=str(spec["claim"]), target=level,
                           variables={k: str(v) for k, v in variables.items()}, **fields)
    except Exception as exc:  # pydantic names the field
        raise ValueError(f"{where}: {exc}") from None


def own_propositions(experiment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`experiment.propositions` (name -> spec), {} when none."""
    return dict(experiment.get("propositions") or {})


def standard(name: str, **kw: Any) -> Proposition:
    """A standard proposition by name; task_completion needs task=..."""
    try:
        factory = STANDARD[name]
    except KeyError:
        raise ValueError(f"unknown proposition {name!r}; choose one of {sorted(STANDARD)}") from None
    if name == "task_completion" and "task" not in kw:
        raise ValueError("proposition 'task_completion' needs task=<the task text>")
    return factory(**kw)
