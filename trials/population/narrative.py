"""Narrative fields written by the LLM, conditioned on the sampled attributes.

The LLM never decides a sampled attribute: it only writes prose (name, job, beliefs, style, likes
...). Two reply formats: a JSON schema (`NarrativeDraft`) for backends that enforce schemas, and
plain "KEY: value" lines that a tiny local model can follow. Whatever the LLM fails to give is
filled from a deterministic template and recorded as a warning; an LLM error never stops a
population from being generated.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from typing import Any

from pydantic import BaseModel, Field

from trials.llm.base import LLMError

log = logging.getLogger(__name__)


class NarrativeDraft(BaseModel):
    name: str = Field(description="first and last name")
    occupation_title: str = Field(description="job title")
    occupation_description: str = Field(description="one sentence about the job")
    residence: str = Field(description="city and country")
    education: str = Field(description="highest education")
    traits: list[str] = Field(description="three personality traits")
    beliefs: list[str] = Field(description="two beliefs")
    likes: list[str] = Field(description="three things the person likes")
    dislikes: list[str] = Field(description="two things the person dislikes")
    style: str = Field(description="one sentence on how the person speaks")


FIELDS = list(NarrativeDraft.model_fields)
_LINE_KEYS = {"NAME": "name", "JOB": "occupation_title", "JOB DETAILS": "occupation_description",
              "HOME": "residence", "EDUCATION": "education", "TRAITS": "traits", "BELIEFS": "beliefs",
              "LIKES": "likes", "DISLIKES": "dislikes", "STYLE": "style"}
_LIST_FIELDS = {"traits", "beliefs", "likes", "dislikes"}
_TEXT_FORMAT = """Reply with exactly these lines:
NAME: first and last name
JOB: job title
JOB DETAILS: one sentence about the job
HOME: city
EDUCATION: highest education
TRAITS: three traits separated by ;
BELIEFS: two beliefs separated by ;
LIKES: three things separated by ;
DISLIKES: two things separated by ;
STYLE: one sentence on how they talk"""


def facts_text(facts: dict[str, Any]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in facts.items())


def messages(facts: dict[str, Any], about: str, *, json_mode: bool) -> list[dict[str, str]]:
    who = f" It is one of: {about.strip()}" if about.strip() else ""
    ask = "Reply in JSON with the keys " + ", ".join(FIELDS) + "." if json_mode else _TEXT_FORMAT
    return [{"role": "system", "content": "You invent realistic, specific people for a survey panel."},
            {"role": "user", "content": f"Invent one person with these facts.{who}\n{facts_text(facts)}\n\n"
                                        f"Keep every fact exactly. {ask}"}]


def parse_lines(text: str) -> dict[str, Any]:
    """'KEY: value' lines -> narrative fields (unknown lines ignored; lists split on ; or ,)."""
    keys = sorted(_LINE_KEYS, key=len, reverse=True)
    pattern = re.compile(r"^[\s*#>\-\d.]*(" + "|".join(re.escape(k) for k in keys) + r")\s*\**\s*[:=\-]\s*(.+)$", re.I)
    out: dict[str, Any] = {}
    for line in text.splitlines():
        m = pattern.match(line.strip())
        if not m:
            continue
        field = _LINE_KEYS[m[1].upper()]
        value = m[2].strip().strip("*").strip()
        if field in out or not value:
            continue
        if field in _LIST_FIELDS:
            parts = re.split(r";" if ";" in value else r",", value)
            out[field] = [p.strip(" .") for p in parts if p.strip(" .")][:5]
        else:
            out[field] = value
    return out


def salvage_name(text: str) -> dict[str, Any]:
    """Prose instead of lines ("Jennifer Ellis, a 25-year-old ..."): keep only the leading name."""
    m = re.match(r"\s*([A-Z][a-z'\-]+(?: [A-Z][a-z'\-]+){1,2})(?:,| is | was )", text)
    return {"name": m[1]} if m else {}


def _clean(draft: dict[str, Any]) -> dict[str, Any]:
    """Keep only usable values (non-empty strings / lists of strings)."""
    out: dict[str, Any] = {}
    for k in FIELDS:
        v = draft.get(k)
        if k in _LIST_FIELDS:
            items = [str(x).strip() for x in (v if isinstance(v, list) else []) if str(x).strip()]
            if items:
                out[k] = items
        elif isinstance(v, str) and v.strip():
            out[k] = v.strip()
    return out


_TITLES = ["retail associate", "registered nurse", "teacher", "electrician", "accountant", "software developer",
           "truck driver", "line cook", "sales manager", "pharmacy technician", "auto mechanic", "graphic designer",
           "warehouse supervisor", "bank teller", "dental hygienist", "real estate agent"]
_TRAITS = ["practical", "curious", "patient", "outspoken", "cautious", "warm", "stubborn", "organized",
           "easygoing", "skeptical", "generous", "impatient", "thoughtful", "competitive"]
_LIKES = ["cooking at home", "long walks", "live music", "gardening", "watching football", "reading mysteries",
          "road trips", "board games", "trying new restaurants", "fishing", "podcasts", "baking"]
_DISLIKES = ["traffic jams", "loud neighbours", "waiting in lines", "spicy food", "cold weather",
             "pushy salespeople", "wasting money", "small talk"]
_BELIEFS = ["Family comes first.", "Hard work should pay off.", "People should look after their neighbours.",
            "Prices are rising faster than wages.", "Good health is worth spending on.",
            "Honesty matters more than politeness."]
_STYLES = ["Speaks plainly and briefly.", "Chatty, with many small stories.", "Polite but direct.",
           "Careful, asks questions before giving an opinion.", "Warm and informal, jokes often."]


def template(facts: dict[str, Any], seed: int, index: int) -> dict[str, Any]:
    """A deterministic narrative from word lists (used for whatever the LLM did not give)."""
    rng = random.Random(hashlib.sha256(f"template:{seed}:{index}".encode()).digest())
    age = facts.get("age")
    title = "retiree" if isinstance(age, int) and age >= 67 else rng.choice(_TITLES)
    title = str(facts.get("occupation", title))
    return {"name": "", "occupation_title": title, "occupation_description": f"Works as {'an' if title[:1].lower() in 'aeiou' else 'a'} {title}.",
            "residence": str(facts.get("residence", facts.get("country", ""))), "education": "",
            "traits": rng.sample(_TRAITS, 3), "beliefs": rng.sample(_BELIEFS, 2),
            "likes": rng.sample(_LIKES, 3), "dislikes": rng.sample(_DISLIKES, 2), "style": rng.choice(_STYLES)}


def prefers_json(llm: Any) -> bool:
    """JSON for real endpoints and the scripted double; plain lines for the tiny local model,
    which follows a short line format far better than a 10-key JSON schema."""
    return getattr(llm, "backend", "local") != "local"


def write_narrative(llm: Any, facts: dict[str, Any], *, about: str = "", mode: str = "auto", max_tokens: int = 220,
                    temperature: float | None = None, seed: int = 0, index: int = 0) -> tuple[dict[str, Any], str, list[str]]:
    """(fields, source, warnings): source is "llm-json", "llm-text", "llm+template" or "template"."""
    warnings: list[str] = []
    draft: dict[str, Any] = {}
    json_first = mode == "json" or (mode == "auto" and prefers_json(llm))
    attempts = [] if mode == "template" or llm is None else (["json", "text"] if json_first else ["text"])
    source = "template"
    for kind in attempts:
        try:
            reply = llm.chat(messages(facts, about, json_mode=kind == "json"), purpose="factory",
                             protocol="json" if kind == "json" else "text",
                             schema=NarrativeDraft if kind == "json" else None,
                             max_tokens=max_tokens, temperature=temperature, seed=index)
        except LLMError as exc:
            warnings.append(f"persona {index}: {kind} narrative failed ({type(exc).__name__}: {str(exc)[:160]})")
            continue
        data = reply.data if kind == "json" else (parse_lines(reply.text) or salvage_name(reply.text))
        if isinstance(data, BaseModel):
            data = data.model_dump()
        draft = _clean(data if isinstance(data, dict) else {})
        if draft:
            source = f"llm-{kind}"
            break
        warnings.append(f"persona {index}: the {kind} reply had no usable fields: {reply.text[:120]!r}")
    fallback = template(facts, seed, index)
    missing = [k for k in FIELDS if k not in draft and k != "name"]
    if draft and missing:
        source = "llm+template"
        warnings.append(f"persona {index}: filled from the template: {', '.join(missing)}")
    elif not draft and attempts:
        warnings.append(f"persona {index}: the LLM gave no narrative; used the template")
    for w in warnings:
        log.warning(w)
    return {**fallback, **draft}, source, warnings
