"""From a resolved config to a checked plan: scenario, population, arms, and one `Job` per
arm x replicate with deterministic seeds. Every config error is raised here, before any LLM call,
as a `ConfigError` that says what to change."""

from __future__ import annotations

import copy
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from trials.run.design import Design, deep_merge, did_you_mean, effective_config, resolve_design
from trials.run.errors import ConfigError
from trials.run.settings import CACHE_KEYS, RUN_KEYS, TOP_KEYS, check_keys
from trials.scenarios.fields import ArmFields, ExperimentFields, type_problems
from trials.session.actions import derive_seed

log = logging.getLogger(__name__)

#: keys every experiment may set; their types: trials.scenarios.fields.ExperimentFields
EXPERIMENT_KEYS = set(ExperimentFields.model_fields)
BACKENDS = ("auto", "loky", "threading", "multiprocessing", "sequential", "dask", "ray")


@dataclass
class Job:
    arm: str
    replicate: int
    session: str
    seed: int
    scenario: str
    experiment: dict[str, Any]
    arm_config: dict[str, Any]
    llm: dict[str, Any]
    judge: dict[str, Any]
    cache: dict[str, Any] | None
    prices: dict[str, Any] | None
    personas: list[dict[str, Any]]
    material: Any
    threads: int
    root: str
    extra: dict[str, Any] = field(default_factory=dict)


def check_report_keys(exp: dict[str, Any], metrics: list[str], source: str | None = None) -> None:
    """`experiment.tradeoff: [x, y]` (the report's trade-off chart) must name two metrics the
    experiment measures (`experiment.metrics`, else every metric the scenario computes): a pair
    inherited from a parent experiment that a narrowed `metrics` leaves out is refused too, naming
    the experiment file (`source`, when known). `experiment.metric_info.<metric>: {higher_is_better,
    unit}` must name metrics the scenario computes."""
    pair = exp.get("tradeoff")
    if pair is not None:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(m, str) for m in pair)):
            raise ConfigError(f"experiment.tradeoff={pair!r}: give two metric names, e.g. "
                              "experiment.tradeoff=[ideas,persona_adherence]")
        unknown = [m for m in pair if m not in metrics]
        if unknown:
            raise ConfigError(f"experiment.tradeoff names {unknown}, which the scenario does not compute; "
                              f"use two of {metrics}")
        measured = [str(m) for m in (exp.get("metrics") or metrics)]
        left_out = [m for m in pair if m not in measured]
        if left_out:
            where = f" (set in {source} or a parent experiment it inherits)" if source else ""
            raise ConfigError(f"experiment.tradeoff=[{', '.join(pair)}]{where}: {', '.join(left_out)} is not among "
                              f"the experiment's metrics {measured}; fix: add {', '.join(left_out)} to "
                              f"experiment.metrics, name two of {measured} in experiment.tradeoff, or set "
                              "experiment.tradeoff=null (the report then picks a pair and says which)")
    info = exp.get("metric_info") or {}
    if not isinstance(info, dict):
        raise ConfigError("experiment.metric_info: a mapping metric -> {higher_is_better: true|false, unit: text}")
    for name, spec in info.items():
        if name not in metrics:
            raise ConfigError(f"experiment.metric_info.{name}: the scenario computes no such metric; use one of {metrics}")
        extra = sorted(set(spec or {}) - {"higher_is_better", "unit"}) if isinstance(spec, dict) else ["(not a mapping)"]
        if extra:
            raise ConfigError(f"experiment.metric_info.{name}: unknown key(s) {extra}; known: higher_is_better, unit")
        hib = (spec or {}).get("higher_is_better")
        if hib is not None and not isinstance(hib, bool):
            raise ConfigError(f"experiment.metric_info.{name}.higher_is_better={hib!r}: use true or false")


