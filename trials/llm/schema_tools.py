"""JSON-schema helpers shared by structured output and the scripted backend.

`to_json_schema` turns a pydantic model class or a schema dict into a dict; `validate` checks an
instance against the subset of JSON Schema that structured output uses (type, properties,
required, items, enum, const, anyOf/oneOf, min/max items, local `$ref`s as pydantic emits them);
`example_instance` builds a seeded instance that validates (the scripted backend's answers).
"""

from __future__ import annotations

import functools
import random
from typing import Any, Callable

from pydantic import BaseModel

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def is_model_class(schema: Any) -> bool:
    return isinstance(schema, type) and issubclass(schema, BaseModel)


def to_json_schema(schema: Any) -> dict[str, Any]:
    """A pydantic model class or a JSON-schema dict -> a JSON-schema dict."""
    if is_model_class(schema):
        return _model_schema(schema)
    if isinstance(schema, dict):
        return schema
    raise TypeError(f"schema must be a pydantic model class or a JSON-schema dict, got {type(schema).__name__}")


@functools.lru_cache(maxsize=256)
def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Memoised per class: chat() asks for it on every structured call. Treat the dict as read-only."""
    return model.model_json_schema()


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref are supported, got {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def validate(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Errors of `instance` against `schema` as 'path: problem' strings (empty = valid)."""
    return validate_sub(instance, schema, schema)


def _check(value: Any, node: dict[str, Any], root: dict[str, Any], path: str, errors: list[str]) -> None:
    node = _resolve(node, root)
    for key in ("anyOf", "oneOf"):
        if key in node:
            if not any(not validate_sub(value, alt, root) for alt in node[key]):
                errors.append(f"{path}: matches none of the {key} alternatives")
            return
    if "const" in node and value != node["const"]:
        errors.append(f"{path}: must be {node['const']!r}")
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{path}: must be one of {node['enum']!r}, got {value!r}")
    types = node.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else list(types)
        if not any(_TYPES[t](value) for t in types if t in _TYPES):
            errors.append(f"{path}: expected {'/'.join(types)}, got {type(value).__name__}")
            return
    if isinstance(value, dict):
        props = node.get("properties", {})
        for name in node.get("required", []):
            if name not in value:
                errors.append(f"{path}: missing required field {name!r}")
        for name, sub in props.items():
            if name in value:
                _check(value[name], sub, root, f"{path}.{name}", errors)
    if isinstance(value, list):
        if "minItems" in node and len(value) < node["minItems"]:
            errors.append(f"{path}: needs at least {node['minItems']} items")
        if "maxItems" in node and len(value) > node["maxItems"]:
            errors.append(f"{path}: allows at most {node['maxItems']} items")
        if isinstance(node.get("items"), dict):
            for i, item in enumerate(value):
                _check(item, node["items"], root, f"{path}[{i}]", errors)


def validate_sub(value: Any, node: dict[str, Any], root: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    _check(value, node, root, "$", errors)
    return errors


def example_instance(schema: dict[str, Any], rng: random.Random, phrase: Callable[[random.Random], str]) -> Any:
    """A seeded instance valid under `schema`; strings come from `phrase(rng)`."""
    return _example(schema, schema, rng, phrase, depth=0)


def _example(node: dict[str, Any], root: dict[str, Any], rng: random.Random, phrase, depth: int) -> Any:
    node = _resolve(node, root)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return rng.choice(node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            alts = [a for a in node[key] if _resolve(a, root).get("type") != "null"] or node[key]
            return _example(alts[0], root, rng, phrase, depth)
    if "default" in node and rng.random() < 0.3:
        return node["default"]
    kind = node.get("type", "object" if "properties" in node else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = node.get("properties", {})
        return {name: _example(sub, root, rng, phrase, depth + 1) for name, sub in props.items()}
    if kind == "array":
        lo = node.get("minItems", 1)
        hi = max(lo, min(node.get("maxItems", lo + 3), lo + 3))
        n = 0 if depth > 4 else rng.randint(lo, hi)
        return [_example(node.get("items", {}), root, rng, phrase, depth + 1) for _ in range(n)]
    if kind == "integer":
        lo, hi = int(node.get("minimum", 0)), int(node.get("maximum", 9))
        return rng.randint(lo, max(lo, hi))
    if kind == "number":
        lo, hi = float(node.get("minimum", 0.0)), float(node.get("maximum", 1.0))
        return round(rng.uniform(lo, max(lo, hi)), 3)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    text = phrase(rng)
    if "maxLength" in node:
        text = text[: node["maxLength"]]
    if len(text) < node.get("minLength", 0):
        text = text.ljust(node["minLength"], ".")
    return text
