"""Persona model, loaders (incl. TinyTroupe files), errors, save/load, prompt text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trials.persona import (prompt_text, short_label, Persona, PersonaError, load_folder, load_fragment, load_fragments,
                            load_persona, parse_persona, save_persona)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TT = SHARED / "tinytroupe-data"
needs_tt = pytest.mark.skipif(not TT.is_dir(), reason="../shared/tinytroupe-data not beside the checkout")

AGENT_FILES = sorted([*TT.glob("agents/*.json"), *TT.glob("personas/*/*.json")])
FRAGMENT_FILES = sorted(TT.glob("fragments/*.json"))


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@needs_tt
def test_tinytroupe_files_are_all_present():
    assert len(AGENT_FILES) == 87 and len(FRAGMENT_FILES) == 8


@needs_tt
@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_tinytroupe_persona_loads_and_round_trips(path: Path, tmp_path: Path):
    persona = load_persona(path)
    raw = json.loads(path.read_text(encoding="utf-8"))["persona"]
    assert persona.name == raw["name"]
    assert persona.to_dict() == raw  # nothing dropped, nothing invented (extra fields included)
    again = load_persona(save_persona(persona, tmp_path / "p.json"))
    assert again == persona


@needs_tt
@pytest.mark.parametrize("path", FRAGMENT_FILES, ids=lambda p: p.name)
def test_every_tinytroupe_fragment_loads_as_fragment(path: Path):
    fragment = load_fragment(path)
    raw = json.loads(path.read_text(encoding="utf-8"))["persona"]
    assert fragment.to_dict() == raw
    with pytest.raises(PersonaError, match="field 'type'.*load_fragment"):
        load_persona(path)


@needs_tt
def test_folder_loading_is_sorted_and_deterministic():
    folder = TT / "personas" / "political_compass"
    first = load_folder(folder)
    names = [json.loads(p.read_text())["persona"]["name"] for p in sorted(folder.glob("*.json"))]
    assert [p.name for p in first] == names
    assert [p.to_dict() for p in load_folder(folder)] == [p.to_dict() for p in first]
    assert sorted(load_fragments(TT / "fragments")) == [p.name for p in FRAGMENT_FILES]


def test_folder_order_is_by_file_name_not_creation(tmp_path: Path):
    for name in ["b.json", "a.json", "c.json"]:  # created out of order
        write(tmp_path, name, {"name": name[0].upper()})
    write(tmp_path, "skip.fragment.json", {"type": "Fragment", "persona": {"beliefs": ["x"]}})
    assert [p.name for p in load_folder(tmp_path)] == ["A", "B", "C"]


def test_plain_and_own_format_and_occupation_string():
    plain = parse_persona({"name": "Ana", "age": 41, "occupation": "baker"})
    own = parse_persona({"type": "Persona", "persona": {"name": "Ana", "age": 41,
                                                        "occupation": {"title": "baker"}}})
    assert plain == own and own.occupation.title == "baker"
    assert short_label(own) == "Ana, 41, baker"


@pytest.mark.parametrize("data, field, fragment", [
    ({"name": "X", "age": "forty"}, "age", "expected an integer, got 'forty'"),
    ({"name": "X", "age": True}, "age", "expected an integer"),
    ({"name": "X", "beliefs": "one belief"}, "beliefs", "expected a list"),
    ({"name": "X", "occupation": {"title": 7}}, "occupation.title", "expected a string, got 7"),
    ({"name": "X", "personality": {"traits": ["ok", 3]}}, "personality.traits[1]", "expected a string"),
    ({"name": "X", "relationships": [{"description": "no name"}]}, "relationships[0].name", "missing"),
    ({"name": "X", "behaviors": {"routines": {"morning": "coffee"}}}, "behaviors.routines.morning",
     "expected a list of strings"),
    ({"name": "X", "behaviors": ["fine", 5]}, "behaviors[1]", "expected a string"),
    ({"name": "X", "age": -5}, "age", "greater than or equal to 0 (got -5)"),
    ({"name": "X", "age": 200}, "age", "less than or equal to 150 (got 200)"),
    ({"age": 30}, "name", "is missing"),
    ({"name": "   "}, "name", "non-empty"),
])
def test_bad_fields_name_file_and_field(tmp_path: Path, data, field, fragment):
    path = write(tmp_path, "x.json", {"type": "Persona", "persona": data})
    with pytest.raises(PersonaError) as info:
        load_persona(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: field '{field}'") and fragment in msg and "fix:" in msg
    assert info.value.field == field and info.value.source == str(path)


def test_broken_json_names_line_and_column(tmp_path: Path):
    path = write(tmp_path, "broken.json", '{\n  "name": "A",\n  "age": 3\n  "style": "x"\n}')
    with pytest.raises(PersonaError, match=r"broken\.json: broken JSON at line 4, column 3"):
        load_persona(path)


def test_wrong_wrapper_type_missing_file_and_empty_folder(tmp_path: Path):
    with pytest.raises(PersonaError, match="field 'type': expected 'Persona' or 'TinyPerson', got 'Robot'"):
        load_persona(write(tmp_path, "r.json", {"type": "Robot", "persona": {"name": "R"}}))
    with pytest.raises(PersonaError, match="field 'persona': expected an object"):
        load_persona(write(tmp_path, "l.json", {"type": "Persona", "persona": ["Ann"]}))
    with pytest.raises(PersonaError, match="file not found"):
        load_persona(tmp_path / "nope.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PersonaError, match="no persona .json files"):
        load_folder(tmp_path / "empty")


def test_extra_fields_survive_save_and_load_at_every_level(tmp_path: Path):
    data = {"name": "Mira", "age_range": "30-39", "political_affiliation": "centre-left",
            "occupation": {"title": "nurse", "shift": "nights"},
            "personality": {"traits": ["calm"], "mbti": "ISFJ"},
            "preferences": {"likes": ["tea"], "brands": ["Lidl"]},
            "relationships": [{"name": "Jo", "description": "sister", "since": 1990}, "a cat"],
            "behaviors": {"general": ["walks"], "routines": {"morning": ["yoga"]}}}
    persona = parse_persona(data)
    again = load_persona(save_persona(persona, tmp_path / "sub" / "mira.json"))
    assert again.to_dict() == data
    assert again.model_extra["political_affiliation"] == "centre-left"
    assert again.occupation.model_extra == {"shift": "nights"}
    assert json.loads((tmp_path / "sub" / "mira.json").read_text())["type"] == "Persona"


def test_prompt_text_brief_and_full():
    persona = parse_persona({
        "name": "Tomasz Nowak", "age": 52, "occupation": {"title": "bus driver", "organization": "MPK"},
        "personality": {"traits": [f"trait number {i} " + "word " * 30 for i in range(10)]},
        "beliefs": ["b1", "b2", "b3"], "style": "Terse.", "tags": ["secret-tag"],
        "hobby_extra": "pigeons"})
    brief, full = prompt_text(persona, "brief"), prompt_text(persona, "full")
    assert len(brief) < 900 and len(brief) < len(full)
    for text in (brief, full):
        assert "Tomasz Nowak" in text and "bus driver" in text and "secret-tag" not in text
    assert "trait number 0" in brief and "trait number 9" in brief  # both ends: fragments append
    assert "pigeons" in full and "pigeons" not in brief
    assert prompt_text(persona, "brief") == brief  # deterministic
    with pytest.raises(ValueError, match="detail"):
        prompt_text(persona, "medium")


@needs_tt
def test_prompt_text_sizes_on_tinytroupe_personas():
    for path in AGENT_FILES:
        persona = load_persona(path)
        assert len(prompt_text(persona, "brief")) < 900, path
        assert len(prompt_text(persona, "full")) <= 6000, path
        assert persona.occupation.title in prompt_text(persona, "brief")


def test_persona_is_usable_directly():
    assert prompt_text(Persona(name="Solo")) == "You are Solo."
