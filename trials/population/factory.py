"""The population factory: sample personas from explicit distributions or from a description.

    from trials.population.factory import sample_population
    pop = sample_population("gazpacho_respondents", n=50, seed=0, llm=llm)
    pop.personas, pop.table, pop.profile, pop.duplicates, pop.warnings
    write_population(pop, "populations/gazpacho")   # personas/*.json, population.csv, profile.csv

Routes (`route` in the spec): "distributions" samples attributes with exact quotas
(`trials.population.quotas`), "description" runs the paper's phased route
(`trials.population.phased`). Either way the LLM writes only the narrative fields
(`trials.population.narrative`); names are made unique (`trials.population.names`).
"""

from __future__ import annotations

import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from trials.persona import Persona, save_persona
from trials.llm.cache import replay_problem
from trials.population import phased
from trials.population.description import read_description
from trials.population.assemble import build_persona, facts_for
from trials.population.names import NameRegistry, country_key
from trials.population.narrative import write_narrative
from trials.population.profile import near_duplicates, profile_table
from trials.population.quotas import Target, bin_of, largest_remainder, parse_band, sample_attributes
from trials.population.spec import (FactoryError, Numeric, PopulationSpec, SpecError, load_spec,
                                    spec_path)

log = logging.getLogger(__name__)
__all__ = ["FactoryError", "Population", "SpecError", "load_spec", "population_from_hydra", "sample_population",
           "spec_path", "write_population"]


@dataclass
class Population:
    personas: list[Persona]
    table: pd.DataFrame  # one row per persona: index, name, sampled attributes, narrative_source
    profile: pd.DataFrame
    duplicates: pd.DataFrame
    warnings: list[str]
    spec: str
    seed: int
    phases: dict[str, Any] = field(default_factory=dict)  # description route: dimensions, plan


def sample_population(spec: str | Path | dict | PopulationSpec, n: int | None = None, seed: int = 0,
                      llm: Any = None, *, out: str | Path | None = None, duplicate_threshold: float = 0.8,
                      progress: Callable[[str, int], Callable[[int], None]] | None = None) -> Population:
    """N personas from a spec (a name under conf/population/, a YAML path, a mapping or a spec).
    `llm=None` writes template narratives only. `out`: where the phased route saves its phase files.
    `progress(what, total)`, if given, returns `advance(k)`, called as narratives are done and as
    personas are checked for near-duplicates (`trials population` shows it on stderr)."""
    spec = load_spec(spec)
    if n is not None and n < 1:
        raise SpecError(spec.source, "n", f"n={n}", "ask for at least one persona")
    llm = llm.bind(seed=seed) if llm is not None and hasattr(llm, "bind") else llm
    if spec.route == "description":
        rows, fields, targets, phases, warnings = _phased(spec, n, seed, llm, out)
        binners: dict[str, Any] = {}
        labels: dict[str, str] = {}
    else:
        size = n if n is not None else spec.n
        table, targets = sample_attributes(spec, size, seed)
        rows = table.to_dict("records")
        fields = {a: (attr.field or a) for a, attr in spec.attributes.items()}
        fields.update({a: g.field.get(a, a) for g in spec.joint for a in g.attributes})
        labels = {a: attr.label for a, attr in spec.attributes.items() if attr.label}
        binners = {a: (lambda x, at=attr: bin_of(at, x)) for a, attr in spec.attributes.items()
                   if isinstance(attr, Numeric) and attr.range is not None}
        phases, warnings = {}, []
    if llm is None or spec.narrative.mode == "template":
        warnings.append("no LLM narrative (llm=None or narrative.mode=template): narratives come from the template")
    personas, narr_sources, more = _personas(spec, rows, fields, labels, seed, llm,
                                             progress("narratives", len(rows)) if progress else None)
    warnings += more
    table = pd.DataFrame([{"index": i, "name": p.name, **row, "narrative_source": s}
                          for i, (p, row, s) in enumerate(zip(personas, rows, narr_sources))])
    profile = profile_table(table, targets, binners)
    check = progress("near-duplicate check", len(personas)) if progress and len(personas) > 1 else None
    dups = near_duplicates([p.to_dict() for p in personas], duplicate_threshold, check)
    for _, d in dups.iterrows():
        warnings.append(f"near-duplicate personas: {d['a']!r} and {d['b']!r} (Jaccard {d['jaccard']:.2f})")
    return Population(personas, table, profile, dups, warnings, spec.name, seed, phases)


