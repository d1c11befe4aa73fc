"""Personas: the public API (model, loaders, fragments, the shipped library).

    from trials.persona import load_persona, load_folder, library_path, apply_fragment
    people = load_folder(library_path("difficult_people"))      # sorted by file name
    print(people[0].short_label(), people[0].prompt_text("brief"))

The parts live in small modules: `persona_model` (pydantic model, `PersonaError`),
`persona_prompt` (prompt text), `persona_io` (files, TinyTroupe formats, library),
`persona_fragment` (deep merge). Shipped sets: difficult_people, political, general.
"""

from __future__ import annotations

from trials.persona_fragment import FragmentConflict, apply_fragment, apply_fragments
from trials.persona_io import (library_path, library_sets, load_folder, load_fragment,
                               load_fragments, load_library, load_persona, parse_fragment,
                               parse_persona, save_persona)
from trials.persona_model import (Fragment, Occupation, Persona, PersonaError, Personality,
                                  Preferences, Relationship)

__all__ = [
    "Fragment", "FragmentConflict", "Occupation", "Persona", "PersonaError", "Personality",
    "Preferences", "Relationship", "apply_fragment", "apply_fragments", "library_path",
    "library_sets", "load_folder", "load_fragment", "load_fragments", "load_library",
    "load_persona", "parse_fragment", "parse_persona", "save_persona",
]
