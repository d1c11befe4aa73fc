"""A resume keeps the saved run's settings (cache.*, run.n_jobs, run.backend, ...) unless its
command line sets them, and every change it takes is listed in manifest.json `resumes`."""

from __future__ import annotations

import json

import yaml

from trials.cli import main

BASE = ["llm=scripted", "run.report=false", "run.analyze=false"]


def _saved(root):
    return yaml.safe_load((root / "config.yaml").read_text())


def _changes(root):
    return json.loads((root / "manifest.json").read_text())["resumes"][-1]["changed"]


def test_resume_keeps_cache_and_engine_settings_unless_overridden(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "r1"
    cache = tmp_path / "elsewhere" / "c.sqlite"
    assert main(["run", "experiment=hello", *BASE, "cache.mode=off", f"cache.path={cache}", "run.n_jobs=2",
                 "run.backend=sequential", "run.threads_per_session=2", "run.budget_usd=5",
                 f"hydra.run.dir={root}"]) == 0
    before = _saved(root)
    assert main(["run", *BASE, f"run.resume_dir={root}"]) == 0
    after = _saved(root)
    assert after["cache"] == before["cache"] == {"mode": "off", "path": str(cache)}
    for key in ("n_jobs", "backend", "threads_per_session", "budget_usd"):
        assert after["run"][key] == before["run"][key], key
    assert _changes(root) == {}

    # what the command line sets is taken, and recorded
    assert main(["run", *BASE, f"run.resume_dir={root}", "cache.mode=read_write", "run.n_jobs=1"]) == 0
    capsys.readouterr()
    after = _saved(root)
    assert after["cache"]["mode"] == "read_write" and after["cache"]["path"] == str(cache)
    assert after["run"]["n_jobs"] == 1 and after["run"]["backend"] == "sequential"
    assert _changes(root) == {"cache.mode": ["off", "read_write"], "run.n_jobs": [2, 1]}