def _personas(spec: PopulationSpec, rows: list[dict], fields: dict[str, str], labels: dict[str, str], seed: int,
              llm: Any, advance: Callable[[int], None] | None = None) -> tuple[list[Persona], list[str], list[str]]:
    cfg = spec.narrative
    facts = [facts_for(row, fields, labels, spec.fixed) for row in rows]

    def one(i: int) -> tuple[dict, str, list[str]]:
        draft = write_narrative(llm, facts[i], about=spec.about, mode=cfg.mode, max_tokens=cfg.max_tokens,
                                temperature=cfg.temperature, seed=seed, index=i)
        if advance is not None:
            advance(1)
        return draft

    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:  # map keeps index order: deterministic
        drafts = list(pool.map(one, range(len(rows))))
    registry = NameRegistry(seed)
    personas, sources, warnings = [], [], []
    gender_attr = next((a for a, f in fields.items() if f == "gender"), None)
    for i, (row, (narrative, source, w)) in enumerate(zip(rows, drafts)):
        warnings += w
        gender = row.get(gender_attr) if gender_attr else spec.fixed.get("gender")
        country = country_key(spec.fixed.get("nationality"), spec.fixed.get("country"),
                              spec.fixed.get("residence"), *row.values(), narrative.get("residence"))
        name = registry.claim(narrative.get("name"), i, country=country, gender=gender)
        personas.append(build_persona(name=name, attributes=row, fields=fields, fixed=spec.fixed,
                                      narrative=narrative, source=source))
        sources.append(source)
    for index, proposed, final in registry.renamed:
        why = "repeated" if proposed.strip().lower() in registry.taken else "missing or implausible"
        warnings.append(f"persona {index}: name {proposed[:40]!r} {why}; renamed to {final!r}")
    return personas, sources, warnings


def _phased(spec: PopulationSpec, n: int | None, seed: int, llm: Any, out: str | Path | None):
    """Phases 1-2 of the description route (each saved to `out` as soon as it exists)."""
    folder = Path(out) if out is not None else None
    if spec.plan:
        saved = phased.load_json(spec.plan, spec.source, "plan", "groups")
        dim_list = phased.normalise(saved.get("dimensions") or []) or _dims_of(saved)
        dims = {"source": f"plan file {spec.plan}", "warnings": [], "dimensions": dim_list}
        size = n if n is not None else sum(int(g.get("quantity", 0)) for g in saved["groups"])
        warnings: list[str] = []
        groups = phased.check_groups(saved["groups"], dim_list, warnings)
        plan = phased.fix_sum({"source": f"file {spec.plan}", "warnings": warnings, "groups": groups}, size)
        plan["dimensions"] = dim_list
    else:
        size = n if n is not None else spec.n
        if spec.dimensions:
            dims = phased.load_json(spec.dimensions, spec.source, "dimensions", "dimensions")
            dims = {**dims, "source": f"file {spec.dimensions}", "dimensions": phased.normalise(dims["dimensions"])}
        else:
            text, data = read_description(spec)
            dims = phased.propose_dimensions(llm, text, data, spec)
        _save(folder, "dimensions.json", dims)
        plan = phased.propose_plan(llm, dims["dimensions"], size, seed)
        plan["dimensions"] = dims["dimensions"]
    _save(folder, "plan.json", plan)
    # rows and targets are keyed by persona field ("age" dimension -> "age_range" column)
    rename = {d["name"]: phased.field_for(d["name"]) for d in plan["dimensions"]}
    rows = [{rename.get(k, k): v for k, v in r.items()} for r in phased.plan_rows(plan)]
    fields = {f: f for f in rename.values()}
    _add_age(rows, fields, seed)
    targets = []
    for d in plan["dimensions"]:
        counts = largest_remainder(dict(zip(d["values"], d["proportions"])), size)
        targets += [Target(rename[d["name"]], v, p, counts[v]) for v, p in zip(d["values"], d["proportions"])]
    warnings = list(dims.get("warnings", [])) + list(plan["warnings"])
    return rows, fields, targets, {"dimensions": dims, "plan": plan}, warnings


