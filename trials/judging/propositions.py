"""The standard library of propositions (claims judged 0-9 by `trials.judging.judge.judge`).

Agent-level: persona_adherence (with the persona shown), self_consistency, fluency, suitability.
Session-level: task_completion(task), divergence (of ideas), convergence. Each factory takes
keyword overrides of any `Proposition` field (window, threshold, ...). `standard(name, **kw)`
builds one by name, for configs; the claims are our own wording.
"""

from __future__ import annotations

from typing import Any, Callable

from trials.judging.judge import Proposition


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


def standard(name: str, **kw: Any) -> Proposition:
    """A standard proposition by name; task_completion needs task=..."""
    try:
        factory = STANDARD[name]
    except KeyError:
        raise ValueError(f"unknown proposition {name!r}; choose one of {sorted(STANDARD)}") from None
    if name == "task_completion" and "task" not in kw:
        raise ValueError("proposition 'task_completion' needs task=<the task text>")
    return factory(**kw)
