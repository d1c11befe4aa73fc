"""Write a built `Document` as report.md and report.html (atomically) and say where it went."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel

from reports import html, markdown
from reports.document import Document, Figure

log = logging.getLogger(__name__)


class ReportPaths(BaseModel):
    """Where the report went."""

    out_dir: Path
    markdown: Path
    html: Path
    figures: list[Path]
    analysis_dir: Path


def _write(path: Path, text: str) -> None:
    """Atomic: a reader never sees half a report."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write(doc: Document, out: Path, analysis_dir: Path) -> ReportPaths:
    """Writes the document as report.md and report.html into `out` (figures already in out/figures)."""
    md_path, html_path = out / "report.md", out / "report.html"
    _write(md_path, markdown.render(doc, out))
    _write(html_path, html.render(doc))
    # the figures this report shows (not whatever an earlier render left in figures/)
    figs = sorted({b.path for sec in doc.sections for b in sec.blocks if isinstance(b, Figure)})
    log.info("report written: %s, %s", md_path, html_path)
    return ReportPaths(out_dir=out, markdown=md_path, html=html_path, figures=figs, analysis_dir=analysis_dir)
