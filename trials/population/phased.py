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
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from trials.llm.base import LLMError
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


def snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "dimension"


def read_description(spec: PopulationSpec) -> tuple[str, Any]:
    """(prompt text, parsed JSON or None) from a file path or inline text."""
    raw = spec.description or ""
    path = Path(raw).expanduser()
    looks_like_path = raw.endswith((".json", ".txt", ".md")) or "/" in raw
    if looks_like_path and not path.is_file():
        raise SpecError(spec.source, "description", f"file not found: {raw}", "give the path of a JSON or text file")
    text = path.read_text(encoding="utf-8") if looks_like_path else raw
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text, None
    return "\n".join(_flatten(data)), data


def _flatten(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, dict):
        return [line for k, v in data.items() for line in _flatten(v, f"{prefix}{k} > " if isinstance(v, (dict, list)) else f"{prefix}{k}")]
    if isinstance(data, list):
        return [f"{prefix.rstrip(' >')}: {', '.join(map(str, data))}"] if all(not isinstance(x, (dict, list)) for x in data) else [
            line for x in data for line in _flatten(x, prefix)]
    return [f"{prefix}: {data}"]


def _percent(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", str(value))
    return float(m[1]) if m else None


def dimensions_from_data(data: Any, limit: int) -> list[dict[str, Any]]:
    """Percentage tables ({label: "18.6%"}, >= 2 labels) found anywhere in a JSON description."""
    found: list[dict[str, Any]] = []

    def walk(node: Any, key: str) -> None:
        if not isinstance(node, dict):
            return
        pct = {k: _percent(v) for k, v in node.items()}
        if len(pct) >= 2 and all(p is not None for p in pct.values()):
            found.append({"name": snake(key.replace("Distribution", "")), "values": list(pct),
                          "proportions": list(pct.values())})
            return
        for k, v in node.items():
            walk(v, k)

    walk(data, "population")
    return normalise(found)[:limit]


def normalise(dims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unique snake_case names, unique non-empty values, proportions >= 0 summing to 1."""
    out, seen = [], set()
    for d in dims:
        name = snake(str(d.get("name", "")))
        pairs: dict[str, float] = {}
        props = list(d.get("proportions") or d.get("percentages") or [])
        for i, v in enumerate(d.get("values") or []):
            label = str(v).strip()
            p = props[i] if i < len(props) and isinstance(props[i], (int, float)) and props[i] >= 0 else None
            if label and label not in pairs:
                pairs[label] = float(p) if p is not None else float("nan")
        if name in seen or len(pairs) < 2:
            continue
        seen.add(name)
        known = [p for p in pairs.values() if p == p]
        total = sum(known)
        if len(known) < len(pairs) or total <= 0:
            probs = [1.0 / len(pairs)] * len(pairs)
        else:
            probs = [p / total for p in pairs.values()]
        out.append({"name": name, "values": list(pairs), "proportions": [round(p, 6) for p in probs]})
    return out


_DIM_LINES = "\nOne line per dimension, like:\ngender: female (50%), male (50%)"


def parse_dimension_lines(text: str) -> list[dict[str, Any]]:
    """'name: a (30%), b (70%)' lines -> dimension dicts (percentages optional)."""
    dims = []
    for line in text.splitlines():
        name, sep, rest = line.strip(" -*#\t").partition(":")
        if not sep or not rest.strip():
            continue
        values, props = [], []
        for part in re.split(r"[,;]", rest):
            m = re.match(r"\s*(.*?)\s*(?:\((\d+(?:\.\d+)?)\s*%\))?\s*$", part)
            if m and m[1]:
                values.append(m[1])
                props.append(float(m[2]) if m[2] else float("nan"))
        dims.append({"name": name, "values": values, "proportions": props})
    return dims


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
                reply = llm.chat([{"role": "user", "content": prompt + _DIM_LINES}], purpose="factory",
                                 max_tokens=300, seed=0)
                drafted = {"dimensions": parse_dimension_lines(reply.text)}
            dims = normalise(drafted.get("dimensions", []))[: spec.max_dimensions]
            source = "llm"
        except LLMError as exc:
            warnings.append(f"dimensions: the LLM failed ({type(exc).__name__}: {str(exc)[:160]})")
        if not dims:
            warnings.append("dimensions: the LLM proposed no usable dimension (each needs a name and 2+ values)")
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


def parse_plan_lines(text: str) -> list[dict[str, Any]]:
    """'3: value | value' lines -> plan groups (values in dimension order)."""
    groups = []
    for line in text.splitlines():
        m = re.match(r"^[\s\-*]*(\d+)\s*(?:x|people|persons)?\s*[:.)\-]\s*(.+)$", line.strip())
        if m:
            groups.append({"values": [v.strip() for v in m[2].split("|")], "quantity": int(m[1])})
    return groups


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
