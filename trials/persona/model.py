"""The persona data model: the fields of TinyTroupe's personas, validated, with unknown fields kept.

Every level where TinyTroupe nests things (occupation, personality, preferences, relationships)
accepts extra keys (`extra="allow"`), so a generated persona with, e.g., `age_range` or
`political_affiliation` survives a load/save round trip. Wrong types fail here; the loaders in
`trials.persona.files` turn the failure into a `PersonaError` that names the file and field.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator)
from pydantic_core import PydanticCustomError



class PersonaError(ValueError):
    """A persona or fragment file (or dict) that cannot be used; the message names file, field, fix."""

    def __init__(self, message: str, *, source: str = "", field: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.field = field


class _Open(BaseModel):
    """Base of every persona part: unknown keys are kept, not dropped."""

    model_config = ConfigDict(extra="allow")


class Occupation(_Open):
    title: str | None = None
    organization: str | None = None
    description: str | None = None


class Personality(_Open):
    traits: list[str] = Field(default_factory=list)
    # TinyTroupe writes big-five levels as prose ("High. Very curious."); numbers are fine too.
    big_five: dict[str, str | int | float] = Field(default_factory=dict)


class Preferences(_Open):
    interests: list[str] = Field(default_factory=list)
    likes: list[str] = Field(default_factory=list)
    dislikes: list[str] = Field(default_factory=list)


class Relationship(_Open):
    name: str
    description: str | None = None


def _relationship_kind(value: Any) -> str:
    return "text" if isinstance(value, str) else "mapping"


RelationshipItem = Annotated[
    Union[Annotated[Relationship, Tag("mapping")], Annotated[str, Tag("text")]],
    Discriminator(_relationship_kind),
]
#: loc parts pydantic adds for union members; the error formatter drops them.
UNION_TAGS = frozenset({"mapping", "text"})

_BEHAVIOR_SHAPE = "a list of strings, or a mapping from a name to a list of strings (or to such a mapping)"


def _check_behaviors(value: Any, path: str = "", depth: int = 0) -> None:
    """Behaviors are a list of strings or (up to 3 levels of) named groups of them."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise PydanticCustomError("behaviors_shape", "expected a string, got {got}",
                                          {"subpath": f"{path}[{i}]", "got": repr(item)[:60]})
        return
    if isinstance(value, dict) and depth < 3:
        for key, item in value.items():
            _check_behaviors(item, f"{path}.{key}" if path else str(key), depth + 1)
        return
    raise PydanticCustomError("behaviors_shape", "expected {shape}, got {got}",
                              {"subpath": path, "shape": _BEHAVIOR_SHAPE, "got": repr(value)[:60]})


class PersonaFields(_Open):
    """All persona fields, none required: the shape shared by personas and fragments."""

    name: str | None = None
    age: int | None = Field(default=None, ge=0, le=150)  # years; outside 0-150 is a typo, not a person
    gender: str | None = None
    nationality: str | None = None
    residence: str | None = None
    education: str | None = None
    occupation: Occupation | None = None
    personality: Personality | None = None
    preferences: Preferences | None = None
    beliefs: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list)
    behaviors: list[str] | dict[str, Any] | None = None
    style: str | None = None
    health: str | None = None
    relationships: list[RelationshipItem] = Field(default_factory=list)
    other_facts: list[str] = Field(default_factory=list)
    long_term_goals: list[str] = Field(default_factory=list)
    #: library bookkeeping (set, archetype, quadrant...); never shown to the model.
    tags: list[str] = Field(default_factory=list)

    @field_validator("age", mode="before")
    @classmethod
    def _age_not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value

    @field_validator("occupation", mode="before")
    @classmethod
    def _occupation_from_text(cls, value: Any) -> Any:
        # TinyTroupe sometimes writes the occupation as a plain string: read it as the title.
        return {"title": value} if isinstance(value, str) else value

    @field_validator("behaviors", mode="before")
    @classmethod
    def _behaviors_shape(cls, value: Any) -> Any:
        if value is not None:
            _check_behaviors(value)
        return value

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data without unset/empty defaults (extra fields kept)."""
        return self.model_dump(mode="json", exclude_defaults=True)


class Fragment(PersonaFields):
    """A partial persona (TinyTroupe `"type": "Fragment"`) to deep-merge into a persona."""


class Persona(PersonaFields):
    """A simulated person. `name` is required; everything else is optional."""

    name: str  # type: ignore[assignment]

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("string_too_short", "String should have at least 1 character")
        return value.strip()
