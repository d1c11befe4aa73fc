"""Fault injection: the same experiment against a fake OpenAI-compatible server (127.0.0.1), once
fault-free and once with a share of faulty replies (default 20%: 429, 500, malformed 200 and hang,
5% each), with the same seed. Every reply is a function of the request, so a run that retries
every fault must produce the fault-free metrics table exactly. Prints: jobs done (or accounted
for as failed), whether the metric rows are equal (and how many), and the requests the run
recorded (llm_calls.parquet: one per call plus one per retry) vs the requests the server saw.

    .venv/bin/python benchmarks/fault_injection.py [--faults 0.2] [--replicates 4] [--backend loky]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/fake_openai.py
sys.path.insert(0, str(ROOT / "benchmarks"))

from runner_scaling import config, reply  # noqa: E402  (protocol-shaped replies, a function of the request)


def one_run(base_url: str, overrides: list[str], root: Path) -> tuple[int, float]:
    from trials.run.experiment import run_experiment

    t0 = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        code = run_experiment(config(base_url, overrides), root)
    return code, time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--faults", type=float, default=0.2, help="share of faulty requests, split evenly")
    p.add_argument("--replicates", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--backend", default="loky")
    p.add_argument("--n-jobs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0, help="the run seed and the server's fault seed")
    args = p.parse_args()
    from fake_openai import FakeOpenAI

    kinds = ("429", "500", "malformed", "hang")
    faults = {k: args.faults / len(kinds) for k in kinds}
    exp = ["experiment=brainstorm_correction", f"run.replicates={args.replicates}", f"experiment.steps={args.steps}",
           "experiment.group_size=3", "cache.mode=off", f"run.backend={args.backend}", f"run.n_jobs={args.n_jobs}",
           f"run.seed={args.seed}", "llm.timeout=1", "llm.max_retries=8", "++llm.retry_base_s=0.02",
           "++llm.retry_max_s=0.2"]
    tmp = Path(tempfile.mkdtemp(prefix="fault_injection-"))
    results = {}
    for name, plan in (("fault-free", {}), ("faulty", faults)):
        with FakeOpenAI(reply=reply, retry_after=0.02, faults=plan, fault_seed=args.seed) as srv:
            code, wall = one_run(srv.base_url, exp, tmp / name)
            seen, served = srv.requests, dict(srv.faults_served)
        man = json.loads((tmp / name / "manifest.json").read_text())
        results[name] = {"code": code, "wall": wall, "seen": seen, "served": served, "manifest": man,
                         "metrics": pd.read_parquet(tmp / name / "metrics.parquet")}
    clean, faulty = results["fault-free"], results["faulty"]
    key = ["arm", "replicate", "agent", "metric"]
    a = clean["metrics"].sort_values(key).reset_index(drop=True)
    b = faulty["metrics"].sort_values(key).reset_index(drop=True)
    equal = a.shape == b.shape and a.equals(b)
    same_rows = int((a.fillna(-1) == b.fillna(-1)).all(axis=1).sum()) if a.shape == b.shape else 0
    print(f"brainstorm_correction, 2 arms x {args.replicates} replicates x 3 agents x {args.steps} steps; "
          f"{args.backend} n_jobs={args.n_jobs}; run directories in {tmp}")
    for name, r in results.items():
        m, t = r["manifest"], r["manifest"]["totals"]
        faults_s = ", ".join(f"{k} {v}" for k, v in sorted(r["served"].items()) if k != "normal") or "none"
        print(f"{name:>10}: exit {r['code']}; jobs done {m['n_done']}/{m['n_jobs_total']}, failed {m['n_failed']}, "
              f"not run {m['n_not_run']}; requests recorded {t['requests_sent']} vs server saw {r['seen']} "
              f"({'equal' if t['requests_sent'] == r['seen'] else 'DIFFERENT'}); faults served: {faults_s}; "
              f"{r['wall']:.1f} s")
    print(f"metric rows equal to the fault-free run: {'yes' if equal else 'no'} ({same_rows} of {len(a)} rows "
          f"identical; {len(b)} rows in the faulty run)")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
