"""The `experiment.validation` block: checked before any LLM call (`check_validation`), applied
after the run (`run_validation`, via analysis.validation_run) to write `analysis/validation.csv`;
and `trials validate` (`main`), the same comparison on any finished run.

    validation: {human: <csv|parquet>, column: Vote, metric: vote, scale: [1, 5], margin: 0.5,
                 by: null | "Human Column=persona_field", answer: number | top_choice | category,
                 categories: null | [A, B, ...]}

`human: null` (the preset's default) means "no human data given": the run goes ahead and says
how to add it; the package ships no third-party data.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from trials.run.errors import ConfigError

KEYS = {"human", "column", "metric", "scale", "margin", "by", "answer", "categories"}
ANSWERS = ("number", "top_choice", "category")


def check_validation(exp: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The checked block (None when absent or without a human file). `metrics`: the scenario's."""
    block = exp.get("validation")
    if block is None:
        return None
    if not isinstance(block, dict):
        raise ConfigError(f"experiment.validation={block!r}: give a mapping {{human: FILE, column: C, metric: M}}")
    if unknown := sorted(set(block) - KEYS):
        raise ConfigError(f"unknown key(s) {', '.join('experiment.validation.' + k for k in unknown)}; "
                          f"known: {', '.join(sorted(KEYS))}")
    if not block.get("human"):
        return None
    path = Path(str(block["human"])).expanduser()
    if not path.is_file():
        raise ConfigError(f"experiment.validation.human={block['human']!r}: no such file; give the path of the "
                          "human answers (.csv or .parquet)")
    for key in ("column", "metric"):
        if not block.get(key):
            raise ConfigError(f"experiment.validation.{key} is missing (the answer column / our metric)")
    if block["metric"] not in metrics:
        raise ConfigError(f"experiment.validation.metric={block['metric']!r} is not computed by scenario "
                          f"{exp.get('scenario')!r}; it computes {sorted(metrics)}")
    answer = block.get("answer") or "number"
    if answer not in ANSWERS:
        raise ConfigError(f"experiment.validation.answer={answer!r}: use one of {', '.join(ANSWERS)}")
    if answer != "number" and not block.get("categories"):
        raise ConfigError(f"experiment.validation.answer={answer} needs experiment.validation.categories "
                          "(e.g. [A, B, C, D, E]): the metric stores a choice as its 1-based index into them")
    scale = block.get("scale", [1, 5])
    if answer == "number" and not (isinstance(scale, (list, tuple)) and len(scale) == 2
                                   and all(isinstance(v, (int, float)) for v in scale) and scale[0] < scale[1]):
        raise ConfigError(f"experiment.validation.scale={scale!r}: give [low, high], e.g. [1, 5]")
    margin = block.get("margin", 0.5)
    if not isinstance(margin, (int, float)) or margin <= 0:
        raise ConfigError(f"experiment.validation.margin={margin!r}: give a positive number in scale units")
    return {**block, "human": str(path.resolve()), "answer": answer, "scale": scale, "margin": float(margin)}


def run_validation(cfg: dict[str, Any], root: Path, metrics: dict[str, Any]) -> Path | None:
    """Write analysis/validation*.csv for a finished run; None when the block has no human file.
    `metrics`: the scenario's METRICS."""
    from analysis.validation_run import validate_run

    exp = dict(cfg.get("experiment") or {})
    block = check_validation(exp, metrics)
    if block is None:
        if exp.get("validation") is not None:
            print("note: experiment.validation.human is not set, so the run was not compared with people; "
                  f"add experiment.validation.human=FILE, or run `trials validate {root} --human FILE "
                  "--column C --metric M`")
        return None
    validate_run(root, block["human"], block["column"], block["metric"], scale=block["scale"],
                 margin=block["margin"], by=block.get("by"), answer=block["answer"],
                 categories=block.get("categories"), seed=int((cfg.get("run") or {}).get("seed", 0)))
    return root / "analysis" / "validation.csv"



def main(argv: list[str] | None = None) -> int:
    """`trials validate <run_dir> --human FILE --column C --metric M [...]`: writes the three
    files of analysis.validation_run into `--out` (default `<run_dir>/analysis`). Bad input is exit
    2 with one line: a margin that is not > 0, a scale whose low end is not below its high end, or
    an existing validation.csv there without `--force` (it may be the run's own comparison, which
    the report shows: `--out DIR` writes elsewhere, `--force` replaces it)."""
    from analysis.validation import ANSWER_KINDS, ValidationInputError

    from trials.folders import out_folder_message
    from analysis.validation_run import format_table, validate_run

    ap = argparse.ArgumentParser(prog="trials validate", description="Compare a run's answers with real people's.")
    ap.add_argument("run_dir")
    ap.add_argument("--human", required=True, help="CSV or parquet file, one row per respondent")
    ap.add_argument("--column", required=True, help="the answer column of the human file")
    ap.add_argument("--metric", required=True, help="the run's metric holding the same answer (e.g. vote)")
    ap.add_argument("--scale", nargs=2, type=float, default=[1, 5], metavar=("LOW", "HIGH"))
    ap.add_argument("--margin", type=float, default=0.5, help="equivalence margin for TOST, scale units (> 0)")
    ap.add_argument("--by", default=None, help="subgroup column ('Human Column=persona_field' if spelled differently)")
    ap.add_argument("--answer", default="number", choices=ANSWER_KINDS)
    ap.add_argument("--categories", default=None, help="comma-separated labels for categorical answers (A,B,C)")
    ap.add_argument("--out", default=None, help="output folder (default <run_dir>/analysis)")
    ap.add_argument("--force", action="store_true", help="replace an existing validation.csv in the output folder")
    a = ap.parse_args(argv)
    out = Path(a.out) if a.out else Path(a.run_dir) / "analysis"
    error = None
    if not (math.isfinite(a.margin) and a.margin > 0):
        error = (f"--margin {a.margin:g}: the equivalence margin must be > 0 (the largest difference, in scale "
                 "units, that still counts as equivalent; e.g. --margin 0.5 on a 1-5 scale)")
    elif a.answer == "number" and not (all(map(math.isfinite, a.scale)) and a.scale[0] < a.scale[1]):
        error = f"--scale {a.scale[0]:g} {a.scale[1]:g}: give LOW HIGH with LOW < HIGH (e.g. --scale 1 5)"
    elif out_folder_message("--out", out):
        error = out_folder_message("--out", out)
    elif (out / "validation.csv").exists() and not a.force:
        error = (f"{out / 'validation.csv'} already exists (the run's own comparison or an earlier `trials validate`; "
                 "the report shows it); fix: --out DIR to write a new comparison elsewhere, or --force to replace it")
    if error:
        print(f"trials validate: {error}", file=sys.stderr)
        return 2
    try:
        table = validate_run(a.run_dir, a.human, a.column, a.metric, scale=a.scale, margin=a.margin, by=a.by,
                             answer=a.answer, categories=a.categories.split(",") if a.categories else None,
                             out_dir=out)
    except ValidationInputError as exc:
        print(f"trials validate: {exc}", file=sys.stderr)
        return 2
    print(format_table(table))
    print(f"wrote {out / 'validation.csv'}")
    return 0
