"""Driver memory and analysis time vs the number of sessions (scripted backend).

For each N in --sessions (default 200, 1000, 2000) it runs `brainstorm_variety` (small size: 3
agents, 4 steps; two arms, N/2 replicates each) in a fresh process with the default engine and
prints the driver's peak RSS (ru_maxrss, which includes every thread's sessions: the scripted
backend runs them in the driver) and the wall time; then times `trials analyze` on the largest
run (targets: peak RSS < 1 GB at 2,000 sessions, analyze < 60 s).

    python benchmarks/scale.py [--sessions 200 1000 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import io, json, resource, sys, time
from contextlib import redirect_stdout
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from throughput import config
from trials.run.experiment import run_experiment
cfg = config(["experiment=brainstorm_variety", "llm=scripted", "judge=same", "cache.mode=off",
              "run.replicates={reps}", "run.analyze=false", "run.report=false"])
t0 = time.perf_counter()
with redirect_stdout(io.StringIO()):
    code = run_experiment(cfg, {out!r})
wall = time.perf_counter() - t0
print(json.dumps({{"code": code, "wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, nargs="+", default=[200, 1000, 2000])
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scale-"))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    print(f"brainstorm_variety small (3 agents x 4 steps), scripted backend, default engine; results in {tmp}")
    last = None
    for n in a.sessions:
        out = tmp / f"n{n}"
        code = CHILD.format(root=str(ROOT), bench=str(ROOT / "benchmarks"), reps=n // 2, out=str(out))
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        if res.returncode != 0:
            print(res.stderr[-3000:])
            return 1
        r = json.loads(res.stdout.strip().splitlines()[-1])
        events = sum(1 for _ in open(out / "transcript.jsonl"))
        print(f"{n:5d} sessions: driver peak RSS {r['peak_rss_mb']:.0f} MB, wall {r['wall_s']:.1f} s "
              f"({1000 * r['wall_s'] / n:.0f} ms/session), {events} transcript events, exit {r['code']}")
        last = out
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "trials.cli", "analyze", str(last)], capture_output=True,
                         text=True, env=env)
    print(f"trials analyze on {a.sessions[-1]} sessions: {time.perf_counter() - t0:.1f} s "
          f"(exit {res.returncode}; target < 60 s)")
    if res.returncode != 0:
        print(res.stderr[-2000:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
