"""`trials export <run dir> [--to csv|parquet|jsonl] [--out FILE]`: one row per agent action (a respondent's
answer, a brainstorm turn, a debate move), ready for a spreadsheet or a notebook.

Columns: `arm, replicate, session, step, agent, type (TALK/THINK/...), target, text`, then
`factor_<f>` (factorial designs), `persona_<field>` (the persona's attributes: nested fields
joined with `_`, lists of plain values joined with "; "), `score_<key>` (scores recorded on the
action event, e.g. a correction check), and `metric_<name>` (every metric measured for that agent,
or for its session when the metric is session-level), each followed by
`metric_<name>_missing_reason` and `metric_<name>_missing_detail` (metrics.csv's `missing_reason`
and `missing_detail`: empty when the value was measured). No cell holds a dict.

The format is `--to`, else the `--out` file's extension (.csv, .parquet, .jsonl), else csv; an
`--out` whose extension is not the format's is refused (exit 2), never written in another format.

In Python: `trials.run.rundir.load_events(run_dir)` (every event, scores flattened) and
`actions_table(run_dir)` (the export's rows).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from trials.run.rundir import load_events

FORMATS = ("csv", "parquet", "jsonl")


def _flat(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Scalars as they are, mappings flattened with `_`, lists of scalars joined with "; "; lists
    of mappings are left out (they have no one-cell form)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(v, f"{prefix}_{k}", out)
    elif isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            out[prefix] = "; ".join(str(v) for v in value)
    else:
        out[prefix] = value


def persona_table(run_dir: Path) -> pd.DataFrame:
    """arm, replicate, agent, persona_<field>... from the job folders (job.json persona_records)."""
    rows = []
    for meta_path in sorted(Path(run_dir).glob("jobs/*/*/job.json")):
        meta = json.loads(meta_path.read_text())
        for record in meta.get("persona_records") or [{"name": n} for n in meta.get("personas") or []]:
            row: dict[str, Any] = {"arm": meta.get("arm"), "replicate": meta.get("replicate"),
                                   "agent": record.get("name")}
            _flat({k: v for k, v in record.items()}, "persona", row)
            rows.append(row)
    return pd.DataFrame(rows)


def _join(values: pd.Series) -> str:
    """The distinct non-empty texts of a group, "; "-joined (one row per metric and agent: one text)."""
    return "; ".join(dict.fromkeys(v for v in values if isinstance(v, str) and v))


def metric_columns(m: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """`index` + per metric: `metric_<name>` (the mean value) and, when the metrics table has them,
    `metric_<name>_missing_reason` / `_missing_detail` beside it (so a blank value keeps its why)."""
    groups = m.groupby([*index, "metric"], sort=True)
    values = groups["value"].mean().unstack("metric")
    texts = {col: groups[col].agg(_join).unstack("metric") for col in ("missing_reason", "missing_detail")
             if col in m.columns}
    parts: dict[str, pd.Series] = {}
    for name in values.columns:
        parts[f"metric_{name}"] = values[name]
        for col, table in texts.items():
            parts[f"metric_{name}_{col}"] = table[name].fillna("")
    return pd.DataFrame(parts, index=values.index).reset_index()


def column_clash(metrics: list[str], texts: list[str]) -> str | None:
    """Why the metric columns of `metrics` (with the `texts` columns beside each) cannot all be
    written (None if they can): e.g. metrics `a` and `a_missing_reason` both make
    `metric_a_missing_reason`, and one would overwrite the other."""
    made: dict[str, str] = {}
    for name in sorted(map(str, metrics)):
        for col in [f"metric_{name}", *(f"metric_{name}_{t}" for t in texts)]:
            if col in made and made[col] != name:
                return (f"metrics {made[col]!r} and {name!r} would both be exported as column {col!r}, one "
                        f"overwriting the other; fix: rename one of them (in the scenario or the config) "
                        f"and run again, or read metrics.csv directly")
            made[col] = name
    return None


def actions_table(run_dir: str | Path) -> pd.DataFrame:
    """The export's rows (see the module doc). Raises FileNotFoundError for a folder that is not
    a run directory, or one with no finished job (`trials export` exits 2 with that line)."""
    root = Path(run_dir)
    events = load_events(root)
    if "kind" not in events.columns:  # an empty transcript: e.g. a run interrupted before any job finished
        raise FileNotFoundError(f"no finished job to export in {root}; finish it with "
                                f"trials run run.resume_dir={root}")
    acts = events[events["kind"] == "action"].rename(columns={"content": "text"})
    keep = ["arm", "replicate", "session", "step", "agent", "type", "target", "text"]
    scores = [c for c in acts.columns if c.startswith("score_") and acts[c].notna().any()]
    table = acts[[c for c in keep if c in acts.columns] + scores].reset_index(drop=True)
    metrics_path = root / "metrics.parquet"
    if metrics_path.is_file():
        m = pd.read_parquet(metrics_path)
        if (why := column_clash(list(m["metric"].unique()),
                                [c for c in ("missing_reason", "missing_detail") if c in m.columns])):
            raise ValueError(f"{metrics_path}: {why}")
        factors = [c for c in m.columns if c.startswith("factor_")]
        if factors:
            table = table.merge(m[["arm", *factors]].drop_duplicates("arm"), on="arm", how="left")
        for level, index in ((m["agent"] != "", ["session", "agent"]), (m["agent"] == "", ["session"])):
            if level.any():
                table = table.merge(metric_columns(m[level], index), on=index, how="left")
    people = persona_table(root)
    if not people.empty:
        table = table.merge(people, on=["arm", "replicate", "agent"], how="left")
    return table


def export_format(to: str | None, out: str | Path | None) -> str:
    """The format: `to`, else `out`'s extension, else csv. ValueError (one line, the fix) for an
    unknown format or an `out` whose extension is not the format's."""
    if to is not None and to not in FORMATS:
        raise ValueError(f"--to {to}: use one of {', '.join(FORMATS)}")
    if out is None:
        return to or "csv"
    suffix = Path(out).suffix.lower().lstrip(".")
    if to is None:
        if suffix not in FORMATS:
            raise ValueError(f"--out {out}: cannot tell the format from its extension; fix: name it "
                             f"{' / '.join('.' + f for f in FORMATS)} or give --to")
        return suffix
    if suffix != to:
        raise ValueError(f"--out {out} does not end in .{to} (--to {to}); fix: name the file .{to}, "
                         "or drop --to to take the format from the extension")
    return to


def export(run_dir: str | Path, to: str | None = None, out: str | Path | None = None) -> Path:
    """Write the actions table as csv, parquet or jsonl (`export_format`); default
    `<run_dir>/export/actions.<format>`."""
    to = export_format(to, out)
    table = actions_table(run_dir)
    path = Path(out) if out else Path(run_dir) / "export" / f"actions.{to}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if to == "csv":
        table.to_csv(path, index=False)
    elif to == "parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trials export", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="a run directory (holds transcript.jsonl or jobs/)")
    parser.add_argument("--to", choices=FORMATS, default=None,
                        help="the file format (default: the --out extension, else csv)")
    parser.add_argument("--out", help="the output file (default <run_dir>/export/actions.<format>)")
    args = parser.parse_args(argv)
    try:
        path = export(args.run_dir, args.to, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"trials export: {exc}", file=sys.stderr)
        return 2
    print(f"exported: {path}")
    return 0
