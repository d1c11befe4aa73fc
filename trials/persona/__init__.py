"""Personas: who the simulated people are -- the model, loaders, fragments, prompt text and the
shipped library. (model, loaders, fragments, the shipped library).

    from trials.persona import load_folder, library_path, prompt_text, short_label
    people = load_folder(library_path("difficult_people"))      # sorted by file name
    print(short_label(people[0]), prompt_text(people[0], "brief"))

The parts live in small modules: `model` (pydantic model, `PersonaError`), `prompt` (prompt
text), `files` (files, TinyTroupe formats, the shipped library in `library/`), `fragment` (deep
merge). Shipped sets: difficult_people, political, general.
"""

from __future__ import annotations

from trials.persona.fragment import FragmentConflict, apply_fragment, apply_fragments
from trials.persona.files import (library_path, library_sets, load_folder, load_fragment,
                               load_fragments, load_library, load_persona, parse_fragment,
                               parse_persona, save_persona)
from trials.persona.prompt import prompt_text, short_label
from trials.persona.model import (Fragment, Occupation, Persona, PersonaError, Personality,
                                  Preferences, Relationship)

__all__ = [
    "Fragment", "FragmentConflict", "Occupation", "Persona", "PersonaError", "Personality",
    "Preferences", "Relationship", "apply_fragment", "apply_fragments", "library_path",
    "library_sets", "load_folder", "load_fragment", "load_fragments", "load_library",
    "load_persona", "parse_fragment", "parse_persona", "prompt_text", "save_persona", "short_label",
]
