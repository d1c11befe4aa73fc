"""Deep-merge a fragment into a persona (TinyTroupe's `include_persona_definitions`, made strict).

Rules: mappings merge recursively; lists extend with the fragment's items that are not already
there (order kept); a scalar present on both sides with different values is a `FragmentConflict`
naming the field and both values, unless `override=True` (then the fragment wins). A `behaviors`
list meeting a `behaviors` mapping is read as `{"general": [...]}`, the shape TinyTroupe uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trials.persona.files import parse_fragment, validate_data
from trials.persona.model import Fragment, Persona, PersonaError


class FragmentConflict(PersonaError):
    """A fragment sets a field the persona already has, to a different value."""

    def __init__(self, field: str, persona_value: Any, fragment_value: Any) -> None:
        super().__init__(
            f"fragment conflict at field '{field}': persona has {persona_value!r}, fragment has "
            f"{fragment_value!r}; fix: remove one of them, or merge with override=True to let the "
            "fragment win", source="fragment merge", field=field)
        self.persona_value = persona_value
        self.fragment_value = fragment_value


def _as_data(obj: Persona | Fragment | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(obj, (Persona, Fragment)):
        return obj.to_dict()
    return dict(obj)


def _merge(base: Any, extra: Any, path: str, override: bool) -> Any:
    if base is None:
        return extra
    if extra is None:
        return base
    if path == "behaviors":
        if isinstance(base, list) and isinstance(extra, dict):
            base = {"general": base}
        elif isinstance(base, dict) and isinstance(extra, list):
            extra = {"general": extra}
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for key, val in extra.items():
            out[key] = _merge(base.get(key), val, f"{path}.{key}" if path else key, override)
        return out
    if isinstance(base, list) and isinstance(extra, list):
        return base + [item for i, item in enumerate(extra) if item not in base and item not in extra[:i]]
    if base == extra and type(base) is type(extra):
        return base
    if override:
        return extra
    raise FragmentConflict(path, base, extra)


def apply_fragment(persona: Persona, fragment: Fragment | Persona | Mapping[str, Any],
                   override: bool = False) -> Persona:
    """A new Persona: `persona` with `fragment` deep-merged in (the inputs are not changed).

    `fragment` may be a Fragment, a Persona, or raw data (`{"type": "Fragment", "persona": {...}}`
    or the inner dict); raw data is validated first.
    """
    if not isinstance(fragment, (Persona, Fragment)):
        fragment = parse_fragment(dict(fragment), source="fragment")
    merged = _merge(_as_data(persona), _as_data(fragment), "", override)
    return validate_data(Persona, merged, source=f"{persona.name} + fragment")


def apply_fragments(persona: Persona, fragments: list[Fragment | Mapping[str, Any]],
                    override: bool = False) -> Persona:
    """Apply several fragments in order."""
    for fragment in fragments:
        persona = apply_fragment(persona, fragment, override=override)
    return persona
