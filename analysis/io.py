"""Load a metric table from a run directory, a CSV/Parquet file, or a TinyTroupe runner JSON."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.validate import TableError, validate_table

log = logging.getLogger(__name__)

#: columns that hold names, never missing values: an arm called "null" or "NA", a session "nan" or
#: a factor level "None" stays that name (pandas' default would read those words as missing)
LABEL_COLUMNS = ("arm", "session", "agent", "metric", "experiment")
LABEL_PREFIX = "factor_"  # factor_<name>: the level of each row
#: the analysis tables' columns that name arms (effects.csv, power.csv, missing.csv)
ARM_COLUMNS = ("control", "treatment")


def read_csv_labels(path: str | Path, labels: tuple[str, ...] = LABEL_COLUMNS, **kwargs) -> pd.DataFrame:
    """pd.read_csv with the `labels` columns (and factor_*) read as text as written (an empty cell
    is ""); every other column keeps pandas' default missing-value words."""
    df = pd.read_csv(path, **kwargs)
    names = [c for c in df.columns if c in labels or str(c).startswith(LABEL_PREFIX)]
    if names:  # read again as plain text (public API only: pandas' list of missing-value words is private)
        raw = pd.read_csv(path, usecols=names, dtype=str, keep_default_na=False, **kwargs)
        df[names] = raw[names]
    return df

# TinyTroupe judge scores given once per agent per session; everything else is per session.
_AGENT_METRIC = re.compile(r"adherence|consistency|fluency", re.IGNORECASE)


@dataclass
class Table:
    """A validated tidy metric table plus what is known about the design."""

    df: pd.DataFrame
    source: Path
    kind: str  # "run" | "table" | "tinytroupe"
    notes: list[str] = field(default_factory=list)
    control: str | None = None
    paired: bool | None = None  # None = unknown (treated as unpaired)
    arms: list[str] = field(default_factory=list)
    #: the run's manipulation check (delivery.csv: arm, mechanism, expected, delivered, count, note)
    delivery: pd.DataFrame | None = None

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(self.df["metric"]))


def load_table(path: str | Path, paired: bool | None = None) -> Table:
    """Read a run directory, metrics .csv/.parquet, or TinyTroupe JSON into a validated Table."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: no such file or directory. Fix: pass a run directory, a metrics "
                         ".csv/.parquet file, or a TinyTroupe result .json.")
    if path.is_dir():
        table = _load_run(path)
    elif path.suffix.lower() == ".json":
        table = _load_tinytroupe(path)
    elif path.suffix.lower() in (".csv", ".parquet", ".pq") and _in_run_dir(path):
        # a run's own metrics file: analysed with the run's design (control, pairing), as the run dir is
        table = _load_run(path.parent, path)
        table.kind, table.source = "table", path
        table.notes.insert(0, f"design from {path.parent / 'manifest.json'}: "
                              f"{ {True: 'paired', False: 'unpaired'}.get(table.paired, 'pairing not recorded')}, "
                              f"control {table.control!r} "
                              f"(--paired/--unpaired and --control override)")
    elif path.suffix.lower() in (".csv", ".parquet", ".pq"):
        df, notes = validate_table(_read_frame(path), path)
        table = Table(df=df, source=path, kind="table", notes=notes)
    else:
        raise TableError(f"{path}: unsupported file type {path.suffix!r}. Fix: use a run directory, "
                         ".csv, .parquet, or a TinyTroupe .json.")
    if paired is not None:
        table.paired = paired
    if not table.arms:
        table.arms = list(dict.fromkeys(table.df["arm"]))
    return table


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            return read_csv_labels(path)
        return pd.read_parquet(path)
    except Exception as exc:  # pandas raises many types; report them in one shape
        raise TableError(f"{path}: cannot read the table ({type(exc).__name__}: {exc}). "
                         "Fix: check that it is a valid CSV/Parquet metric table.") from exc


def _in_run_dir(path: Path) -> bool:
    """True for metrics.csv/.parquet written by `trials run`: a manifest.json beside it."""
    return path.stem == "metrics" and (path.parent / "manifest.json").is_file()


def _load_run(run_dir: Path, path: Path | None = None) -> Table:
    """A run directory's table (`path`: its metrics file, by default metrics.parquet, else .csv)
    with the design its manifest.json records."""
    found = [run_dir / name for name in ("metrics.parquet", "metrics.csv") if (run_dir / name).exists()]
    path = path or (found[0] if found else None)
    if path is None:
        raise TableError(f"{run_dir}: no metrics.parquet or metrics.csv in this directory. "
                         "Fix: pass a run directory written by `trials run` (or the metrics file itself).")
    df, notes = validate_table(_read_frame(path), path)
    manifest: dict = {}
    mpath = run_dir / "manifest.json"
    if mpath.exists():
        try:
            manifest = json.loads(mpath.read_text())
        except json.JSONDecodeError as exc:
            raise TableError(f"{mpath}: not valid JSON ({exc}). Fix: restore the manifest or pass metrics.csv.") from exc
    else:
        notes.append("no manifest.json: control arm and pairing unknown (treated as unpaired)")
    if manifest.get("status") == "partial":
        notes.append(f"run is partial: {manifest.get('n_failed', '?')} of {manifest.get('n_jobs_total', '?')} "
                     "jobs failed; analysed what completed")
    arms = [a for a in manifest.get("arms", []) if a in set(df["arm"])]
    delivery = read_csv_labels(run_dir / "delivery.csv") if (run_dir / "delivery.csv").is_file() else None
    return Table(df=df, source=run_dir, kind="run", notes=notes, control=manifest.get("control"),
                 paired=manifest.get("paired"), arms=arms, delivery=delivery)


def _load_tinytroupe(path: Path) -> Table:
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TableError(f"{path}: not valid JSON ({exc}).") from exc
    experiments = raw.get("experiments") if isinstance(raw, dict) else None
    if not isinstance(experiments, dict) or not experiments:
        raise TableError(f"{path}: no 'experiments' object. Fix: expected TinyTroupe's runner JSON "
                         '{"experiments": {arm: {"results": {metric: [values]}}}}.')
    frames = []
    for arm, body in experiments.items():
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, dict):
            raise TableError(f"{path}: experiment {arm!r} has no 'results' object. Fix: expected "
                             '{"results": {metric: [values]}} for every arm.')
        for metric, values in results.items():
            if not isinstance(values, list):
                raise TableError(f"{path}: {arm}/{metric}: 'results' values must be a list of numbers.")
            agent_level = bool(_AGENT_METRIC.search(metric))
            frames.append(pd.DataFrame({
                "experiment": path.stem, "arm": arm, "replicate": np.nan, "session": "", "agent": "",
                "metric": metric, "value": pd.Series(values, dtype="object"),
                "scale": "count" if metric.endswith("_qty") else "0-9",
                "level": "agent" if agent_level else "session",
                "judge_model": "", "missing_reason": "",
            }))
    df, notes = validate_table(pd.concat(frames, ignore_index=True), path)
    notes.insert(0, "imported from TinyTroupe JSON: session ids were lost; cluster-aware methods unavailable, "
                    "agent-level values treated as independent")
    return Table(df=df, source=path, kind="tinytroupe", notes=notes, paired=False,
                 arms=list(experiments.keys()))
