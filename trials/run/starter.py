"""`trials init <dir>`: write a commented starter experiment into a config folder of your own.

    trials init myconf                  # writes myconf/experiment/mine.yaml
    trials run --config-dir myconf experiment=mine llm=scripted    # mechanics check, instant
    trials run --config-dir myconf experiment=mine                 # the local model

`--config-dir` adds the folder in front of the shipped configs (trials/conf), so an experiment
there can inherit a shipped one (`defaults: [market_research]`) and change a few keys.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

STARTER = """\
# @package experiment
# A starter experiment: an A/B test of two product pitches with a proposition of your own.
# Run it with
#   trials run --config-dir {folder} experiment={name} llm=scripted   # instant mechanics check
#   trials run --config-dir {folder} experiment={name}                # the embedded local model
#   trials run --config-dir {folder} experiment={name} llm=openai llm.model=gpt-4o-mini
# then open <run dir>/report.html. See every key of the parent with
#   trials run experiment=market_research --cfg job

defaults:
  - market_research        # inherit a shipped experiment (trials/conf/experiment/); change keys below
  - _self_

name: {name}
description: Which of two pitches makes people want to buy the lamp?
question: Would you buy this product?

# Any key can differ between arms (products, question, population, group_size, steps, llm, judge,
# correction, interventions, propositions, ...); replicate r of every arm shares its seed and people.
control: pitch_a
arm_defaults:
  correction: null
  interventions: []
arms:                      # mappings merge with the parent's: null drops an inherited arm
  control: null
  treatment: null
  pitch_a:
    products: ["A desk lamp with a warm light, 45 dollars."]
  pitch_b:
    products: ["A desk lamp with a warm light that dims itself at bedtime to help you sleep, 45 dollars."]

# Your own propositions: an LLM judge scores each claim 0-9 (level agent: per person; session:
# once per session). Use them in `metrics` (and in a correction's `propositions`).
propositions:
  wants_to_buy:
    claim: "{{agent}} clearly wants to buy the product."
    rubric: "0 = refuses outright, 5 = undecided or not enough evidence, 9 = eager to buy now."
    level: agent
    scale: 0-9
    higher_is_better: true

metrics: [vote, wants_to_buy, persona_adherence, positive_share]
"""


def write_starter(folder: str | Path, name: str = "mine", force: bool = False) -> Path:
    """Write `<folder>/experiment/<name>.yaml`; refuses to overwrite unless `force`.
    Raises ValueError for a name that is not a plain file stem, FileExistsError."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ValueError(f"--name {name!r}: use letters, digits, '_' or '-' (it becomes experiment={name})")
    path = Path(folder) / "experiment" / f"{name}.yaml"
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pick another --name or pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STARTER.format(folder=folder, name=name))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trials init", description=__doc__.split("\n")[0])
    parser.add_argument("dir", help="your config folder (created if missing)")
    parser.add_argument("--name", default="mine", help="the experiment's name (default: mine)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    try:
        path = write_starter(args.dir, args.name, args.force)
    except (ValueError, FileExistsError) as exc:
        print(f"trials init: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. a folder that cannot be created or written
        print(f"trials init: {args.dir}: cannot write there ({exc.strerror}); fix: give a folder you can "
              "create and write, e.g. trials init myconf", file=sys.stderr)
        return 2
    print(f"wrote {path}\nrun it: trials run --config-dir {args.dir} experiment={args.name}")
    return 0
