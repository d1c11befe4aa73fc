"""Reading a population description and the plain-text formats of the phased route.

`read_description` turns a JSON or text file into prompt text (and keeps parsed JSON for the
fallback `dimensions_from_data`); `parse_dimension_lines` / `parse_plan_lines` read the line
formats asked of small local models; `normalise` cleans any proposed dimensions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from trials.population.spec import PopulationSpec, SpecError


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

    def walk(node: Any, key: str, parent: str) -> None:
        if not isinstance(node, dict):
            return
        pct = {k: _percent(v) for k, v in node.items()}
        if len(pct) >= 2 and all(p is not None for p in pct.values()):
            name = re.sub(r"distribution|composition", "", key, flags=re.I).strip() or parent
            found.append({"name": name, "values": list(pct), "proportions": list(pct.values())})
            return
        for k, v in node.items():
            walk(v, k, key)

    walk(data, "population", "population")
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


DIM_LINES = "\nOne line per dimension, like:\ngender: female (50%), male (50%)"


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


def parse_plan_lines(text: str) -> list[dict[str, Any]]:
    """'3: value | value' lines -> plan groups (values in dimension order)."""
    groups = []
    for line in text.splitlines():
        m = re.match(r"^[\s\-*]*(?:\d+[.)]\s+)?(\d+)\s*(?:x|people|persons)?\s*[:\-]\s*(.+)$", line.strip())
        if m:
            groups.append({"values": [v.strip() for v in m[2].split("|")], "quantity": int(m[1])})
    return groups
