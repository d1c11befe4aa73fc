"""Resuming a run safely (`run.resume_dir`): the saved config.yaml defines the experiment; a
command line that would change its design is refused, naming every changed key; settings that
do not change what is measured (SAFE_ON_RESUME) are taken from the new command and recorded in
manifest.json `resumes`, which keeps the original `started_at`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from trials.run.design import flat_diff
from trials.run.errors import ConfigError

#: keys a resume may change: how and how fast jobs run, not what they are
SAFE_ON_RESUME = ("run.n_jobs", "run.backend", "run.budget_usd", "run.dry_run", "run.threads_per_session",
                  "run.analyze", "run.report", "run.resume_dir", "cache.mode", "cache.path")


def _safe(key: str) -> bool:
    return any(key == s or key.startswith(s + ".") for s in SAFE_ON_RESUME)


def _override_keys(overrides: Iterable[str]) -> list[str]:
    """`run.replicates=3`, `+experiment.x=1`, `llm=openai` -> their dotted keys."""
    keys = []
    for item in overrides:
        key = str(item).split("=", 1)[0].lstrip("+~")
        if key and not key.startswith("hydra"):
            keys.append(key.replace("/", "."))
    return keys


def resume_changes(new: dict[str, Any], old: dict[str, Any],
                   overrides: Iterable[str] | None = None) -> dict[str, list[Any]]:
    """Compare the new command's config with the saved one. `overrides`: the command line's
    overrides (only their keys are compared; None = compare everything, for the Python API).
    Returns the safe changes {key: [old, new]}; raises ConfigError listing the design changes."""
    skip = ("hydra",)
    diff = {k: v for k, v in flat_diff({k: v for k, v in old.items() if k not in skip},
                                       {k: v for k, v in new.items() if k not in skip}).items()}
    if overrides is not None:
        keys = _override_keys(overrides)
        diff = {k: v for k, v in diff.items() if any(k == o or k.startswith(o + ".") for o in keys)}
    flat_old = flat_diff({}, old)
    design = {k: [flat_old.get(k), v] for k, v in diff.items() if not _safe(k)}
    if design:
        listed = ", ".join(f"{k}: {_show(a)} -> {_show(b)}" for k, (a, b) in sorted(design.items()))
        raise ConfigError(f"run.resume_dir: these overrides change the saved run's design: {listed}; a "
                          "resumed run finishes the experiment it started. Fix: drop them (the run's "
                          "config.yaml is used), or start a new run without run.resume_dir. Safe to change "
                          f"on resume: {', '.join(SAFE_ON_RESUME)}")
    return {k: [flat_old.get(k), v] for k, v in diff.items() if k != "run.resume_dir"}


def record_resume(previous: Path, manifest: dict[str, Any], changed: dict[str, list[Any]], now: str) -> None:
    """Carry the earlier manifest's `started_at` into `manifest` and append this resume to
    `resumes` ([{at, changed: {key: [old, new]}}])."""
    if not previous.is_file():
        return
    old = json.loads(previous.read_text())
    manifest["started_at"] = old.get("started_at", manifest["started_at"])
    manifest["resumes"] = [*old.get("resumes", []), {"at": now, "changed": changed}]


def _show(value: Any) -> str:
    return "(unset)" if value is None else repr(value)
