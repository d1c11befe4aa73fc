"""Experiment designs: arms that override any experiment key, and factorial designs declared as
factors.

An arm is a plain dict. Its steering keys (`correction`, `interventions`, `story`, `description`)
and model keys (`llm`, `judge`) configure the mechanism and the models; every other key overrides
the experiment key of that name for this arm only (deep-merged: `population: {path: ...}` changes
one field). So an A/B of two pitches is

    arms:
      pitch_a: {products: ["A lamp that ..."]}
      pitch_b: {products: ["A lamp that ... , now with a timer"]}

An arm set to null is dropped, so an experiment that inherits another (`defaults: [market_research]`)
can replace its arms: `arms: {control: null, treatment: null, mine: {...}}` (Hydra merges mappings).

`factors: {f: {level: overrides, ...}, ...}` expands to one arm per cell of the full factorial,
named `f1=level,f2=level` in declaration order; the first level of every factor is the baseline and
the all-baseline cell is the control (unless `control` names another cell). Each cell's levels go
to the metrics table as `factor_<f>` columns (see `trials.run.jobs`) and to manifest.json `factors`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import copy

from trials.run.errors import ConfigError, did_you_mean, unknown_key  # noqa: F401 - did_you_mean: imported from here too

#: arm keys that configure the mechanism (read by the scenario from the arm config)
STEERING_KEYS = frozenset({"correction", "interventions", "story", "description"})
#: arm keys that configure the agents' and the judge's model
MODEL_KEYS = frozenset({"llm", "judge"})
#: experiment keys an arm cannot change: they define the experiment or the replicate structure
NOT_PER_ARM = frozenset({"name", "scenario", "arms", "arm_defaults", "control", "factors", "size",
                         "sizes", "replicates"})
#: keys left out of an arm's effective config (identical for every arm by construction)
_NOT_SHOWN = NOT_PER_ARM - {"size"}

ARM_NAME = re.compile(r"[A-Za-z0-9_.=,-]+")
#: names that ARM_NAME lets through but that are no folder of their own under jobs/ ("." and ".."
#: point at jobs/ and the run directory; executions.jsonl is the file beside the arm folders)
RESERVED_ARM_NAMES = frozenset({".", "..", "executions.jsonl"})
MAX_ARM_NAME = 200  # a folder name is at most 255 bytes on common file systems


def arm_name_problem(name: str) -> str | None:
    """Why `name` cannot be an arm's folder name under jobs/ (None if it can)."""
    if not ARM_NAME.fullmatch(name):
        return "arm names become folder names; use only ASCII letters, digits, '_', '-', '.', '=' or ','"
    if name.startswith("-"):  # `--control -x` would read as an option
        return "arm names are given on the command line (--control); do not start one with '-'"
    if name in RESERVED_ARM_NAMES:
        return "arm names become folder names under jobs/, and this one is not a folder of its own there"
    if len(name) > MAX_ARM_NAME:
        return f"arm names become folder names; use at most {MAX_ARM_NAME} characters (this one has {len(name)})"
    return None


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


@dataclass
class Design:
    arms: dict[str, dict[str, Any]]  # arm -> its raw overrides merged over arm_defaults
    experiments: dict[str, dict[str, Any]]  # arm -> the experiment config this arm runs
    factors: dict[str, list[str]] = field(default_factory=dict)  # factor -> levels (baseline first)
    levels: dict[str, dict[str, str]] = field(default_factory=dict)  # arm -> factor -> level
    control: str = ""


