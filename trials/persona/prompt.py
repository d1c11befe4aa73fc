"""Render a persona as plain prompt text (deterministic).

"brief" is for tiny models: who the person is plus the few lines that most shape how they act
(traits, beliefs, behaviors, style), taken from both ends of each list because fragments append
their lines at the end. "full" is everything readable, trimmed to a character budget by dropping
the least telling parts first (daily routines, unknown extra fields, then the tails of long lists).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the model knows nothing of prompts
    from trials.persona.model import Persona

BRIEF_MAX_CHARS = 880
FULL_MAX_CHARS = 6000
_HIDDEN_EXTRAS = {"tags"}


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 3].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "..."


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    core = text.rstrip("'\"”’)]")  # "...why.'" already ends a sentence
    return text if not core or core[-1] in ".!?…" else text + "."


def _join(items: list[Any], limit: int = 10_000) -> str:
    return " ".join(_sentence(_clip(i, limit)) for i in items if str(i).strip())


def _telling(items: list[str], k: int) -> list[str]:
    """Up to k items alternating from the front and the back, in their original order."""
    if len(items) <= k:
        return list(items)
    picks: list[int] = []
    front, back = 0, len(items) - 1
    while len(picks) < k:
        picks.append(front)
        front += 1
        if len(picks) < k:
            picks.append(back)
            back -= 1
    return [items[i] for i in sorted(picks)]


def _who(p: Persona) -> str:
    parts = [p.name]
    if p.age is not None:
        parts.append(f"{p.age} years old")
    if p.gender:
        parts.append(p.gender.lower())
    occ = p.occupation
    if occ and occ.title:
        parts.append(f"{occ.title} at {occ.organization}" if occ.organization else occ.title)
    where = [x for x in (p.nationality, f"living in {p.residence}" if p.residence else None) if x]
    return "You are " + ", ".join(parts) + (f" ({', '.join(where)})" if where else "") + "."


def short_label(p: Persona) -> str:
    parts = [p.name]
    if p.age is not None:
        parts.append(str(p.age))
    if p.occupation and p.occupation.title:
        parts.append(p.occupation.title)
    return ", ".join(parts)


def _general_behaviors(p: Persona) -> list[str]:
    b = p.behaviors
    if isinstance(b, list):
        return b
    if isinstance(b, dict):
        out: list[str] = []
        for key in sorted(b, key=lambda k: (k != "general", k)):  # "general" first, then by name
            if isinstance(b[key], list):
                out.extend(b[key])
        return out
    return []


def render_brief(p: Persona) -> str:
    traits = p.personality.traits if p.personality else []
    lines = [_clip(_who(p), 240)]
    candidates = [
        ("Personality", _telling(traits, 3)),
        ("Beliefs", _telling(p.beliefs, 2)),
        ("Behavior", _telling(_general_behaviors(p), 2)),
        ("Style", [p.style] if p.style else []),
    ]
    for label, items in candidates:
        if not items:
            continue
        line = f"{label}: {_join(items, 150)}"
        budget = BRIEF_MAX_CHARS - len("\n".join(lines)) - 1
        if budget < 60:
            break
        lines.append(_clip(line, budget))
    return "\n".join(lines)


def _routines(b: Any, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Named behavior groups other than the top-level "general" list, as (label, items)."""
    out: list[tuple[str, list[str]]] = []
    if isinstance(b, dict):
        for key, val in b.items():
            label = f"{prefix}{key}".replace("_", " ")
            if isinstance(val, list) and not (key == "general" and not prefix):
                out.append((label, val))
            elif isinstance(val, dict):
                out.extend(_routines(val, f"{label}, "))
    return out


def _extras(model: Any, prefix: str = "") -> list[str]:
    lines = []
    for key, val in sorted((model.model_extra or {}).items()):
        if key in _HIDDEN_EXTRAS or val in (None, "", [], {}):
            continue
        if isinstance(val, dict):
            text = ", ".join(f"{k}: {v}" for k, v in val.items())
        else:
            text = _join(val) if isinstance(val, list) else str(val)
        lines.append(f"{prefix}{key.replace('_', ' ')}: {_clip(text, 400)}")
    return lines


def _full_sections(p: Persona, list_cap: int, routines: bool, extras: bool) -> list[str]:
    cap = (lambda xs: xs[:list_cap]) if list_cap else (lambda xs: xs)
    out = [_who(p)]
    if p.education:
        out.append(f"Education: {p.education}")
    occ = p.occupation
    if occ and occ.description:
        out.append(f"Work: {occ.description}")
    pers, prefs = p.personality, p.preferences
    if pers and pers.traits:
        out.append(f"Personality: {_join(cap(pers.traits))}")
    if pers and pers.big_five:
        out.append("Big five: " + "; ".join(f"{k}: {str(v).rstrip('.')}" for k, v in pers.big_five.items()))
    for label, items in [("Interests", prefs.interests if prefs else []),
                         ("Likes", prefs.likes if prefs else []),
                         ("Dislikes", prefs.dislikes if prefs else []),
                         ("Beliefs", p.beliefs), ("Skills", p.skills),
                         ("Behavior", _general_behaviors(p) if not isinstance(p.behaviors, dict)
                          else p.behaviors.get("general", []))]:
        if items:
            out.append(f"{label}: {_join(cap(items))}")
    if routines:
        out += [f"Behavior ({label}): {_join(cap(items))}" for label, items in _routines(p.behaviors)]
    if p.style:
        out.append(f"Style: {p.style}")
    if p.health:
        out.append(f"Health: {p.health}")
    if p.relationships:
        rels = [r if isinstance(r, str) else (f"{r.name} ({r.description})" if r.description else r.name)
                for r in cap(p.relationships)]
        out.append(f"Relationships: {'; '.join(rels)}")
    if p.other_facts:
        out.append(f"Other facts: {_join(cap(p.other_facts))}")
    if p.long_term_goals:
        out.append(f"Long-term goals: {_join(cap(p.long_term_goals))}")
    if extras:
        for part in (p.occupation, p.personality, p.preferences):
            out += _extras(part) if part is not None else []
        out += _extras(p)
    return out


def render_full(p: Persona, max_chars: int = FULL_MAX_CHARS) -> str:
    """Everything readable; if over `max_chars`, drop routines, extras, then shorten lists."""
    attempts = [(0, True, True), (0, False, True), (0, False, False), (8, False, False),
                (5, False, False), (3, False, False), (2, False, False)]
    text = ""
    for list_cap, routines, extras in attempts:
        text = "\n".join(_full_sections(p, list_cap, routines, extras))
        if len(text) <= max_chars:
            return text
    return _clip(text, max_chars)


_RENDERED: dict[tuple[str, str], str] = {}  # (persona JSON, detail) -> text: every prompt of a session renders it
_RENDERED_MAX = 4096


def prompt_text(persona: Persona, detail: str = "brief") -> str:
    """The persona as plain prompt text: "brief" (< ~900 chars) or "full" (everything).

    Raises ValueError for any other `detail`. Memoized on the persona's content, so a persona
    edited in place is rendered afresh."""
    if detail not in ("brief", "full"):
        raise ValueError(f"prompt_text: detail must be 'brief' or 'full', got {detail!r}")
    key = (persona.model_dump_json(), detail)
    text = _RENDERED.get(key)
    if text is None:
        text = render_brief(persona) if detail == "brief" else render_full(persona)
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        _RENDERED[key] = text
    return text
