"""A run's simulated answers vs real people's (analysis.validation), for `trials validate <run dir>
--human FILE --column C --metric M` (its command line: trials.run.validation), written to `<run dir>/analysis/`:

- `validation.csv`: one row per arm x group (group "all", then each subgroup of `--by`), the
  columns of `analysis.validation.COLUMNS` after `arm, metric, human_file, human_column`;
- `validation_answers.csv`: `arm, group_by, group, side (sim|human), answer, count` - the two
  distributions, so the report draws them without the human file;
- `validation.json`: the settings (human file name, column, metric, scale, margin, by, answer).

Subgroups: `--by COL` names a column of the human file and a persona field of the run; when they
are spelled differently, `--by "Gender Identity=gender"` (human column = persona field). The
persona fields come from each job's `job.json` (`persona_records`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from analysis.io import read_csv_labels
from analysis.validation import ValidationInputError, read_human, validate_answers


def parse_by(by: str | None) -> tuple[str | None, str | None]:
    """"Human Col=persona_field" -> (human column, persona field); "gender" -> ("gender", "gender")."""
    if not by:
        return None, None
    human, _, persona = str(by).partition("=")
    return human.strip(), (persona or human).strip()


def sim_answers(run_dir: str | Path, metric: str, persona_field: str | None = None) -> pd.DataFrame:
    """The run's values of `metric` as `arm, answer[, group]` (missing values dropped: they are
    counted in the run's missing.csv). Raises ValidationInputError naming the file and the fix."""
    root = Path(run_dir)
    path = next((root / f for f in ("metrics.parquet", "metrics.csv") if (root / f).is_file()), None)
    if path is None:
        raise ValidationInputError(f"{root}: no metrics.parquet or metrics.csv; pass the directory of a "
                                   "finished `trials run`")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else read_csv_labels(path)
    rows = df[df["metric"] == metric]
    if rows.empty:
        raise ValidationInputError(f"{path}: no metric {metric!r} (--metric / validation.metric); its metrics "
                                   f"are {sorted(df['metric'].unique())}")
    rows = rows[rows["value"].notna()]
    out = pd.DataFrame({"arm": rows["arm"].astype(str), "answer": rows["value"].astype(float)})
    if persona_field:
        attrs: dict[tuple[str, str], Any] = {}
        for meta in (root / "jobs").glob("*/*/job.json"):
            data = json.loads(meta.read_text())
            for record in data.get("persona_records") or []:
                value = record.get(persona_field)
                attrs[(str(data.get("session")), str(record.get("name")))] = (
                    value if isinstance(value, (str, int, float, bool)) else None)
        groups = [attrs.get((str(s), str(a))) for s, a in zip(rows["session"], rows["agent"])]
        if all(g is None for g in groups):
            raise ValidationInputError(f"{root}: the personas of this run have no field {persona_field!r} "
                                       "(--by); name a persona field, e.g. --by 'Gender Identity=gender'")
        out["group"] = ["(missing)" if g is None else str(g) for g in groups]
    return out.reset_index(drop=True)


def _counts(arm: str, by: str, df: pd.DataFrame, side: str) -> list[dict[str, Any]]:
    rows = []
    groups = [("all", df)] + ([(g, df[df["group"] == g]) for g in sorted(df["group"].unique())] if by else [])
    for group, sub in groups:
        for answer, n in sub["answer"].value_counts().sort_index().items():
            rows.append({"arm": arm, "group_by": by if group != "all" else "", "group": group, "side": side,
                         "answer": answer, "count": int(n)})
    return rows


def validate_run(run_dir: str | Path, human: str | Path, column: str, metric: str, *,
                 scale: Sequence[float] | None = (1, 5), margin: float = 0.5, by: str | None = None,
                 answer: str = "number", categories: Sequence[str] | None = None,
                 n_perm: int = 9999, seed: int = 0, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Compare every arm of a run with the human answers; writes the three files (module
    docstring) into `out_dir` (default `<run_dir>/analysis`) and returns validation.csv's table."""
    if answer != "number" and not categories:
        raise ValidationInputError(f"--answer {answer} needs --categories (e.g. A,B,C,D,E): the run stores a "
                                   "choice as its 1-based index into them")
    human_col, persona_field = parse_by(by)
    hum = read_human(human, column, by=human_col, answer=answer, scale=scale if answer == "number" else None)
    sim = sim_answers(run_dir, metric, persona_field)
    if answer != "number":
        sim["answer"] = sim["answer"].map(lambda v: _category(v, categories))
        categories = list(categories)
    tables, counts = [], []
    for arm, sub in sim.groupby("arm", sort=False):
        t = validate_answers(sub.drop(columns="arm"), hum, scale=scale if answer == "number" else None, margin=margin,
                     by="group" if human_col else None, categories=categories, n_perm=n_perm, seed=seed)
        t["group_by"] = t["group_by"].replace("group", human_col or "")
        t.insert(0, "arm", arm)
        tables.append(t)
        counts += _counts(str(arm), human_col or "", sub, "sim")
    counts += [{**r, "arm": arm} for arm in sim["arm"].unique() for r in _counts(str(arm), human_col or "", hum, "human")]
    table = pd.concat(tables, ignore_index=True)
    for i, (k, v) in enumerate((("metric", metric), ("human_file", Path(human).name), ("human_column", column))):
        table.insert(1 + i, k, v)
    out = Path(out_dir) if out_dir else Path(run_dir) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "validation.csv", index=False)
    pd.DataFrame(counts, columns=["arm", "group_by", "group", "side", "answer", "count"]).to_csv(
        out / "validation_answers.csv", index=False)
    settings = {"human_file": Path(human).name, "column": column, "metric": metric, "answer": answer,
                "scale": list(scale) if scale is not None and answer == "number" else None,
                "margin": margin if answer == "number" else None, "by": by, "categories": categories}
    (out / "validation.json").write_text(json.dumps(settings, indent=2) + "\n")
    return table


def _category(value: float, categories: Sequence[str] | None) -> str | None:
    """A simulated categorical answer is stored as its 1-based index into `categories`."""
    if categories is None or value is None or math.isnan(value):
        return None
    i = int(value) - 1
    return categories[i] if 0 <= i < len(categories) else None


def format_table(table: pd.DataFrame) -> str:
    """A short plain-text summary: one line per arm x group."""
    lines = []
    for r in table.itertuples():
        lines.append(f"{r.arm} / {r.group}: n_sim={r.n_sim} n_human={r.n_human} mean_sim={r.mean_sim:.2f} "
                     f"mean_human={r.mean_human:.2f} diff={r.diff:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}] "
                     f"sd_ratio={r.sd_ratio:.2f} ks={r.ks_stat:.2f} W={r.wasserstein:.2f} "
                     f"p_tost={r.p_tost:.3f} -> {r.verdict}")
    return "\n".join(lines)

