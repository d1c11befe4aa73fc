"""The paper's phased route: a description -> sampling dimensions -> a plan -> rows of attributes.

Each phase's output is a JSON file (dimensions.json, plan.json) a user can inspect, edit and feed
back (`dimensions=...`, `plan=...`). The LLM proposes; we validate and fix: values not in a
dimension are dropped, quantities are rescaled to sum to N by largest remainder (the fix is
recorded in the plan), and when the LLM gives nothing usable a deterministic fallback (percentage
tables found in a JSON description; quota sampling over the dimensions) is used and recorded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from trials.llm.base import LLMError
from trials.population.description import DIM_LINES, dimensions_from_data, normalise, parse_dimension_lines, parse_plan_lines
from trials.population.narrative import prefers_json
from trials.population.quotas import largest_remainder, sample_attributes
from trials.population.spec import FactoryError, PopulationSpec, SpecError, validate_spec

log = logging.getLogger(__name__)


class DimensionDraft(BaseModel):
    name: str
    values: list[str]
    percentages: list[float]


class DimensionsDraft(BaseModel):
    dimensions: list[DimensionDraft]


class GroupDraft(BaseModel):
    values: list[str]
    quantity: int


class PlanDraft(BaseModel):
    groups: list[GroupDraft]


def propose_dimensions(llm: Any, text: str, data: Any, spec: PopulationSpec) -> dict[str, Any]:
    warnings: list[str] = []
    if len(text) > spec.description_max_chars:
        warnings.append(f"description cut from {len(text)} to {spec.description_max_chars} characters for the prompt")
        text = text[: spec.description_max_chars]
    prompt = (f"Population description:\n{text}\n\nList up to {spec.max_dimensions} dimensions (like age group, "
              "gender, occupation) to pick a varied sample of people from this population. For each, give its "
              "values and the percentage of people with each value.")
    dims: list[dict[str, Any]] = []
    source = "description"
    if llm is not None:
        try:
            if prefers_json(llm):
                reply = llm.chat([{"role": "user", "content": prompt}], purpose="factory", schema=DimensionsDraft,
                                 protocol="json", max_tokens=400, seed=0)
                drafted = reply.data.model_dump() if isinstance(reply.data, BaseModel) else (reply.data or {})
            else:
                reply = llm.chat([{"role": "user", "content": prompt + DIM_LINES}], purpose="factory",
                                 max_tokens=300, seed=0)
                drafted = {"dimensions": parse_dimension_lines(reply.text)}
            dims = normalise(drafted.get("dimensions", []))[: spec.max_dimensions]
            source = "llm"
            if not dims:
                warnings.append("dimensions: the LLM proposed no usable dimension (each needs a name and 2+ "
                                f"values); it replied: {reply.text[:200]!r}")
        except LLMError as exc:
            warnings.append(f"dimensions: the LLM failed ({type(exc).__name__}: {str(exc)[:160]})")
    if not dims:
        dims = dimensions_from_data(data, spec.max_dimensions) if data is not None else []
        source = "description"
        if dims:
            warnings.append("dimensions: taken from the percentage tables of the description file")
    if not dims:
        raise FactoryError(f"{spec.source}: no sampling dimensions could be derived from the description; "
                           "fix: use a stronger model, or write dimensions.json by hand and pass dimensions=<path>")
    return {"source": source, "warnings": warnings, "dimensions": dims}


def _spec_over(dims: list[dict[str, Any]], source: str) -> PopulationSpec:
    attrs = {d["name"]: {"values": dict(zip(d["values"], d["proportions"]))} for d in dims}
    return validate_spec({"name": "dimensions", "attributes": attrs}, source)


def propose_plan(llm: Any, dims: list[dict[str, Any]], n: int, seed: int) -> dict[str, Any]:
    warnings: list[str] = []
    groups: list[dict[str, Any]] = []
    source = "quotas"
    if llm is not None:
        listing = "\n".join(f"{i + 1}. {d['name']}: " + ", ".join(f"{v} ({p:.0%})" for v, p in zip(d["values"], d["proportions"]))
                            for i, d in enumerate(dims))
        prompt = (f"We need {n} people. Dimensions:\n{listing}\n\nWrite a sampling plan: groups of people, each "
                  f"with one value for every dimension (in the order above) and a quantity. The quantities must "
                  f"add up to {n}.")
        try:
            if prefers_json(llm):
                reply = llm.chat([{"role": "user", "content": prompt}], purpose="factory", schema=PlanDraft,
                                 protocol="json", max_tokens=500, seed=1)
                drafted = reply.data.model_dump() if isinstance(reply.data, BaseModel) else (reply.data or {})
            else:
                example = " | ".join(d["values"][0] for d in dims)
                reply = llm.chat([{"role": "user", "content": f"{prompt}\nOne line per group, like:\n3: {example}"}],
                                 purpose="factory", max_tokens=300, seed=1)
                drafted = {"groups": parse_plan_lines(reply.text)}
            groups = check_groups([{"attributes": dict(zip([d["name"] for d in dims], g.get("values", []))),
                                    "quantity": g.get("quantity", 0)} for g in drafted.get("groups", [])], dims, warnings)
            source = "llm"
        except LLMError as exc:
            warnings.append(f"plan: the LLM failed ({type(exc).__name__}: {str(exc)[:160]})")
    if not groups or sum(g["quantity"] for g in groups) <= 0:
        if llm is not None:
            warnings.append("plan: no usable group from the LLM; used exact quota sampling over the dimensions")
        table, _ = sample_attributes(_spec_over(dims, "dimensions.json"), n, seed)
        counts = table.value_counts(sort=False)
        groups = [{"attributes": dict(zip(table.columns, key)), "quantity": int(q)} for key, q in counts.items()]
        source = "quotas"
    return fix_sum({"source": source, "n": n, "warnings": warnings, "groups": groups}, n)


def check_groups(groups: list[dict[str, Any]], dims: list[dict[str, Any]], warnings: list[str]) -> list[dict[str, Any]]:
    """Keep groups whose every dimension has a known value (matched case-insensitively)."""
    lookup = {d["name"]: {v.lower(): v for v in d["values"]} for d in dims}
    kept = []
    for i, g in enumerate(groups):
        attrs, quantity = g.get("attributes") or {}, g.get("quantity")
        fixed = {name: lookup[name].get(str(attrs.get(name, "")).strip().lower()) for name in lookup}
        if None in fixed.values() or not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            warnings.append(f"plan: dropped group {i} {attrs} x {quantity!r} (unknown value or bad quantity)")
            continue
        kept.append({"attributes": fixed, "quantity": quantity})
    return kept


def fix_sum(plan: dict[str, Any], n: int) -> dict[str, Any]:
    """Rescale quantities to sum to n by largest remainder, recording the fix in plan["fix"]."""
    total = sum(g["quantity"] for g in plan["groups"])
    plan["fix"] = None
    if total != n:
        new = largest_remainder({str(i): float(g["quantity"]) for i, g in enumerate(plan["groups"])}, n)
        plan["fix"] = {"original_total": total, "target_total": n, "method": "largest remainder rescaling",
                       "changes": [{"group": i, "from": g["quantity"], "to": new[str(i)]}
                                   for i, g in enumerate(plan["groups"]) if g["quantity"] != new[str(i)]]}
        plan["warnings"].append(f"plan: quantities summed to {total}, rescaled to {n} (largest remainder)")
        for i, g in enumerate(plan["groups"]):
            g["quantity"] = new[str(i)]
    plan["n"] = n
    return plan


def load_json(path: str, source: str, field: str, key: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(source, field, f"cannot read {path} ({exc})", f"give a {key}-file written by a previous run") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise SpecError(source, field, f"{path} has no '{key}' list", f"keep the '{key}' list of the saved file")
    return data


def plan_rows(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(g["attributes"]) for g in plan["groups"] for _ in range(g["quantity"])]


#: persona fields that are not free text: a dimension with that name is stored under another field
_RESERVED = {"age": "age_range", "name": "name_group", "personality": "personality_group",
             "preferences": "preferences_group", "beliefs": "beliefs_group", "skills": "skills_group",
             "behaviors": "behaviors_group", "relationships": "relationships_group", "tags": "tags_group",
             "other_facts": "other_facts_group", "long_term_goals": "long_term_goals_group"}


def field_for(dimension: str) -> str:
    """The persona field of a dimension: its name, unless that name is a structured persona field."""
    return _RESERVED.get(dimension, dimension)
