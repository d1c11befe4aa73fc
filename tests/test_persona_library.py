"""The persona library shipped in trials/personas/<set>/: complete, varied, original, prompt-ready."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from trials.persona import (prompt_text, PersonaError, library_path, library_sets, load_library, load_persona,
                            parse_persona)

TT = Path(__file__).resolve().parents[1].parent / "shared" / "tinytroupe-data"
SETS = {"difficult_people": 12, "political": 10, "general": 10}  # set -> minimum size
FILES = sorted(p for s in SETS for p in library_path(s).glob("*.json"))
CORE_FIELDS = ["age", "gender", "nationality", "residence", "education", "occupation", "personality",
               "preferences", "beliefs", "skills", "behaviors", "style", "health", "relationships",
               "other_facts", "long_term_goals", "tags"]


def tags_of(persona, prefix: str) -> list[str]:
    return [t.split(":", 1)[1] for t in persona.tags if t.startswith(prefix + ":")]


def test_sets_and_sizes():
    assert set(SETS) <= set(library_sets())
    for name, minimum in SETS.items():
        assert len(load_library(name)) >= minimum, name
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_library_file_is_complete_and_in_our_format(path: Path):
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["type"] == "Persona"
    persona = load_persona(path)
    data = persona.to_dict()
    missing = [f for f in CORE_FIELDS if not data.get(f)]
    assert not missing, f"{path.name} lacks {missing}"
    assert persona.occupation.title and persona.occupation.organization and persona.occupation.description
    assert len(persona.personality.traits) >= 3 and len(persona.personality.big_five) == 5
    assert all(getattr(persona.preferences, k) for k in ("interests", "likes", "dislikes"))
    assert path.parent.name in persona.tags and tags_of(persona, "country")
    assert 2000 <= len(path.read_bytes()) <= 4500, "aim for ~2-4 KB per persona"
    # the same data also loads through the TinyTroupe wrapper
    assert parse_persona({**raw, "type": "TinyPerson"}) == persona


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_prompt_text_sizes_and_content(path: Path):
    persona = load_persona(path)
    brief, full = prompt_text(persona, "brief"), prompt_text(persona, "full")
    assert len(brief) < 900 and len(full) <= 6000
    for text in (brief, full):
        assert persona.name in text and persona.occupation.title in text
    assert persona.personality.traits[0] in brief  # the defining trait reaches the tiny model
    assert all(b in full for b in persona.beliefs)
    assert not [t for t in persona.tags if ":" in t and t in full]  # bookkeeping stays out
    assert prompt_text(load_persona(path), "brief") == brief


def test_names_unique_and_sorted_loading_is_stable():
    names = [load_persona(p).name for p in FILES]
    assert len(names) == len(set(names))
    for name in SETS:
        files = sorted(library_path(name).glob("*.json"), key=lambda p: p.name)
        assert [p.name for p in load_library(name)] == [load_persona(f).name for f in files]


def test_difficult_people_cover_distinct_archetypes():
    people = load_library("difficult_people")
    archetypes = [a for p in people for a in tags_of(p, "archetype")]
    assert len(archetypes) == len(people) == len(set(archetypes))
    for needed in ["contrarian", "cynic", "perfectionist", "interrupter", "passive_aggressive",
                   "know_it_all", "pessimist", "conspiracy_leaning", "dismissive_boss"]:
        assert needed in archetypes


def test_political_set_covers_the_compass():
    people = load_library("political")
    quadrants = Counter(q for p in people for q in tags_of(p, "quadrant"))
    for needed in ["left-libertarian", "left-authoritarian", "right-libertarian",
                   "right-authoritarian", "centrist"]:
        assert quadrants[needed] >= 1, needed
    compass = [p.model_extra["political_compass"] for p in people]
    assert min(c["economic"] for c in compass) < -5 < 5 < max(c["economic"] for c in compass)
    assert min(c["social"] for c in compass) < -5 < 5 < max(c["social"] for c in compass)
    assert len({c for p in people for c in tags_of(p, "country")}) >= 8
    assert all(len(p.beliefs) >= 4 for p in people)


def test_general_set_is_varied():
    people = load_library("general")
    ages = [p.age for p in people]
    assert min(ages) < 25 and max(ages) > 65
    assert {p.gender for p in people} >= {"Female", "Male"}
    assert len({c for p in people for c in tags_of(p, "country")}) >= 8
    assert len({i for p in people for i in tags_of(p, "income")}) >= 4


def test_every_shipped_persona_differs_from_every_other():
    texts = [prompt_text(load_persona(p), "full") for p in FILES]
    assert len(set(texts)) == len(texts)


@pytest.mark.skipif(not TT.is_dir(), reason="../shared/tinytroupe-data not beside the checkout")
def test_library_prose_is_not_copied_from_tinytroupe():
    theirs = " ".join(" ".join(p.read_text(encoding="utf-8").split()) for p in TT.rglob("*.json"))
    copied = []
    for path in FILES:
        for sentence in re.findall(r'"([^"]{45,})"', path.read_text(encoding="utf-8")):
            if sentence in theirs:
                copied.append((path.name, sentence))
    assert not copied


def test_unknown_set_names_the_choices():
    with pytest.raises(PersonaError, match="no set 'villains'.*difficult_people"):
        library_path("villains")
