"""`-m` sweeps on Hydra's joblib launcher (sweep points in parallel worker processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from runner_support import ROOT

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")


def test_joblib_launcher_runs_sweep_points_in_parallel_processes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    common = ["experiment=hello", "llm=scripted", "cache.mode=off", "run.analyze=false", "run.report=false",
              "run.n_jobs=1", "run.seed=0,1"]
    proc = subprocess.run(
        [sys.executable, "-m", "trials.cli", "run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         *common, f"hydra.sweep.dir={tmp_path / 'par'}"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p.parent for p in (tmp_path / "par").rglob("manifest.json"))
    assert len(runs) == 2
    workers = {json.loads((r / "manifest.json").read_text())["jobs"][0]["worker"] for r in runs}
    assert len(workers) == 2, "each sweep point ran in its own joblib worker process"
    assert set(pd.read_csv(tmp_path / "par" / "sweep_summary.csv")["run.seed"]) == {0, 1}
    # the same sweep on Hydra's basic (sequential) launcher gives the same tables
    seq = subprocess.run([sys.executable, "-m", "trials.cli", "run", "-m", *common,
                          f"hydra.sweep.dir={tmp_path / 'seq'}"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert seq.returncode == 0, seq.stderr[-3000:]
    for run in runs:
        other = tmp_path / "seq" / run.relative_to(tmp_path / "par")
        pd.testing.assert_frame_equal(pd.read_parquet(run / "metrics.parquet"), pd.read_parquet(other / "metrics.parquet"))
