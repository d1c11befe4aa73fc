"""Read and write persona files: TinyTroupe `.agent.json` / `.fragment.json` and our own format.

Accepted shapes: `{"type": "TinyPerson" | "Persona", "persona": {...}}`,
`{"type": "Fragment", "persona": {...}}` (fragments only) and a plain persona dict `{"name": ...}`.
Other top-level keys of TinyTroupe files (e.g. `mental_faculties`) are not persona data and are
ignored. Every failure is a `PersonaError` naming the file, the field and the fix.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from trials.persona.model import UNION_TAGS, Fragment, Persona, PersonaError
from trials.secrets import shown

log = logging.getLogger(__name__)
PERSONA_TYPES = ("Persona", "TinyPerson")
LIBRARY_ROOT = Path(__file__).parent / "library"
M = TypeVar("M", Persona, Fragment)

_EXPECTED = {  # pydantic error type -> (what was expected, an example for the fix)
    "int_parsing": ("an integer", "34"), "int_type": ("an integer", "34"),
    "int_from_float": ("an integer", "34"), "float_type": ("a number", "0.5"),
    "float_parsing": ("a number", "0.5"), "string_type": ("a string", '"..."'),
    "string_too_short": ("a non-empty string", '"Ana Souza"'), "list_type": ("a list", '["...", "..."]'),
    "dict_type": ("an object (a JSON mapping)", '{"key": "value"}'),
    "model_type": ("an object (a JSON mapping)", '{"key": "value"}'),
    "model_attributes_type": ("an object (a JSON mapping)", '{"key": "value"}'),
}


def _field_path(loc: tuple[Any, ...], subpath: str = "") -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in UNION_TAGS:
            path += f".{part}" if path else str(part)
    if subpath:
        path += subpath if subpath.startswith("[") or not path else f".{subpath}"
    return path or "(top level)"


def _describe(err: dict[str, Any], source: str) -> tuple[str, str]:
    ctx = err.get("ctx") or {}
    path = _field_path(tuple(err["loc"]), ctx.get("subpath", ""))
    if err["type"] == "missing":
        return path, f"{source}: field '{path}' is missing; fix: add a \"{path.split('.')[-1]}\" value"
    if err["type"] == "behaviors_shape":
        return path, (f"{source}: field '{path}': {err['msg']}; fix: write behaviors like "
                      '["...", "..."] or {"general": ["..."], "routines": {"morning": ["..."]}}')
    got = shown(err.get("input"), 60)
    if err["type"] in _EXPECTED:
        expected, example = _EXPECTED[err["type"]]
        return path, f"{source}: field '{path}': expected {expected}, got {got}; fix: give '{path}' as {expected}, e.g. {example}"
    return path, f"{source}: field '{path}': {err['msg']} (got {got}); fix: correct '{path}'"


def validation_error(exc: ValidationError, source: str) -> PersonaError:
    """Turn pydantic's error into a PersonaError listing every bad field (first one in `.field`)."""
    described = [_describe(e, source) for e in exc.errors()]
    lines = [m for _, m in described[:8]]
    if len(described) > 8:
        lines.append(f"{source}: ... and {len(described) - 8} more problems")
    return PersonaError("\n".join(lines), source=source, field=described[0][0])


def validate_data(model: type[M], data: Any, source: str) -> M:
    if not isinstance(data, dict):
        raise PersonaError(f"{source}: field 'persona': expected an object (a JSON mapping), got "
                           f"{type(data).__name__}; fix: give the persona as {{\"name\": ...}}",
                           source=source, field="persona")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, source) from None


def _unwrap(data: Any, source: str, want_fragment: bool) -> dict[str, Any]:
    """The persona dict inside a file's JSON, checking its declared type."""
    if not isinstance(data, dict):
        raise PersonaError(f"{source}: field '(top level)': expected a JSON object, got "
                           f"{type(data).__name__}; fix: wrap the persona in {{...}}", source=source,
                           field="(top level)")
    kind = data.get("type")
    if not isinstance(data.get("persona"), dict) and kind not in (*PERSONA_TYPES, "Fragment"):
        return data  # our plain persona JSON (a persona may have its own "type" extra field)
    ok = ("Fragment",) if want_fragment else PERSONA_TYPES
    if kind not in ok:
        hint = ("use load_fragment() / apply_fragment() for fragments" if kind == "Fragment"
                else f"set \"type\" to one of {', '.join(ok)}")
        raise PersonaError(f"{source}: field 'type': expected {' or '.join(map(repr, ok))}, got "
                           f"{kind!r}; fix: {hint}", source=source, field="type")
    return data.get("persona")  # type: ignore[return-value]  # checked by validate_data