def load_scenario(name: str) -> ModuleType:
    try:
        module = importlib.import_module(f"trials.scenarios.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"trials.scenarios.{name}":
            raise
        raise ConfigError(f"experiment.scenario={name!r} is not a scenario; use one of {scenario_names()}") from None
    if not (callable(getattr(module, "run", None)) and isinstance(getattr(module, "METRICS", None), dict)):
        raise ConfigError(f"experiment.scenario={name!r}: trials.scenarios.{name} is a helper module, "
                          "not a scenario (it needs run(ctx) and METRICS)")
    return module


def experiment_keys(scenario: ModuleType) -> set[str]:
    """The experiment keys a scenario reads: every experiment's, its own OPTIONS and its material key."""
    material_key = getattr(scenario, "MATERIAL_KEY", None)
    return EXPERIMENT_KEYS | set(getattr(scenario, "OPTIONS", ())) | ({material_key} if material_key else set())


def scenario_names() -> list[str]:
    """The shipped scenarios (modules of trials.scenarios with run(ctx) and METRICS)."""
    folder = Path(__file__).resolve().parents[1] / "scenarios"
    names = []
    for p in sorted(folder.glob("*.py")):
        if p.stem not in ("__init__", "base"):
            module = importlib.import_module(f"trials.scenarios.{p.stem}")
            if callable(getattr(module, "run", None)) and isinstance(getattr(module, "METRICS", None), dict):
                names.append(p.stem)
    return names


def not_for_scenario(key: str, scenario: str, experiment: str = "") -> ConfigError | None:
    """The refusal of experiment key `key` that other scenarios read but `scenario` does not
    (None when no scenario reads it, or this one does)."""
    if key in experiment_keys(load_scenario(scenario)):
        return None
    readers = [s for s in scenario_names() if key in experiment_keys(load_scenario(s))]
    if not readers:
        return None
    which = f"experiment {experiment} (scenario {scenario})" if experiment and experiment != scenario \
        else f"the {scenario} scenario"
    return ConfigError(f"experiment.{key} does not apply to {which}: only the {', '.join(readers)} scenario(s) "
                       f"read it; fix: remove it, or pick an experiment of those scenarios")


def load_population(spec: dict[str, Any], seed: int) -> list[Any]:
    """`{path: library:<set> | <folder>}` or `{source: factory, spec: <name|path>, n: N}` -> personas."""
    from trials.persona import library_path, load_folder

    spec = dict(spec or {})
    source = spec.get("source", "folder")
    if source not in ("folder", "factory"):
        raise ConfigError(f"experiment.population.source={spec.get('source')!r}: use folder or factory")
    check_keys("experiment.population", spec, ("source", "path", "spec", "n"), "")
    # spec/n set on a folder population would change nothing (a leftover `path` of the experiment
    # file is fine with source=factory: that is how the README switches a shipped experiment)
    for key in ("spec", "n") if source == "folder" else ():
        if spec.get(key) is not None:
            raise ConfigError(f"experiment.population.{key}={spec[key]!r} is only read with "
                              "experiment.population.source=factory, and this population is source=folder "
                              f"({spec.get('path')}); fix: remove it, or add experiment.population.source=factory")
    if spec.get("source") == "factory":
        # sampled from explicit distributions with the run seed, narratives from templates (no LLM
        # call before the run); for LLM-written narratives run `trials population` and use its folder
        try:
            from trials.population.factory import sample_population
        except ImportError as exc:
            raise ConfigError(f"experiment.population.source=factory needs trials.population.factory: {exc}") from None
        if not spec.get("spec"):
            raise ConfigError("experiment.population.spec is missing; name a file of conf/population/ "
                              "(e.g. usa_adults) or a YAML path")
        try:
            return list(sample_population(spec["spec"], spec.get("n"), seed=seed, llm=None).personas)
        except Exception as exc:  # SpecError / FactoryError name the field and the fix
            raise ConfigError(f"experiment.population (factory spec {spec['spec']!r}): {exc}") from None
    raw = str(spec.get("path") or "")
    if not raw:
        raise ConfigError("experiment.population.path is empty; set it to library:difficult_people, "
                          "library:political, library:general or a folder of persona .json files")
    if raw.startswith("library:"):
        from trials.persona.files import library_sets

        name = raw.split(":", 1)[1]
        if name not in library_sets():
            raise ConfigError(f"experiment.population.path={raw!r}: no shipped persona set {name!r}"
                              f"{did_you_mean(name, library_sets())}; use one of "
                              f"{', '.join('library:' + s for s in library_sets())} or a folder of persona files")
    folder = library_path(raw.split(":", 1)[1]) if raw.startswith("library:") else Path(raw).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"experiment.population.path={raw!r}: {folder} is a file, but a folder of persona "
                          f".json files is expected; fix: give the folder that holds it (e.g. "
                          f"experiment.population.path={folder.parent})")
    if not folder.is_dir():
        raise ConfigError(f"experiment.population.path={raw!r}: folder {folder} does not exist")
    try:
        personas = load_folder(folder)
    except Exception as exc:  # PersonaError and friends name the file and the fix
        raise ConfigError(f"experiment.population.path={raw!r}: {exc}") from None
    if not personas:
        raise ConfigError(f"experiment.population.path={raw!r}: no persona files in {folder}")
    return personas


