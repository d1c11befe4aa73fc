"""The `experiment.validation` block: checked before any LLM call (`check_validation`), applied
after the run (`run_validation`, via analysis.validation_run) to write `analysis/validation.csv`.

    validation: {human: <csv|parquet>, column: Vote, metric: vote, scale: [1, 5], margin: 0.5,
                 by: null | "Human Column=persona_field", answer: number | top_choice | category,
                 categories: null | [A, B, ...]}

`human: null` (the preset's default) means "no human data given": the run goes ahead and says
how to add it; the package ships no third-party data.
"""

from __future__ import annotations

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
