"""Structured output: tolerant JSON extraction, validation against the asked schema, and the
one repair prompt that shows the model its broken output and the error."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from trials.llm.base import Message
from trials.llm.schema_tools import is_model_class, to_json_schema, validate

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


class ParseFailure(ValueError):
    """The text holds no valid instance; the message says why (shown to the model on repair)."""


def extract_json(text: str) -> Any:
    """Parse JSON out of a model reply: strip code fences, take the first balanced {...} or [...]
    block, drop trailing commas. Raises ParseFailure."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    try:
        return json.loads(body)
    except ValueError:
        pass
    block = _first_block(body)
    if block is None:
        raise ParseFailure("no JSON object or array found in the reply")
    for candidate in (block, _TRAILING_COMMA.sub(r"\1", block)):
        try:
            return json.loads(candidate)
        except ValueError as e:
            err = e
    raise ParseFailure(f"invalid JSON: {err}")


def _first_block(text: str) -> str | None:
    """The first balanced {...} or [...] substring (string-literal aware), or None."""
    start = next((i for i, ch in enumerate(text) if ch in "{["), None)
    if start is None:
        return None
    depth, in_str, esc = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return text[start:]  # unbalanced: let json.loads report it


def parse_structured(text: str, schema: Any, data: Any = None) -> Any:
    """Text (or the backend's already-parsed `data`) -> a dict/list valid under `schema`, or an
    instance of the pydantic model class. Raises ParseFailure with the reason."""
    value = data if data is not None else extract_json(text)
    if is_model_class(schema):
        try:
            return schema.model_validate(value)
        except ValidationError as e:
            raise ParseFailure(_short_pydantic(e)) from None
    errors = validate(value, to_json_schema(schema))
    if errors:
        raise ParseFailure("; ".join(errors[:5]))
    return value


def _short_pydantic(e: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in err['loc']) or '$'}: {err['msg']}" for err in e.errors()[:5]]
    return "; ".join(parts)


def repair_messages(messages: tuple[Message, ...], bad_text: str, error: str,
                    schema: dict[str, Any]) -> tuple[Message, ...]:
    """The original conversation + the broken reply + a request to fix it."""
    ask = (f"Your reply could not be used: {error}.\nReply again with ONLY valid JSON matching this "
           f"schema, no other text:\n{json.dumps(schema, separators=(',', ':'))}")
    return (*messages, Message("assistant", bad_text[:4000]), Message("user", ask))


def schema_instruction(schema: dict[str, Any]) -> str:
    """Appended to the prompt for backends that cannot enforce a schema themselves."""
    return ("Answer with ONLY a JSON value matching this JSON schema, no other text:\n"
            + json.dumps(schema, separators=(",", ":")))
