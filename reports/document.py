"""A small neutral document model: the report is built once as sections of blocks, then
rendered to Markdown and to HTML, so the two files always carry the same numbers and text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Para:
    text: str


@dataclass
class Callout:
    """A highlighted paragraph list (used for caveats and warnings)."""

    title: str
    items: list[str]
    level: str = "warning"  # "warning" | "info"


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: set[int] = field(default_factory=set)  # column indexes right-aligned
    css_class: str = ""  # HTML only: a styling hook (e.g. "headline")
    cell_classes: dict[tuple[int, int], str] = field(default_factory=dict)  # HTML only: (row, col) -> "win"/"loss"
    links: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, col) -> relative href of that cell


@dataclass
class Figure:
    path: Path  # PNG file on disk (under figures/)
    caption: str
    width: str = "100%"  # CSS width in the HTML version


@dataclass
class Excerpt:
    """A readable slice of a transcript: (speaker, kind, text) lines."""

    title: str
    lines: list[tuple[str, str, str]]
    note: str = ""


Block = Para | Callout | Bullets | Table | Figure | Excerpt


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str, anchor: str) -> Section:
        sec = Section(title, anchor)
        self.sections.append(sec)
        return sec
