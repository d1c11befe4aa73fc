"""Helpers for the runner tests: compose the real conf/ with overrides and run in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "trials" / "conf"
SCRIPTED = ["llm=scripted", "judge=same", "run.n_jobs=1", "run.analyze=false", "run.report=false"]


def config(*overrides: str, cache: Path | None = None) -> dict[str, Any]:
    """The resolved config dict `trials run <overrides>` would see (scripted, cache off unless given)."""
    cache_over = [f"cache.path={cache}"] if cache else ["cache.mode=off"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[*SCRIPTED, *cache_over, *overrides])
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def run(root: Path, *overrides: str, **kw: Any) -> int:
    from trials.run.experiment import run_experiment

    return run_experiment(config(*overrides, **kw), root)


def metrics(root: Path) -> pd.DataFrame:
    return pd.read_parquet(root / "metrics.parquet").sort_values(
        ["arm", "replicate", "agent", "metric"]).reset_index(drop=True)