def resolve_n_jobs(cfg: dict[str, Any]) -> int:
    """run.n_jobs=auto: 1 when the agents or the judge run on the local backend (one llama.cpp
    model per process already uses every core, and more processes only oversubscribe the CPU);
    otherwise 4 (remote calls are I/O bound)."""
    n_jobs = (cfg.get("run") or {}).get("n_jobs", "auto")
    if n_jobs != "auto":
        return int(n_jobs)
    backends = {str((cfg.get("llm") or {}).get("backend")), str(judge_config(cfg).get("backend"))}
    return 1 if "local" in backends else 4


def divide_threads(jobs: list["Job"], n_jobs: int) -> None:
    """`n_threads: auto` on the local backend -> this machine's cores shared by `n_jobs` worker
    processes (each loads its own model), so the workers never oversubscribe the CPU."""
    if n_jobs == 1:
        return  # one process: the backend resolves auto to all the cores itself
    import os

    from trials.llm.local_backend import auto_threads

    workers = n_jobs if n_jobs > 0 else (os.cpu_count() or 1)  # -1 = one worker per core
    for job in jobs:
        for conf in (job.llm, job.judge):
            if conf.get("backend") == "local" and conf.get("n_threads", "auto") == "auto":
                conf["n_threads"] = auto_threads(workers)


def judge_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The judge is the agent LLM unless `judge` names its own backend; keys given without a
    backend (e.g. judge.temperature=0) refine a copy of the agent LLM config."""
    from trials.llm import resolve_judge_cfg

    return resolve_judge_cfg(dict(cfg.get("llm") or {}), dict(cfg.get("judge") or {}))


def check_llm_configs(cfg: dict[str, Any], arms: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each arm's merged {"llm": ..., "judge": ...} configs, checked."""
    from trials.llm import LLMConfigError
    from trials.llm.config import parse_llm_config

    llm, judge = dict(cfg.get("llm") or {}), judge_config(cfg)
    merged = {}
    for arm, arm_cfg in arms.items():
        merged[arm] = {"llm": deep_merge(llm, arm_cfg.get("llm") or {}),
                       "judge": deep_merge(judge, arm_cfg.get("judge") or {})}
        for where, conf in merged[arm].items():
            try:
                parse_llm_config(conf, where)
            except LLMConfigError as exc:
                raise ConfigError(f"{exc} (arm {arm!r})") from None
    return merged