def expand_factors(factors: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
    """`{f: {level: overrides}}` -> (arm overrides per cell, factor levels per cell), cells in the
    order of itertools.product over the declared levels (so the all-baseline cell comes first).
    Two factors setting the same key in one cell is an error (the cell would be ambiguous)."""
    if not isinstance(factors, dict) or not factors:
        raise ConfigError("experiment.factors must map factor -> {level: overrides}, e.g. "
                          "factors: {correction: {off: {}, on: {correction: {...}}}}")
    for name, levels in factors.items():
        if not isinstance(levels, dict) or len(levels) < 2:
            raise ConfigError(f"experiment.factors.{name}: give at least two levels as a mapping, "
                              f"e.g. {name}: {{off: {{}}, on: {{...}}}}")
        for level, over in levels.items():
            if over is not None and not isinstance(over, dict):
                raise ConfigError(f"experiment.factors.{name}.{level}: expected a mapping of arm "
                                  f"overrides (or {{}}), got {over!r}")
    arms: dict[str, dict[str, Any]] = {}
    cells: dict[str, dict[str, str]] = {}
    names = list(factors)
    for combo in itertools.product(*[list(factors[f]) for f in names]):
        cell = ",".join(f"{f}={lv}" for f, lv in zip(names, combo))
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for f, lv in zip(names, combo):
            over = dict(factors[f][lv] or {})
            for key in over:
                if key in owner:
                    raise ConfigError(f"experiment.factors: {owner[key]} and {f}={lv} both set {key!r} "
                                      f"in cell {cell}; give each factor its own keys")
                owner[key] = f"{f}={lv}"
            merged = deep_merge(merged, over)
        arms[cell] = merged
        cells[cell] = {f: str(lv) for f, lv in zip(names, combo)}
    return arms, cells


def arm_keys_of(experiment_keys: set[str]) -> set[str]:
    """The keys an arm may set: the scenario's experiment keys but NOT_PER_ARM, steering and models."""
    return (set(experiment_keys) - NOT_PER_ARM) | STEERING_KEYS | MODEL_KEYS


def resolve_design(exp: dict[str, Any], experiment_keys: set[str]) -> Design:
    """The arms of `exp` (from `arms` or `factors`) with each arm's own experiment config.
    `experiment_keys`: every key the scenario accepts (an arm may override all but NOT_PER_ARM)."""
    arm_keys = arm_keys_of(experiment_keys)
    levels: dict[str, dict[str, str]] = {}
    factors: dict[str, list[str]] = {}
    if exp.get("factors"):
        if any(v is not None for v in (exp.get("arms") or {}).values()):
            raise ConfigError("experiment.arms and experiment.factors are both set; a factorial design "
                              "makes its own arms: remove one (e.g. arms=null)")
        arms_raw, levels = expand_factors(exp["factors"])
        factors = {f: [str(lv) for lv in lvs] for f, lvs in exp["factors"].items()}
    else:  # an arm set to null is dropped: how an experiment replaces the arms it inherits
        arms_raw = {k: v for k, v in (exp.get("arms") or {}).items() if v is not None}
    if not arms_raw:
        raise ConfigError("experiment.arms is empty; define at least one arm, e.g. arms: {control: {}}")
    defaults = dict(exp.get("arm_defaults") or {})
    base = {k: v for k, v in exp.items() if k not in ("arms", "arm_defaults", "factors")}
    arms: dict[str, dict[str, Any]] = {}
    experiments: dict[str, dict[str, Any]] = {}
    for name, arm in arms_raw.items():
        where = f"experiment.factors cell {name}" if levels else f"experiment.arms.{name}"
        if (why := arm_name_problem(str(name))) is not None:
            what = (f"experiment.factors: cell {str(name)!r}" if levels else f"experiment.arms: arm {str(name)!r}")
            fix = "rename the factors or levels that make it" if levels else "rename the arm (e.g. pitch_c)"
            raise ConfigError(f"{what}: {why}; fix: {fix}")
        if arm is not None and not isinstance(arm, dict):
            raise ConfigError(f"{where}: expected a mapping of overrides (or {{}}), got {arm!r}")
        for key in sorted(set(arm or {}) - arm_keys):
            if key in NOT_PER_ARM:
                raise ConfigError(f"{where}.{key}: it is fixed for the whole experiment, an arm cannot "
                                  f"change it; fix: remove it from the arm")
            raise unknown_key(f"{where}.{key}", arm_keys, "an arm may set any experiment key")
        if str(name) in arms:  # `1` and `"1"` in YAML: two keys, one arm folder
            raise ConfigError(f"{where}: two arms are named {str(name)!r}; give each arm its own name")
        # control/ and CONTROL/ are one folder on case-insensitive file systems (macOS, Windows)
        if (same := next((a for a in arms if a.casefold() == str(name).casefold()), None)) is not None:
            raise ConfigError(f"{where}: arms {same!r} and {str(name)!r} differ only in case, and their "
                              f"folders under jobs/ clash on macOS and Windows; give each arm its own name")
        merged = deep_merge(defaults, dict(arm or {}))
        arms[str(name)] = merged
        experiments[str(name)] = deep_merge(
            base, {k: v for k, v in merged.items() if k not in STEERING_KEYS | MODEL_KEYS})
    control = exp.get("control")
    if levels and (not control or control not in arms):
        control = next(iter(arms))  # the all-baseline cell
    control = str(control or next(iter(arms)))
    if control not in arms:
        raise ConfigError(f"experiment.control={control!r} is not an arm{did_you_mean(control, arms)}; "
                          f"arms: {list(arms)}")
    return Design(arms, experiments, factors, levels, control)


def effective_config(experiment: dict[str, Any], arm: dict[str, Any], llm: dict[str, Any],
                     judge: dict[str, Any]) -> dict[str, Any]:
    """What one arm runs: its experiment keys, its steering and its models (for manifest.json
    `arm_configs`, the job folder and the report's "what differs between the arms")."""
    out = {k: v for k, v in experiment.items() if k not in _NOT_SHOWN}
    out.update({k: arm.get(k) for k in sorted(STEERING_KEYS) if k in arm})
    for key in ("correction", "interventions"):
        out.setdefault(key, None if key == "correction" else [])
    out["llm"], out["judge"] = llm, judge
    return out


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict) or not tree:
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def flat_diff(control: dict[str, Any], arm: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys whose value in `arm` differs from `control`, with the arm's value."""
    a, b = _flatten(control), _flatten(arm)
    return {k: b.get(k) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
