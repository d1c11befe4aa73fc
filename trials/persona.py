"""STUB (being replaced by the personas work): the minimal API other modules code against.

Contract kept by the full version:
- `Persona` (pydantic, extra fields kept) with at least `name: str`.
- `Persona.prompt_text(detail="brief"|"full") -> str`: the persona as plain prompt text.
- `load_persona(path) -> Persona`, `load_folder(path) -> list[Persona]` (sorted, deterministic).
- `library_path(name) -> Path`: a folder of the personas shipped with the project.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict


class Persona(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str

    def prompt_text(self, detail: str = "brief") -> str:
        data = self.model_dump(exclude_none=True)
        return "\n".join(f"{k}: {v}" for k, v in data.items())


def load_persona(path: str | Path) -> Persona:
    data = json.loads(Path(path).read_text())
    return Persona(**data.get("persona", data))


def load_folder(path: str | Path) -> list[Persona]:
    return [load_persona(p) for p in sorted(Path(path).glob("*.json"))]


def library_path(name: str) -> Path:
    return Path(__file__).parent / "personas" / name
