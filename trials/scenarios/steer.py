"""Arm config -> the simulation's steering objects: action correction and interventions.

Arm keys (plain config, any combination):
    correction: null | {propositions: [persona_adherence], threshold: 5, max_attempts: 2, ...}
    interventions: [variety, ...]   (names known to trials.steering.interventions)
    story: null | {every: 2, requirements: "...", max_tokens: 120}   (a story beat, written by the
        judge model and broadcast to everyone, before every `every`-th step after the first)

`own` is the experiment's own propositions (`experiment.propositions`): a correction may list them
next to the standard ones, and an intervention may use one as its precondition
(`experiment.intervention_options.variety.precondition: <own proposition>`); `claim_values` fill
their `{task}` and `{material}` (`trials.judging.propositions.CLAIM_VARIABLES`).
"""

from __future__ import annotations

from typing import Any


class SteeringUnavailable(RuntimeError):
    """The arm asks for a mechanism whose module is not installed."""


def _proposition(name: str, own: dict[str, Any] | None, claim_values: dict[str, str], **kw: Any) -> Any:
    from trials.judging.propositions import from_config, standard

    if own and name in own:
        prop = from_config(name, own[name], **claim_values)
        return prop.model_copy(update=kw) if kw else prop
    return standard(name, **kw)


def correction_config(arm_config: dict[str, Any], own: dict[str, Any] | None,
                      claim_values: dict[str, str]) -> Any:
    spec = arm_config.get("correction")
    if not spec:
        return None
    try:
        from trials.steering.correction import CorrectionConfig
    except ImportError as exc:
        raise SteeringUnavailable(f"arm asks for correction but trials.steering.correction is missing: {exc}") from None
    spec = dict(spec)
    names = spec.pop("propositions", None)
    if names is not None and not isinstance(names, list):
        raise ValueError(f"propositions={names!r} must be a list, e.g. propositions: [persona_adherence]")
    if names:  # names in config -> propositions judging the candidate against recent context
        spec["propositions"] = [_proposition(n, own, claim_values, first_n=1, last_n=4) if isinstance(n, str)
                                else n for n in names]
    return CorrectionConfig.model_validate(spec)


def _builders() -> dict[str, Any]:
    """Intervention name -> factory(**options) -> Intervention (trials.steering.interventions)."""
    try:
        from trials.steering.interventions import variety_intervention
    except ImportError as exc:
        raise SteeringUnavailable(f"trials.steering.interventions is not available: {exc}") from None
    return {"variety": variety_intervention}


def _options(name: str, options: dict[str, Any], own: dict[str, Any] | None,
             claim_values: dict[str, str]) -> dict[str, Any]:
    """Factory kwargs of intervention `name`; a precondition naming an own proposition becomes it."""
    opts = dict(options.get(name) or {})
    pre = opts.get("precondition")
    if isinstance(pre, str) and own and pre in own:
        opts["precondition"] = _proposition(pre, own, claim_values)
    return opts


def install_interventions(world: Any, arm_config: dict[str, Any], options: dict[str, Any],
                          own: dict[str, Any] | None, claim_values: dict[str, str]) -> list[Any]:
    """Add the arm's interventions as before-step hooks; `options[name]` are factory kwargs
    (e.g. experiment.intervention_options.variety.cooldown=1)."""
    names = list(arm_config.get("interventions") or [])
    builders = _builders() if names else {}
    installed = []
    for name in names:
        iv = builders[name](**_options(name, options, own, claim_values))
        world.add_hook(iv)
        installed.append(iv)
    return installed


STORY_KEYS = ("every", "requirements", "max_tokens")


def story_options(arm_config: dict[str, Any]) -> dict[str, Any] | None:
    """The arm's `story` mapping, checked (ValueError naming the key), or None."""
    spec = arm_config.get("story")
    if not spec:
        return None
    if not isinstance(spec, dict) or set(spec) - set(STORY_KEYS):
        raise ValueError(f"story={spec!r}: give a mapping with keys {list(STORY_KEYS)}, e.g. "
                         "story: {every: 2, requirements: 'Something surprising happens.'}")
    every = spec.get("every", 2)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"story.every={every!r}: need a whole number of steps >= 1")
    from trials.judging.judge import placeholder_problem

    if not isinstance(spec.get("requirements") or "", str):
        raise ValueError(f"story.requirements={spec['requirements']!r} must be one text, e.g. "
                         "requirements: 'Something surprising happens.'")
    problem = placeholder_problem(str(spec.get("requirements") or ""), [], "story.requirements")
    if problem:  # the requirements go to the story writer as written
        raise ValueError(problem + " (this text is sent as written)")
    return {"every": every, "requirements": str(spec.get("requirements") or ""),
            "max_tokens": int(spec.get("max_tokens", 120))}


def install_story(world: Any, arm_config: dict[str, Any]) -> Any:
    """A before-step hook continuing the session's story every `every` steps (steps every,
    2*every, ...); each beat is broadcast (Event kind="story") and its call recorded (purpose="story")."""
    opts = story_options(arm_config)
    if opts is None:
        return None
    from trials.steering.story import Story

    story = Story(world.judge_llm, max_tokens=opts["max_tokens"])

    def hook(w: Any, step: int) -> None:
        if step > 0 and step % opts["every"] == 0:
            story.continue_story(w, opts["requirements"])

    world.add_hook(hook)
    return story


def validate(arm: str, arm_config: dict[str, Any], own: dict[str, Any] | None = None,
             options: dict[str, Any] | None = None) -> None:
    """Build the arm's correction config and interventions, before any LLM call.
    Raises ValueError naming the arm and the key."""
    from trials.judging.propositions import CLAIM_VARIABLES

    blank = dict.fromkeys(CLAIM_VARIABLES, "")  # the values are the session's; their names are checked
    try:
        correction_config(arm_config, own, blank)
    except (SteeringUnavailable, ValueError) as exc:
        raise ValueError(f"experiment.arms.{arm}.correction: {exc}") from None
    try:
        story_options(arm_config)
    except ValueError as exc:
        raise ValueError(f"experiment.arms.{arm}.{exc}") from None
    names = list(arm_config.get("interventions") or [])
    if not names:
        return
    try:
        known = _builders()
    except SteeringUnavailable as exc:
        raise ValueError(f"experiment.arms.{arm}.interventions={names}: {exc}") from None
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"experiment.arms.{arm}.interventions: unknown {unknown}; known: {sorted(known)}")
    for name in names:
        try:
            known[name](**_options(name, dict(options or {}), own, blank))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"experiment.intervention_options.{name} (arm {arm!r}): {exc}") from None
