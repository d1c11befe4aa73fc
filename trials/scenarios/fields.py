"""The types of an experiment's keys: one pydantic model per scenario (`<scenario>.Fields`, a
subclass of `ExperimentFields`, or of `GroupFields` for the group scenarios), checked by
`type_problems` before anything runs. A list key given one text (`experiment.themes=Soup`, which
the runner would otherwise split into letters), a text key given a list, an empty material list
or a number that is not whole is refused with the key and an example of the right form.

Prompt texts (tasks, questions, material items) are sent to the model as written: a `{name}` in
them is refused, since only proposition claims (`{agent}`, `{task}`, `{material}`) and intervention
texts (`{agent}`) are filled in.
"""

from __future__ import annotations

from typing import Annotated, Any, Iterator

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError


def _no_placeholder(text: str) -> str:
    from trials.judging.judge import PLACEHOLDER

    found = PLACEHOLDER.search(text)
    if found:
        raise ValueError(f"{found.group(0)} is not filled in here (this text is sent as written; only "
                         "proposition claims take {agent}, {task}, {material}); write the text itself")
    return text


def whole(low: int) -> Any:
    """A whole number >= low (not a bool, not 2.0), or null."""
    return Annotated[StrictInt, Field(ge=low)] | None


Text = StrictStr | None
#: a text sent to the model as written (no placeholders)
Prompt = Annotated[StrictStr, AfterValidator(_no_placeholder)] | None
#: the material the runner picks one item of per replicate: at least one item
Material = Annotated[list[Annotated[StrictStr, AfterValidator(_no_placeholder)]], Field(min_length=1)] | None


def _unique(names: list[str]) -> list[str]:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # a metric listed twice is judged twice and its rows share one key
        raise ValueError(f"{', '.join(map(repr, twice))} listed more than once; list each name once")
    return names


#: names that each mean one thing (metrics, tradeoff pair, interventions): no repeats
Names = Annotated[list[StrictStr], AfterValidator(_unique)] | None
Mapping = dict[str, Any] | None


class ExperimentFields(BaseModel):
    """Keys every experiment may set (`trials.run.plan.EXPERIMENT_KEYS`). Null means "not set"
    everywhere; the value checks beyond the type live with the key's user (plan, validation, ...)."""

    model_config = ConfigDict(extra="ignore")  # unknown keys are refused by trials.run.plan

    name: Text = None
    scenario: Text = None
    description: Text = None
    size: Text = None
    sizes: Mapping = None
    group_size: whole(1) = None
    steps: whole(1) = None
    population: Mapping = None
    metrics: Names = None
    control: StrictStr | StrictInt | None = None  # an arm's name (YAML may read `1` as a number)
    arms: dict[StrictStr | StrictInt, Mapping] | None = None
    arm_defaults: Mapping = None
    replicates: whole(1) = None
    max_tokens: whole(1) = None
    paper: Any = None
    agent: Mapping = None
    propositions: dict[str, Any] | None = None
    factors: dict[str, Any] | None = None
    validation: Mapping = None
    tradeoff: Names = None
    metric_info: Mapping = None
    judge_k: whole(1) = None  # every scenario judges: each judgement repeated k times


class GroupFields(ExperimentFields):
    """Keys of the group scenarios (a World of agents: brainstorm, debate, market_research)."""

    max_actions: whole(1) = None
    agent_max_tokens: whole(1) = None
    intervention_options: dict[str, Mapping] | None = None


class ArmFields(BaseModel):
    """The keys only an arm has (`trials.run.design.STEERING_KEYS | MODEL_KEYS`)."""

    model_config = ConfigDict(extra="ignore")

    correction: Mapping = None
    interventions: Names = None
    story: Mapping = None
    description: Text = None
    llm: Mapping = None
    judge: Mapping = None


def options_of(fields: type[ExperimentFields], material_key: str | None) -> tuple[str, ...]:
    """A scenario's own keys (its `OPTIONS`): the fields its model adds, minus the material key."""
    return tuple(k for k in fields.model_fields if k not in ExperimentFields.model_fields and k != material_key)


def _example(key: str, value: Any, kind: str, yaml: bool) -> str:
    leaf = key.rsplit(".", 1)[-1].split("[")[0]
    text = value if isinstance(value, str) else "..."
    if kind == "list":
        return f'{leaf}: ["{text}"]' if yaml else f"{key}='[{text}]'"
    if kind == "text":
        return f'{leaf}: "{text}"' if yaml else f"{key}='{text}'"
    return f"{leaf}: {{...}}" if yaml else f"{key}={{...}}"


def _message(err: dict[str, Any], prefix: str, model: type[BaseModel], where: Any) -> str:
    loc = list(err["loc"])
    key = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    origin, yaml = where(key)
    value, kind = err.get("input"), err["type"]
    if kind == "list_type":
        body = f"{key}={value!r} must be a list, e.g. {_example(key, value, 'list', yaml)}"
    elif kind == "too_short":
        body = f"{key} is empty: list at least one item, e.g. {_example(key, 'your item', 'list', yaml)}"
    elif kind == "string_type":
        what = "one text, not a list" if isinstance(value, list) else "text"
        body = f"{key}={value!r} must be {what}, e.g. {_example(key, 'your text', 'text', yaml)}"
    elif kind == "dict_type":
        body = f"{key}={value!r} must be a mapping, e.g. {_example(key, value, 'mapping', yaml)}"
    elif kind in ("int_type", "int_from_float", "greater_than_equal"):
        low = (err.get("ctx") or {}).get("ge")
        if low is None:
            low = _low(model.model_fields.get(str(loc[0])) if loc else None)
        body = f"{key}={value!r}: need a whole number >= {low} (e.g. {key}={max(int(low), 2)})"
    elif kind == "value_error":
        body = f"{key}: {str(err.get('msg', '')).removeprefix('Value error, ')}"
    else:
        body = f"{key}={value!r}: {err.get('msg')}"
    return body + origin


def _low(field: Any) -> int:
    """The `ge` bound of a `whole(low)` field (inside its Optional)."""
    import typing

    for member in typing.get_args(getattr(field, "annotation", None)):
        for meta in getattr(member, "__metadata__", ()):
            for inner in getattr(meta, "metadata", ()):
                if hasattr(inner, "ge"):
                    return int(inner.ge)
    return 0


def type_problems(values: dict[str, Any], model: type[BaseModel], prefix: str, where: Any) -> Iterator[str]:
    """One message per key of `values` whose type does not fit `model` (keys it does not know are
    skipped). `where(key) -> ("; set in FILE" or "", yaml: bool)` says where the key was set,
    so the example uses that form (command line `key='[a]'`, YAML `key: ["a"]`)."""
    try:
        model.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors():
            yield _message(err, prefix, model, where)
