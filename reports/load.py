"""Reads everything a report needs from files: a run directory (config, manifest, metrics,
transcript, LLM calls, analysis tables), a plain metrics table, or a TinyTroupe result JSON.

The statistics always come from the analysis tables on disk. When a run directory has no
`analysis/` yet (or the input is a bare table), `analysis` computes and writes them first, and
the report reads them back, so its numbers are exactly the tables' numbers."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis.io import ARM_COLUMNS, LABEL_COLUMNS, read_csv_labels

log = logging.getLogger(__name__)

class ReportError(Exception):
    """A report input that cannot be read; the message names the file and what to do."""


@dataclass
class AnalysisTables:
    dir: Path
    effects: pd.DataFrame
    descriptives: pd.DataFrame
    missing: pd.DataFrame
    power: pd.DataFrame
    tradeoffs: str
    summary: dict[str, Any]


@dataclass
class RunData:
    source: Path
    kind: str  # "run" | "table" | "tinytroupe"
    out_dir: Path
    tables: AnalysisTables
    metrics: pd.DataFrame | None = None
    config: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    transcript: pd.DataFrame | None = None
    llm_calls: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def control(self) -> str | None:
        """The control of the comparisons this report shows: the analysis tables' (which
        `trials report --control X` recomputes), else the run's."""
        if self.tables.summary.get("control"):
            return str(self.tables.summary["control"])
        eff = self.tables.effects
        if len(eff) and "control" in eff:
            return str(eff["control"].iloc[0])
        return self.run_control

    @property
    def run_control(self) -> str | None:
        """The run's own control arm (manifest): the reference of its manipulation check."""
        if self.manifest and self.manifest.get("control"):
            return str(self.manifest["control"])
        return None

    @property
    def alpha(self) -> float | None:
        """The alpha of the analysis shown (summary.json): every CI's level is 1 - alpha and adjusted
        p-values are compared with it; None when summary.json does not record it."""
        value = self.tables.summary.get("alpha")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
            return float(value)
        return None

    @property
    def paired(self) -> bool | None:
        """Whether the analysis shown paired replicate r across arms (summary.json), else the
        run's design (manifest); None when neither says."""
        value = self.tables.summary.get("paired")
        if isinstance(value, bool):
            return value
        value = (self.manifest or {}).get("paired")
        return value if isinstance(value, bool) else None


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / f).exists() for f in ("manifest.json", "metrics.parquet", "metrics.csv"))


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc}); rerun the step that writes it") from exc


