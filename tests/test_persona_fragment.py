"""Fragment deep-merge semantics: dicts recurse, lists extend without duplicates, scalars conflict."""

from __future__ import annotations

from pathlib import Path

import pytest

from trials.persona import (prompt_text, FragmentConflict, PersonaError, apply_fragment, apply_fragments,
                            load_fragment, load_persona, parse_fragment, parse_persona)

TT = Path(__file__).resolve().parents[1].parent / "shared" / "tinytroupe-data"

BASE = {
    "name": "Ines Duarte", "age": 38, "style": "Warm.",
    "occupation": {"title": "pharmacist", "organization": "Farmacia Sol"},
    "personality": {"traits": ["patient", "curious"], "big_five": {"openness": "High"}},
    "preferences": {"likes": ["fado", "tea"]},
    "beliefs": ["Health is a right."],
    "behaviors": ["Listens before speaking."],
}


def test_dicts_merge_recursively_and_lists_extend_without_duplicates():
    persona = parse_persona(BASE)
    fragment = {"personality": {"traits": ["curious", "stubborn", "stubborn"],
                                "big_five": {"neuroticism": "Low"}},
                "preferences": {"likes": ["tea", "chess"], "dislikes": ["noise"]},
                "beliefs": ["Markets need rules."], "political_affiliation": "centre-left"}
    merged = apply_fragment(persona, fragment)
    assert merged.personality.traits == ["patient", "curious", "stubborn"]
    assert merged.personality.big_five == {"openness": "High", "neuroticism": "Low"}
    assert merged.preferences.likes == ["fado", "tea", "chess"]
    assert merged.preferences.dislikes == ["noise"]
    assert merged.beliefs == ["Health is a right.", "Markets need rules."]
    assert merged.model_extra["political_affiliation"] == "centre-left"
    assert persona.personality.traits == ["patient", "curious"]  # input not mutated


def test_behaviors_list_meets_mapping_as_general():
    merged = apply_fragment(parse_persona(BASE), {"behaviors": {"general": ["Sighs."], "debate": ["Interrupts."]}})
    assert merged.behaviors == {"general": ["Listens before speaking.", "Sighs."], "debate": ["Interrupts."]}


@pytest.mark.parametrize("fragment, field, old, new", [
    ({"age": 39}, "age", "38", "39"),
    ({"occupation": {"title": "nurse"}}, "occupation.title", "'pharmacist'", "'nurse'"),
    ({"personality": {"big_five": {"openness": "Low"}}}, "personality.big_five.openness", "'High'", "'Low'"),
    ({"beliefs": "a string, not a list"}, "beliefs", "", ""),
])
def test_conflicting_scalar_names_field_and_both_values(fragment, field, old, new):
    persona = parse_persona(BASE)
    with pytest.raises(PersonaError) as info:
        apply_fragment(persona, fragment)
    msg = str(info.value)
    assert f"'{field}'" in msg and old in msg and new in msg


def test_conflict_type_and_override():
    persona = parse_persona(BASE)
    with pytest.raises(FragmentConflict) as info:
        apply_fragment(persona, {"style": "Cold.", "age": 38})  # equal age is not a conflict
    assert info.value.field == "style"
    assert (info.value.persona_value, info.value.fragment_value) == ("Warm.", "Cold.")
    merged = apply_fragment(persona, {"style": "Cold.", "occupation": {"title": "nurse"}}, override=True)
    assert merged.style == "Cold." and merged.occupation.title == "nurse"
    assert merged.occupation.organization == "Farmacia Sol"


def test_merged_result_is_validated_and_fragment_validated():
    with pytest.raises(PersonaError, match="field 'age'"):
        apply_fragment(parse_persona({"name": "A"}), {"age": "old"})
    with pytest.raises(PersonaError, match="field 'type'"):
        parse_fragment({"type": "TinyPerson", "persona": {"name": "A"}})


def test_apply_fragments_in_order():
    merged = apply_fragments(parse_persona(BASE), [{"skills": ["a"]}, {"skills": ["b", "a"]}])
    assert merged.skills == ["a", "b"]


@pytest.mark.skipif(not TT.is_dir(), reason="../shared/tinytroupe-data not beside the checkout")
def test_tinytroupe_fragments_apply_to_tinytroupe_agents():
    persona = load_persona(TT / "agents" / "Lisa.agent.json")
    for path in sorted((TT / "fragments").glob("*.json")):
        fragment = load_fragment(path)
        merged = apply_fragment(persona, fragment)
        for belief in fragment.beliefs:
            assert belief in merged.beliefs
        assert merged.beliefs[: len(persona.beliefs)] == persona.beliefs
    difficult = apply_fragment(persona, load_fragment(TT / "fragments" / "difficult_person.agent.fragment.json"))
    assert "Most people are incompetent and unreliable." in prompt_text(difficult, "brief")
