"""Renders the report document as GitHub-flavoured Markdown (figures linked from figures/)."""

from __future__ import annotations

import os
from pathlib import Path

from reports.document import Bullets, Callout, Document, Excerpt, Figure, Para, Table


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(t: Table) -> str:
    cols = t.columns if any(t.columns) else [" "] * len(t.columns)
    align = ["---:" if j in t.numeric else "---" for j in range(len(cols))]
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(f"[{_cell(c)}]({t.links[(i, j)]})" if (i, j) in t.links else _cell(c)
                                for j, c in enumerate(row)) + " |" for i, row in enumerate(t.rows)]
    if t.caption:
        lines.append(f"\n*{t.caption}*")
    return "\n".join(lines)


def _block(block: object, base: Path) -> str:
    if isinstance(block, Para):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Callout):
        return "\n".join([f"> **{block.title}**", ">", *[f"> - {item}" for item in block.items]])
    if isinstance(block, Table):
        return table(block)
    if isinstance(block, Figure):
        rel = Path(os.path.relpath(block.path, base)).as_posix()
        return f"![{block.caption}]({rel})\n\n*{block.caption}*"
    if isinstance(block, Excerpt):
        lines = [f"**{block.title}** ({block.note})", ""]
        lines += [f"> **{who}** *{how}*: {_cell(text)}  " for who, how, text in block.lines]
        return "\n".join(lines)
    raise TypeError(f"unknown block {type(block).__name__}")


def render(doc: Document, base: Path) -> str:
    """`base` is the directory report.md is written to (figure links are relative to it)."""
    out = [f"# {doc.title}", "", f"*{doc.subtitle}*", ""]
    out += [f"{i}. [{s.title}](#{s.anchor})" for i, s in enumerate(doc.sections, 1)]
    for sec in doc.sections:
        out += ["", f'<a id="{sec.anchor}"></a>', "", f"## {sec.title}", ""]
        for block in sec.blocks:
            out += [_block(block, base), ""]
    return "\n".join(out).rstrip() + "\n"