def parse_persona(data: Any, source: str = "<dict>") -> Persona:
    """Validate persona data (a file's JSON, wrapped or plain) into a Persona."""
    return validate_data(Persona, _unwrap(data, source, want_fragment=False), source)


def parse_fragment(data: Any, source: str = "<dict>") -> Fragment:
    """Validate fragment data (`{"type": "Fragment", "persona": {...}}` or the inner dict)."""
    return validate_data(Fragment, _unwrap(data, source, want_fragment=True), source)


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark (Windows editors) is fine
    except FileNotFoundError:
        raise PersonaError(f"{path}: file not found; fix: check the path", source=str(path)) from None
    except IsADirectoryError:
        raise PersonaError(f"{path}: is a folder, not a persona file; fix: give one persona .json file "
                           "(e.g. {path}/<name>.json)".replace("{path}", str(path)), source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PersonaError(f"{path}: cannot read the file ({exc}); fix: save it as UTF-8 JSON",
                           source=str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PersonaError(f"{path}: broken JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; "
                           "fix: repair the JSON syntax there", source=str(path)) from None
    except RecursionError:
        raise PersonaError(f"{path}: JSON nested too deeply to be a persona; fix: give a persona file "
                           "(an object of fields, a few levels deep)", source=str(path)) from None


def load_persona(path: str | Path) -> Persona:
    """Load one persona file (TinyTroupe `.agent.json`, our `{"type": "Persona"}` or plain JSON)."""
    return parse_persona(read_json(path), str(path))


def load_fragment(path: str | Path) -> Fragment:
    """Load one TinyTroupe `.fragment.json` (or a plain dict of persona fields)."""
    return parse_fragment(read_json(path), str(path))


def _json_files(folder: str | Path, fragments: bool) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise PersonaError(f"{folder}: not a folder; fix: give a folder of persona .json files",
                           source=str(folder))
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix == ".json"
                    and p.name.lower().endswith(".fragment.json") == fragments), key=lambda p: p.name)
    if not files:
        kind = "fragment" if fragments else "persona"
        raise PersonaError(f"{folder}: no {kind} .json files found; fix: check the folder",
                           source=str(folder))
    return files


def load_folder(folder: str | Path) -> list[Persona]:
    """All personas in a folder, sorted by file name (fragment files are skipped)."""
    files = _json_files(folder, fragments=False)
    personas = [load_persona(p) for p in files]
    by_name: dict[str, list[str]] = {}
    for path, persona in zip(files, personas):
        by_name.setdefault(persona.name, []).append(path.name)
    dupes = {n: f for n, f in by_name.items() if len(f) > 1}
    if dupes:  # agents address each other by name: two with one name would be one agent
        name, names = next(iter(dupes.items()))
        raise PersonaError(f"{folder}: persona name {name!r} appears in {' and '.join(names)}"
                           + (f" (and {len(dupes) - 1} more duplicate names)" if len(dupes) > 1 else "")
                           + "; fix: give every persona in a folder its own name, or remove one file",
                           source=str(folder), field="name")
    log.debug("loaded %d personas from %s", len(personas), folder)
    return personas


def load_fragments(folder: str | Path) -> dict[str, Fragment]:
    """All `*.fragment.json` files of a folder, by file name (sorted)."""
    return {p.name: load_fragment(p) for p in _json_files(folder, fragments=True)}


def save_persona(persona: Persona, path: str | Path) -> Path:
    """Write `{"type": "Persona", "persona": {...}}` atomically (extra fields kept)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"type": "Persona", "persona": persona.to_dict()}, indent=2, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def library_sets() -> list[str]:
    """Names of the persona sets shipped in trials/personas/."""
    return sorted(p.name for p in LIBRARY_ROOT.iterdir() if p.is_dir() and not p.name.startswith("_"))


def library_path(set_name: str) -> Path:
    """The folder of a shipped persona set (difficult_people, political, general)."""
    path = LIBRARY_ROOT / set_name
    if not path.is_dir():
        raise PersonaError(f"persona library: no set {set_name!r}; fix: use one of {library_sets()}",
                           source=str(path), field="set")
    return path


def load_library(set_name: str) -> list[Persona]:
    return load_folder(library_path(set_name))
