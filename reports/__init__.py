"""Reports: a run directory (or a sweep of them, or an imported TinyTroupe result) rendered as
`report.md` and a self-contained `report.html` with figures. Reads files, never live objects."""

from reports.load import ReportError
from reports.output import ReportPaths
from reports.render import render

__all__ = ["ReportError", "ReportPaths", "render"]