def _read_yaml(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ReportError(f"{path}: not valid YAML ({exc})") from exc
    return data if isinstance(data, dict) else None


def _read_table(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False) if path.stat().st_size else pd.DataFrame()
        return read_csv_labels(path, LABEL_COLUMNS + ARM_COLUMNS)  # analysis tables name arms in these
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as exc:  # pyarrow / parser errors: name the file
        raise ReportError(f"{path}: cannot be read as a table ({exc})") from exc


def read_metrics(run_dir: Path) -> pd.DataFrame | None:
    for name in ("metrics.parquet", "metrics.csv"):
        table = _read_table(run_dir / name)
        if table is not None:
            return table
    return None


def read_analysis(adir: Path) -> AnalysisTables:
    """The tables `analysis` wrote into `adir`; effects.csv is required, the rest optional."""
    effects = _read_table(adir / "effects.csv")
    if effects is None:
        raise ReportError(f"{adir / 'effects.csv'}: missing; run `trials analyze` on the run first")
    frames = {n: _read_table(adir / f"{n}.csv") for n in ("descriptives", "missing", "power")}
    tradeoffs = adir / "tradeoffs.txt"
    return AnalysisTables(
        dir=adir,
        effects=effects,
        **{n: frame if frame is not None else pd.DataFrame() for n, frame in frames.items()},
        tradeoffs=tradeoffs.read_text(encoding="utf-8") if tradeoffs.exists() else "",
        summary=_read_json(adir / "summary.json") or {},
    )


def _compute_analysis(source: Path, adir: Path, control: str | None,
                      paired: bool | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Runs `analysis` on `source` and writes its tables into `adir`; returns the tidy table and its notes."""
    import analysis  # late: a report of an already-analysed run does not need it

    try:
        table = analysis.load_table(source, paired=paired)
    except Exception as exc:
        raise ReportError(f"{source}: analysis could not load it: {exc}") from exc
    try:
        result = analysis.analyze(table, control=control)
    except Exception as exc:
        raise ReportError(f"{source}: the analysis failed ({type(exc).__name__}: {exc}); run "
                          f"`trials analyze {source}` to see the details") from exc
    adir.mkdir(parents=True, exist_ok=True)
    result.write(adir)
    log.info("analysis tables written to %s", adir)
    return table.df, [str(n) for n in table.notes]


def _known_arm(run_dir: Path, arm: str) -> str:
    """`arm` as the run's metrics name it (exact, else ignoring case, as the analysis matches it);
    ReportError naming the run's arms if it has none such."""
    from analysis.validate import TableError, check_arm  # late, as in _compute_analysis

    metrics = read_metrics(run_dir)
    if metrics is None or "arm" not in metrics.columns:
        return arm  # the analysis reports what is wrong with the table itself
    try:
        return check_arm(metrics, arm, str(run_dir))
    except TableError as exc:
        raise ReportError(str(exc)) from None


def _same_settings(adir: Path, control: str | None, paired: bool | None) -> bool:
    """Whether the analysis saved in `adir` (summary.json) already has this control and pairing."""
    saved = _read_json(adir / "summary.json") or {}
    return (bool(saved) and (control is None or saved.get("control") == control)
            and (paired is None or saved.get("paired") is paired))


def load(path: str | Path, out_dir: str | Path | None = None, control: str | None = None,
         paired: bool | None = None, force: bool = False) -> RunData:
    """Everything for one report. `out_dir` defaults to the run directory itself, or to
    `./<stem>_report/` for a table or TinyTroupe JSON (never beside a shared input file).
    `control` / `paired` (as `trials analyze --control/--paired`) recompute the analysis tables
    into `<out>/analysis` instead of reading the saved ones; without `out_dir` that would replace the
    run's own analysis (and report), so it is refused unless `force` (or the saved one has the same settings)."""
    source = Path(path).expanduser().resolve()
    if not source.exists():
        raise ReportError(f"{source}: no such run directory or file; pass a run directory, a metrics "
                          "table (.csv/.parquet) or a TinyTroupe result .json")
    if source.is_dir():
        if source.name == "analysis" and (source / "effects.csv").exists():
            source = source.parent
        if not is_run_dir(source):
            raise ReportError(f"{source}: not a run directory (no manifest.json or metrics.parquet/csv)")
        out = Path(out_dir).resolve() if out_dir else source
        manifest = _read_json(source / "manifest.json")
        recompute = control is not None or paired is not None
        if control is not None:  # an unknown arm is the error to report, before any --out/--force advice
            control = _known_arm(source, control)
        if control is None:
            control = str(manifest["control"]) if manifest and manifest.get("control") else None
        adir = source / "analysis"
        if recompute and not out_dir and (adir / "effects.csv").exists():
            if _same_settings(adir, control, paired):
                recompute = False
            elif not force:
                flags = " ".join(([f"--control {control}"] if control else [])
                                 + ([] if paired is None else ["--paired" if paired else "--unpaired"]))
                raise ReportError(f"{source}: a re-analysis with {flags} would replace the run's own analysis/ and "
                                  "report.html; fix: --out DIR to write it elsewhere, or --force to replace them")
        notes: list[str] = []
        if (adir / "effects.csv").exists() and not recompute:
            metrics = read_metrics(source)
        else:  # analysis reads the metrics itself; reuse its table rather than reading the file again
            adir = adir if not out_dir else out / "analysis"
            metrics, notes = _compute_analysis(source, adir, control, paired)
        data = RunData(source=source, kind="run", out_dir=out, tables=read_analysis(adir),
                       metrics=metrics, config=_read_yaml(source / "config.yaml"), manifest=manifest,
                       transcript=_read_table(source / "transcript.jsonl"),
                       llm_calls=_read_table(source / "llm_calls.parquet"), notes=notes)
        return data
    kind = "tinytroupe" if source.suffix == ".json" else "table"
    if source.suffix not in (".json", ".csv", ".parquet"):
        raise ReportError(f"{source}: unsupported file type {source.suffix!r}; use .csv, .parquet or .json")
    out = Path(out_dir).resolve() if out_dir else Path.cwd() / f"{source.stem}_report"
    adir = out / "analysis"
    metrics, notes = _compute_analysis(source, adir, control, paired)
    return RunData(source=source, kind=kind, out_dir=out, tables=read_analysis(adir), metrics=metrics, notes=notes)
