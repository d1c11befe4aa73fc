"""How true is the pre-run estimate? For each shipped experiment (small size) it runs the plan on
the scripted backend and compares the estimated calls (low / expected / high) with the calls the
run really made, per purpose and in total. Prints ratios (actual / expected) and whether the total
falls inside the low-high range. The scripted backend is a test double: this measures the call
counting (actions, correction attempts, judging, extraction, re-asks), not a real model's pass rates
or latencies.

    .venv/bin/python benchmarks/estimate_accuracy.py [--replicates 2]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/runner_support.py

EXPERIMENTS = ("hello", "market_research", "brainstorm_variety", "brainstorm_correction", "debate",
               "brainstorm_factorial")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=2)
    args = parser.parse_args()
    from runner_support import config

    from trials.run.experiment import run_experiment
    from trials.run.plan import build_plan
    from trials.run.progress import estimate

    print(f"{'experiment':24s} {'low':>5s} {'expect':>6s} {'high':>5s} {'actual':>6s} {'actual/exp':>10s}  "
          "in range  per purpose actual/expected")
    for name in EXPERIMENTS:
        cfg = config(f"experiment={name}", f"run.replicates={args.replicates}")
        with tempfile.TemporaryDirectory() as tmp:
            est = estimate(build_plan(cfg, Path(tmp)), cfg["run"], cfg.get("prices"))
            with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                code = run_experiment(cfg, Path(tmp) / "run")
            calls = pd.read_parquet(Path(tmp) / "run" / "llm_calls.parquet")
        actual = calls.groupby("purpose").size().to_dict()
        total, r = len(calls), est["range"]
        purposes = ", ".join(
            f"{p} {actual.get(p, 0)}/{row['calls']}" for p, row in est["by_purpose"].items()
            if row["calls"] or actual.get(p))
        inside = r["low"]["calls"] <= total <= r["high"]["calls"]
        print(f"{name:24s} {r['low']['calls']:5d} {est['calls']:6d} {r['high']['calls']:5d} {total:6d} "
              f"{total / est['calls']:10.2f}  {'yes' if inside else 'NO':8s}  {purposes}"
              + ("" if code == 0 else f"  (run exit {code})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