def _add_age(rows: list[dict], fields: dict[str, str], seed: int) -> None:
    """A whole-year `age` uniform inside an age band dimension ("25-54", "65+"), when there is one."""
    band = next((d for d, f in fields.items() if f == "age_range"), None)
    if band is None or "age" in fields.values():
        return
    rng = np.random.default_rng([seed, 7])
    bands = [parse_band(str(r.get(band, "")), 90) for r in rows]
    if rows and all(bands):
        for row, (lo, hi) in zip(rows, bands):  # type: ignore[misc]
            row["age"] = int(rng.integers(int(lo), int(hi) + 1))
        fields["age"] = "age"


def _dims_of(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Dimensions implied by a plan file without them: each attribute's values, equal weights."""
    values: dict[str, list[str]] = {}
    for g in plan["groups"]:
        for k, v in (g.get("attributes") or {}).items():
            if str(v) not in values.setdefault(k, []):
                values[k].append(str(v))
    return [{"name": k, "values": v, "proportions": [1 / len(v)] * len(v)} for k, v in values.items()]


def _save(folder: Path | None, name: str, data: dict[str, Any]) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")[:40] or "persona"


def write_population(pop: Population, out: str | Path, recorder: Any = None) -> Path:
    """out/personas/NNN_Name.json (a folder for `experiment.population.path`), population.csv,
    profile.csv, duplicates.csv, warnings.txt, population.json (+ llm_calls.csv)."""
    out = Path(out)
    folder = out / "personas"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    for i, p in enumerate(pop.personas):
        save_persona(p, folder / f"{i:03d}_{_slug(p.name)}.json")
    pop.table.to_csv(out / "population.csv", index=False)
    pop.profile.to_csv(out / "profile.csv", index=False)
    pop.duplicates.to_csv(out / "duplicates.csv", index=False)
    (out / "warnings.txt").write_text("".join(f"{w}\n" for w in pop.warnings), encoding="utf-8")
    if recorder is not None and getattr(recorder, "rows", None):
        recorder.to_frame().to_csv(out / "llm_calls.csv", index=False)
    meta = {"spec": pop.spec, "seed": pop.seed, "n": len(pop.personas), "personas": str(folder),
            "narrative_sources": pop.table["narrative_source"].value_counts().to_dict() if len(pop.table) else {},
            "n_warnings": len(pop.warnings), "n_near_duplicates": len(pop.duplicates),
            "max_abs_deviation": pop.profile.groupby("attribute")["max_abs_deviation"].first().to_dict()}
    (out / "population.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    return out


def population_from_hydra(cfg: Any) -> int:
    """`trials population population=<spec> [llm=...] [run.seed=S] [n=N] out=DIR`. Returns 0; a
    user error is printed to stderr and exits with status 2 (Hydra drops a task's return value)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from trials.llm import CallRecorder, build_llm

    try:
        choice = HydraConfig.get().runtime.choices.get("population", "population")
    except ValueError:  # not running under Hydra (tests call this directly)
        choice = "population"
    try:
        seed, spec, size, out = population_settings(OmegaConf.to_container(cfg, resolve=True), choice)
        recorder = CallRecorder()
        llm_cfg = OmegaConf.to_container(cfg.llm, resolve=True)
        llm = build_llm(llm_cfg, _plain(cfg.get("cache")), _plain(cfg.get("prices"))).bind(seed=seed, recorder=recorder)
        _say_start(spec, size, seed, llm_cfg)
        pop = sample_population(spec, size, seed, llm, out=out, progress=_console_progress)
        write_population(pop, out, recorder)
    except (FactoryError, ValueError, OSError) as exc:
        print(f"trials population: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{len(pop.personas)} personas, {len(pop.warnings)} warnings (see warnings.txt); profile: {out / 'profile.csv'}")
    print(f"population folder: {out}")
    print(f"personas: {out / 'personas'}")
    return 0


def population_settings(cfg: dict[str, Any], choice: str = "population") -> tuple[int, PopulationSpec, int | None, Path]:
    """(seed, spec, n or None, out folder) of a resolved `trials population` config, checked (a
    FactoryError naming the key); `choice`: the conf/population/ name, for messages. Also the
    check `trials population` runs before Hydra writes anything."""
    seed = _whole_number("run.seed", (cfg.get("run") or {}).get("seed"), 0)
    spec = load_spec(dict(cfg.get("population") or {}), source=f"conf/population/{choice}.yaml")
    size = _whole_number("n", cfg["n"], 1) if cfg.get("n") is not None else None
    if spec.route != "description":  # what the spec refuses at this n (min_count, ...): before anything is written
        sample_attributes(spec, size if size is not None else spec.n, seed)
    if cfg.get("out") is not None and not str(cfg["out"]).strip():
        raise FactoryError("out='' is empty; fix: out=<folder> (or leave it out for populations/<spec>-n<N>-s<seed>)")
    out = Path(cfg.get("out") or f"populations/{spec.name}-n{size or spec.n}-s{seed}")
    force = cfg.get("force", False)
    if not isinstance(force, bool):  # `force=no` arrives as the text 'no', which is truthy
        raise FactoryError(f"force={force!r}: use true or false")
    _check_out(out, force)
    problem = replay_problem(cfg.get("cache"))
    if problem:
        raise FactoryError(problem)
    return seed, spec, size, out


#: what `trials population` writes into `out` (an existing one is replaced only with force=true)
OUTPUTS = ("personas", "population.json", "population.csv", "profile.csv", "duplicates.csv", "warnings.txt",
           "llm_calls.csv", "dimensions.json", "plan.json")


def _check_out(out: Path, force: bool) -> None:
    """`out` can be written, and holds no earlier population unless `force` (like `trials init`
    and `trials validate`): else a FactoryError naming the fix."""
    from trials.folders import out_folder_message

    message = out_folder_message("out=", out)
    if message:
        raise FactoryError(message.replace("= ", "=", 1))
    held = [name for name in OUTPUTS if (out / name).exists()]
    if held and not force:
        raise FactoryError(f"out={out} already holds a population ({', '.join(held)}); pass force=true to "
                           "replace it, or give another out=")


def _say_start(spec: PopulationSpec, size: int | None, seed: int, llm_cfg: dict[str, Any]) -> None:
    """One line on stderr before the work: how many personas and LLM calls, then the duplicate check."""
    n = size or (None if spec.plan else spec.n)
    calls = "template narratives" if spec.narrative.mode == "template" else \
        f"{n or 'one per persona'} narrative call(s) to {llm_cfg.get('backend')} {llm_cfg.get('model') or ''}".rstrip()
    count = n or "the plan's"
    print(f"sampling {count} personas from {spec.name} (seed {seed}, {spec.route} route): {calls}, "
          "then a near-duplicate check (exact Jaccard join) ...", file=sys.stderr, flush=True)


def _console_progress(what: str, total: int) -> Callable[[int], None]:
    """Progress of one step on stderr: a live bar on a terminal, else a line at every 10%.
    Returns `advance(k)`."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    bar = tqdm(total=total, desc=what, file=sys.stderr, dynamic_ncols=True, disable=not tty, leave=False)
    state = {"done": 0, "said": 0}

    def advance(k: int = 1) -> None:
        bar.update(k)
        state["done"] += k
        tenth = state["done"] * 10 // max(1, total)
        if not tty and tenth > state["said"]:
            state["said"] = tenth
            print(f"  {what}: {state['done']:,}/{total:,}", file=sys.stderr, flush=True)
        if state["done"] >= total:
            bar.close()
    return advance


def _whole_number(key: str, value: Any, low: int) -> int:
    """A command-line number (`n=abc` arrives as the string 'abc'): an int >= low, else a
    FactoryError naming the key and the expected type."""
    try:
        number = int(value) if not isinstance(value, (bool, float)) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < low:
        raise FactoryError(f"{key}={value!r}: expected a whole number >= {low} (e.g. {key}={max(low, 1) * 20})")
    return number


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if node is not None else None
