"""Resuming a run safely (`run.resume_dir`): the saved config.yaml defines the experiment; a
command line that would change its design is refused, naming every changed key; settings that
do not change what is measured (SAFE_ON_RESUME) are taken from the new command and recorded in
manifest.json `resumes`, which keeps the original `started_at`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

from trials.run.design import flat_diff
from trials.run.errors import ConfigError

#: the model settings a resume may change (for `llm` and `judge`): where and how fast the calls go,
#: not what they return (model, backend, temperature, max_tokens, json_schema, ... stay the design),
#: so a mistyped URL, port, key variable, timeout or rate limit can be fixed and the run finished
TRANSPORT_KEYS = ("base_url", "api_key_env", "api_version", "timeout", "max_retries", "max_concurrency",
                  "rpm", "tpm")
#: keys a resume may change: how and how fast jobs run, not what they are
SAFE_ON_RESUME = ("run.n_jobs", "run.backend", "run.cluster", "run.budget_usd", "run.dry_run",
                  "run.threads_per_session", "run.analyze", "run.report", "run.resume_dir", "cache.mode",
                  "cache.path", *(f"{role}.{k}" for role in ("llm", "judge") for k in TRANSPORT_KEYS))


#: a transport key wherever a model config sits: `llm.<k>`, `judge.<k>`, and the same inside an arm
#: (`experiment.arms.<arm>.llm.<k>`), the arms' defaults or a factor level (arm names may hold dots)
_TRANSPORT = re.compile(r"(?:experiment\.(?:arms\.[^=]+|arm_defaults|factors\.[^=]+)\.)?(?:llm|judge)\.(?:"
                        + "|".join(TRANSPORT_KEYS) + ")")


def is_transport(key: str) -> bool:
    """`key` (dotted) is a transport setting of a model config, top-level or in an arm."""
    return _TRANSPORT.fullmatch(key) is not None


def _safe(key: str) -> bool:
    return is_transport(key) or any(key == s or key.startswith(s + ".") for s in SAFE_ON_RESUME)


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
                          f"on resume: {', '.join(SAFE_ON_RESUME)} (the llm/judge ones also inside an arm)")
    return {k: [flat_old.get(k), v] for k, v in diff.items() if k != "run.resume_dir"}


def transport_args(args: Iterable[str]) -> list[str]:
    """For a resume: `llm.rpm=60` -> `++llm.rpm=60` (and every TRANSPORT_KEYS key of `llm`/`judge`),
    so a transport key the default config group lacks (the saved run's group may have it, e.g.
    `rpm` of llm=openai; `judge=same` is empty) is added instead of refused as unknown. Other
    arguments unchanged; without `run.resume_dir=` the arguments are returned as they are."""
    args = list(args)
    if not any(str(a).lstrip("+~").startswith("run.resume_dir=") for a in args):
        return args
    out = []
    for a in args:
        key = str(a).split("=", 1)[0]
        if "=" in str(a) and is_transport(key.lstrip("+")) and not key.startswith("~"):
            a = "++" + str(a).lstrip("+")
        out.append(a)
    return out


def apply_transport(old: dict[str, Any], changed: dict[str, list[Any]]) -> None:
    """Put the transport changes of a resume (`llm.*`/`judge.*`, top-level or in an arm) into the
    saved config `old`."""
    for key, (_, new) in changed.items():
        if is_transport(key):
            _set_dotted(old, key.split("."), new)


def _set_dotted(node: dict[str, Any], parts: list[str], value: Any) -> None:
    """node[a][b]...[leaf] = value for the dotted parts, making missing mappings; at each level the
    longest run of parts that is a saved key wins (an arm name may hold dots: `v1.2`)."""
    while len(parts) > 1:
        n = next((n for n in range(len(parts) - 1, 1, -1) if isinstance(node.get(".".join(parts[:n])), dict)), 1)
        name = ".".join(parts[:n])
        if not isinstance(node.get(name), dict):
            node[name] = {}
        node, parts = node[name], parts[n:]
    node[parts[0]] = value


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
