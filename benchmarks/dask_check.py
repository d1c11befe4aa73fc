"""Dask: a real cluster started from another folder, and the overhead per job.

1. Starts `dask scheduler` and two `dask worker` processes (each 1 process x 4 threads) with their
   working directory in a fresh temp folder (not this checkout, not the run directory), runs
   `brainstorm_correction` (small, scripted backend) with run.backend=dask
   run.cluster=tcp://..., and compares metrics.parquet with a sequential run of the same seed
   (they must be identical). Prints which workers ran the jobs (manifest.json jobs[].worker).
2. Overhead per job on the scripted backend: (wall of N jobs - wall of 1 job) / (N - 1) for
   run.backend=dask run.cluster=local (2 worker processes) and for run.backend=threading.

    python benchmarks/dask_check.py [--jobs 100]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from throughput import config  # noqa: E402

EXP = ["experiment=brainstorm_correction", "llm=scripted", "judge=same", "cache.mode=off",
       "run.analyze=false", "run.report=false"]


def run(overrides: list[str], root: Path) -> float:
    from trials.run.experiment import run_experiment

    t0 = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        code = run_experiment(config(overrides), root)
    if code != 0:
        raise SystemExit(f"run failed ({code}): {root}")
    return time.perf_counter() - t0


def table(root: Path) -> pd.DataFrame:
    return pd.read_parquet(root / "metrics.parquet").sort_values(["arm", "replicate", "agent", "metric"]).reset_index(drop=True)


def cluster_check(tmp: Path) -> None:
    elsewhere = Path(tempfile.mkdtemp(prefix="dask-cluster-"))  # the processes' cwd: not this checkout
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # as if the package were installed on the workers
    bin_dir = Path(sys.executable).parent
    sched_file = elsewhere / "scheduler.json"
    procs = [subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              cwd=elsewhere, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(2):
            procs.append(subprocess.Popen([str(bin_dir / "dask"), "worker", address, "--nworkers", "1",
                                           "--nthreads", "4", "--no-dashboard", "--name", f"w{i}"],
                                          cwd=elsewhere, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address) as c:
            c.wait_for_workers(2, timeout=60)
        seq, dsk = tmp / "sequential", tmp / "cluster"
        run([*EXP, "run.n_jobs=1"], seq)
        run([*EXP, "run.backend=dask", f"run.cluster={address}"], dsk)
        same = table(seq).equals(table(dsk))
        workers = sorted({j["worker"] for j in json.loads((dsk / "manifest.json").read_text())["jobs"]})
        files = sorted(str(p.relative_to(elsewhere)) for p in elsewhere.rglob("*") if p.is_file())
        print(f"cluster {address} (scheduler + 2 workers started in {elsewhere}): metrics identical to "
              f"sequential: {same}; jobs ran on {workers}; files the workers' folder holds: {files}")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(30)


def overhead(tmp: Path, n: int) -> None:
    hello = ["experiment=hello", "llm=scripted", "judge=same", "cache.mode=off", "run.analyze=false", "run.report=false"]
    rows = {}
    for name, over in (("threading", ["run.backend=threading", "run.n_jobs=4"]),
                       ("dask LocalCluster", ["run.backend=dask", "run.cluster=local", "run.n_jobs=2"])):
        run([*hello, *over, "run.replicates=2"], tmp / f"{name}-warm")  # imports
        one = run([*hello, *over, "run.replicates=1"], tmp / f"{name}-1")
        many = run([*hello, *over, f"run.replicates={n}"], tmp / f"{name}-{n}")
        rows[name] = (one, many, 1000 * (many - one) / (n - 1))
        print(f"{name}: 1 job {one:.2f} s, {n} jobs {many:.2f} s; per job {rows[name][2]:.1f} ms")
    print(f"Dask LocalCluster overhead per job vs threading: "
          f"{rows['dask LocalCluster'][2] - rows['threading'][2]:+.1f} ms "
          f"(ratio {rows['dask LocalCluster'][2] / rows['threading'][2]:.2f}); fixed start-up of a LocalCluster "
          f"run {rows['dask LocalCluster'][0] - rows['threading'][0]:+.1f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=100)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dask-check-"))
    cluster_check(tmp)
    overhead(tmp, a.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
