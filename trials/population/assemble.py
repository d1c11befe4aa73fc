"""One persona from sampled attributes + fixed fields + narrative: the sampled values are stored as
exact persona fields (e.g. `gender: "Female"`, `age_range: "35-44"`), never only in prose."""

from __future__ import annotations

import copy
from typing import Any

from trials.persona import Persona, parse_persona

#: persona fields that are objects in the model; a sampled string goes to their main subfield
_OBJECT_FIELDS = {"occupation": "occupation.title"}


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """`set_path(d, "personality.big_five.openness", "High")` creating the nested dicts."""
    path = _OBJECT_FIELDS.get(path, path)
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[leaf] = value


def label_of(path: str, label: str | None = None) -> str:
    return label or path.split(".")[-1].replace("_", " ")


def facts_for(attributes: dict[str, Any], fields: dict[str, str], labels: dict[str, str],
              fixed: dict[str, Any]) -> dict[str, Any]:
    """What the LLM is told: fixed fields, then the sampled attributes, with readable labels."""
    facts: dict[str, Any] = {label_of(k): v for k, v in fixed.items() if isinstance(v, (str, int, float))}
    for name, value in attributes.items():
        facts[labels.get(name) or label_of(fields.get(name, name))] = value
    return facts


def build_persona(*, name: str, attributes: dict[str, Any], fields: dict[str, str], fixed: dict[str, Any],
                  narrative: dict[str, Any], source: str) -> Persona:
    data: dict[str, Any] = copy.deepcopy(fixed)
    data["name"] = name
    data.setdefault("occupation", {})
    if isinstance(data["occupation"], str):
        data["occupation"] = {"title": data["occupation"]}
    data["occupation"].setdefault("title", narrative["occupation_title"])
    data["occupation"].setdefault("description", narrative["occupation_description"])
    for key in ("residence", "education", "style"):
        if narrative.get(key):
            data.setdefault(key, narrative[key])
    data.setdefault("personality", {}).setdefault("traits", list(narrative["traits"]))
    prefs = data.setdefault("preferences", {})
    prefs.setdefault("likes", list(narrative["likes"]))
    prefs.setdefault("dislikes", list(narrative["dislikes"]))
    data.setdefault("beliefs", list(narrative["beliefs"]))
    for attr, value in attributes.items():
        set_path(data, fields.get(attr, attr), _plain(value))
    data.setdefault("tags", []).append(f"factory:{source}")
    return parse_persona(data, f"generated persona {name!r}")


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers (JSON-able, and `age` must be an int)."""
    return value.item() if hasattr(value, "item") else value