@dataclass
class Plan:
    scenario: ModuleType
    experiment: dict[str, Any]
    arms: dict[str, dict[str, Any]]
    control: str
    jobs: list[Job]
    population_size: int
    aa_arms: list[str]
    #: arm -> its effective config (experiment keys, steering, llm, judge): manifest `arm_configs`
    arm_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: factorial designs: factor -> levels (manifest `factors`); arm -> factor -> level
    factors: dict[str, list[str]] = field(default_factory=dict)
    levels: dict[str, dict[str, str]] = field(default_factory=dict)


def _whole(value: Any, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{key}={value!r}: need a whole number >= {low} (e.g. {key}={max(low, 2)})")
    return value


def origin(source: str | None, overrides: Any = ()) -> Any:
    """`where(key) -> (text, yaml)` for messages about an experiment key: given on the command
    line (`overrides`; text "", examples in override form), else set in the experiment file
    `source` or a parent it inherits (examples in YAML form), else unknown ("", override form)."""
    given = [o.split("=", 1)[0].lstrip("+~") for o in overrides or () if "=" in o]
    given = [k for k in given if "." in k]  # `experiment=hello` is a choice of file, not a key

    def where(key: str) -> tuple[str, bool]:
        plain = key.split("[")[0]
        if any(plain == k or plain.startswith(k + ".") or k.startswith(plain + ".") for k in given):
            return "", False
        if source:
            return f" (set in {source} or a parent experiment it inherits)", True
        return "", False
    return where


def check_types(exp: dict[str, Any], scenario: ModuleType, where: Any) -> None:
    """The type of every experiment key, of every arm's, arm_defaults' and factor level's
    overrides, against the scenario's schema (`<scenario>.Fields`, trials.scenarios.fields):
    ConfigError naming the key, where it was set, and an example of the right form."""
    fields = getattr(scenario, "Fields", ExperimentFields)
    arm_fields = type(f"{fields.__name__}Arm", (fields, ArmFields), {})
    parts = [("experiment", exp, fields)]
    if isinstance(exp.get("arm_defaults"), dict):
        parts.append(("experiment.arm_defaults", exp["arm_defaults"], arm_fields))
    for arm, over in (exp.get("arms") or {}).items() if isinstance(exp.get("arms"), dict) else ():
        if isinstance(over, dict):
            parts.append((f"experiment.arms.{arm}", over, arm_fields))
    for factor, levels in (exp.get("factors") or {}).items() if isinstance(exp.get("factors"), dict) else ():
        for level, over in (levels or {}).items() if isinstance(levels, dict) else ():
            if isinstance(over, dict):
                parts.append((f"experiment.factors.{factor}.{level}", over, arm_fields))
    for prefix, values, model in parts:
        for problem in type_problems(values, model, prefix, where):
            raise ConfigError(problem)


def _check_experiment(name: str, exp: dict[str, Any], scenario: ModuleType, where_set: Any = None) -> None:
    """One arm's experiment config: metrics, own propositions, agent options (types and numbers:
    `check_types`)."""
    from trials.judging.propositions import CLAIM_VARIABLES, from_config
    from trials.scenarios.base import check_agent_options, metrics_of

    where = "experiment" if name == "" else f"experiment (arm {name!r})"
    where_set = where_set or origin(None)
    for prop, spec in dict(exp.get("propositions") or {}).items():
        if prop in scenario.METRICS:
            raise ConfigError(f"experiment.propositions.{prop}: scenario {exp['scenario']!r} already measures "
                              f"a metric {prop!r}; give your proposition another name")
        try:  # the values are the session's: here their names are checked
            from_config(str(prop), spec, **dict.fromkeys(CLAIM_VARIABLES, ""))
        except ValueError as exc:
            raise ConfigError(f"{exc}{where_set(f'experiment.propositions.{prop}')[0]}") from None
    known = metrics_of(scenario.METRICS, exp)
    if exp.get("metrics") == []:
        raise ConfigError(f"{where}.metrics is empty{where_set('experiment.metrics')[0]}: list at least one of "
                          f"{sorted(known)} (or leave experiment.metrics out to measure all of them)")
    unknown_metrics = [m for m in (exp.get("metrics") or []) if m not in known]
    if unknown_metrics:
        raise ConfigError(f"{where}.metrics: {sorted(unknown_metrics)} not computed by scenario "
                          f"{exp['scenario']!r}{did_you_mean(unknown_metrics[0], known)}; it computes "
                          f"{sorted(scenario.METRICS)}; define your own under experiment.propositions")
    try:
        check_agent_options(exp)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def plain_values(tree: Any) -> Any:
    """The config with numpy scalars and arrays as plain Python values (a config built in Python,
    e.g. `run.replicates = np.int64(4)` from `np.arange`): every check then accepts a whole number
    whatever its type, every message shows `4` rather than `np.int64(4)`, and config.yaml can be
    written. Mappings and lists are copied; everything else is returned as is."""
    if isinstance(tree, dict):
        return {k: plain_values(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [plain_values(v) for v in tree]
    if isinstance(tree, np.ndarray):
        return tree.tolist()
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def check_cluster(run: dict[str, Any]) -> None:
    """`run.cluster`: null, `local`, or a scheduler address scheme://host:port, and only with
    run.backend=dask (any other engine would silently ignore it)."""
    cluster = run.get("cluster")
    if cluster is None:
        return
    if run.get("backend", "auto") != "dask":
        raise ConfigError(f"run.cluster={cluster} is only used with run.backend=dask (run.backend="
                          f"{run.get('backend', 'auto')} ignores it); fix: add run.backend=dask, or drop run.cluster")
    if cluster == "local":
        return
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(str(cluster))
        ok = bool(parts.scheme and parts.hostname and parts.port is not None and parts.path in ("", "/"))
    except ValueError:  # e.g. a port that is not a number
        ok = False
    if not ok:
        raise ConfigError(f"run.cluster={cluster!r}: give `local` (a LocalCluster on this machine) or the "
                          "address of a running Dask scheduler as scheme://host:port, e.g. "
                          "run.cluster=tcp://10.0.0.5:8786")


def build_plan(cfg: dict[str, Any], root: Path, source: str | None = None, overrides: Any = ()) -> Plan:
    """The jobs of an experiment after every config check (ConfigError naming the key and the fix).
    `source`: the experiment file, named in messages about keys it may have set (unless
    `overrides`, the command line's, set them)."""
    cfg = plain_values(cfg)
    exp = dict(cfg.get("experiment") or {})
    run = dict(cfg.get("run") or {})
    check_keys("", cfg, TOP_KEYS["config"])
    check_keys("run", run, RUN_KEYS)
    check_keys("cache", dict(cfg.get("cache") or {}), CACHE_KEYS)
    if not exp.get("scenario"):
        raise ConfigError("no experiment selected; add experiment=<name> (see conf/experiment/)")
    scenario = load_scenario(str(exp["scenario"]))
    material_key = getattr(scenario, "MATERIAL_KEY", None)
    known_keys = experiment_keys(scenario)
    for key in sorted(set(map(str, exp)) - known_keys):
        if (refusal := not_for_scenario(key, str(exp["scenario"]), str(exp.get("name") or ""))) is not None:
            raise refusal
    check_keys("experiment", exp, known_keys)

    replicates = run.get("replicates")
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise ConfigError(f"run.replicates={replicates!r}: need a whole number >= 1 (e.g. run.replicates=2)")
    n_jobs = run.get("n_jobs", "auto")
    if not (n_jobs == "auto" or (isinstance(n_jobs, int) and (n_jobs >= 1 or n_jobs == -1))):
        raise ConfigError(f"run.n_jobs={n_jobs!r}: use auto, a whole number >= 1, or -1 (all cores)")
    _whole(run.get("threads_per_session", 4), "run.threads_per_session", 1)
    for key in ("paired", "dry_run", "analyze", "report"):
        if not isinstance(run.get(key, True), bool):
            raise ConfigError(f"run.{key}={run[key]!r}: use true or false")
    if run.get("backend", "auto") not in BACKENDS:
        raise ConfigError(f"run.backend={run.get('backend')!r}: use one of {', '.join(BACKENDS)}")
    check_cluster(run)

    where_set = origin(source, overrides)
    check_types(exp, scenario, where_set)
    design: Design = resolve_design(exp, known_keys)
    arms, control = design.arms, design.control
    for name, arm_exp in design.experiments.items():
        _check_experiment(name if len(arms) > 1 else "", arm_exp, scenario, where_set)
    from trials.run.validation import check_validation
    from trials.scenarios.base import metrics_of

    check_validation(exp, metrics_of(scenario.METRICS, exp))  # raises ConfigError
    check_report_keys(exp, list(metrics_of(scenario.METRICS, exp)), source)
    llm_configs = check_llm_configs(cfg, arms)
    from trials.scenarios.steer import validate

    for name, arm in arms.items():
        arm_exp = design.experiments[name]
        try:
            validate(name, arm, arm_exp.get("propositions"), dict(arm_exp.get("intervention_options") or {}))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    arm_configs = {a: effective_config(design.experiments[a], arms[a], llm_configs[a]["llm"],
                                       llm_configs[a]["judge"]) for a in arms}
    aa = [a for a in arms if a != control and arm_configs[a] == arm_configs[control]]

    seed = _whole(run.get("seed", 0), "run.seed", 0) if run.get("seed") is not None else 0
    populations: dict[str, list[Any]] = {}  # the population spec (JSON) -> personas, loaded once
    for name, arm_exp in design.experiments.items():
        key = repr(sorted((arm_exp.get("population") or {}).items()))
        if key not in populations:
            populations[key] = load_population(dict(arm_exp.get("population") or {}), seed)
        group = int(arm_exp.get("group_size") or 1)
        if group > len(populations[key]):
            raise ConfigError(f"experiment.group_size={group} but the population "
                              f"({arm_exp.get('population')}) has only {len(populations[key])} personas; "
                              f"lower experiment.group_size or use a larger population"
                              + (f" (arm {name!r})" if len(arms) > 1 else ""))
    paired = bool(run.get("paired", True))

    dumped = {k: [p.model_dump(mode="json") for p in pop] for k, pop in populations.items()}  # read-only
    jobs = []
    for r in range(replicates):
        for arm in arms:
            arm_exp = design.experiments[arm]
            people = dumped[repr(sorted((arm_exp.get("population") or {}).items()))]
            materials = list(arm_exp.get(material_key) or []) if material_key else []
            base = derive_seed(seed, r) if paired else derive_seed(seed, r, arm)
            rng = np.random.default_rng(base)
            chosen = rng.choice(len(people), size=int(arm_exp.get("group_size") or 1), replace=False)
            # the material's own stream: an arm that changes group_size still gets the same item
            # index (its own list's item when it overrides the material: pitch A vs pitch B)
            pick = np.random.default_rng(derive_seed(base, "material"))
            material = materials[int(pick.integers(len(materials)))] if materials else None
            jobs.append(Job(
                arm=arm, replicate=r, session=f"{arm}-r{r}", seed=base, scenario=str(exp["scenario"]),
                experiment=arm_exp, arm_config=arms[arm],
                # own copies: divide_threads sets n_threads per job
                llm=copy.deepcopy(llm_configs[arm]["llm"]), judge=copy.deepcopy(llm_configs[arm]["judge"]),
                cache=dict(cfg.get("cache") or {}) or None, prices=cfg.get("prices"),
                personas=[people[int(i)] for i in chosen],
                material=material, threads=int(run.get("threads_per_session", 4)), root=str(root),
                extra={"factors": design.levels.get(arm, {}), "arm_config": arm_configs[arm]}))
    size = len(next(iter(populations.values())))
    return Plan(scenario, exp, arms, control, jobs, size, aa, arm_configs, design.factors, design.levels)
