"""`trials sweep-summary <multirun_dir>`: one table over the run directories of a `-m` sweep.

sweep_summary.csv has one row per (sweep point, metric): the point's overrides as columns, the
per-arm means (`mean_<arm>`), `n_<arm>` and, for every non-control arm, `effect_<arm>` (arm mean
minus control mean). Written automatically at the end of a multirun by `SweepSummaryCallback`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra is a dependency
    Callback = object  # type: ignore[misc,assignment]

log = logging.getLogger(__name__)


def _overrides(run_dir: Path) -> dict[str, Any]:
    """The point's overrides, key -> value. The value is the one the run really used (read from
    its config.yaml, so `1e-1`, `'a'` and `0.10` come out typed and normalised); a group choice
    (`llm=openai`) keeps its name; a list or mapping becomes compact JSON text, so any value Hydra
    accepts gives one cell (a categorical axis when it is not a number)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    config = {}
    if (run_dir / "config.yaml").is_file():
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    out: dict[str, Any] = {}
    for item in yaml.safe_load(path.read_text()) or []:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        found, node = True, config
        for part in key.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                found = False
                break
        if not found or (isinstance(node, dict) and "/" not in key and "." not in key):
            out[key] = value  # a config group choice (llm=openai): its name
        elif isinstance(node, (list, dict)):
            out[key] = json.dumps(node, sort_keys=True, default=str)
        else:
            out[key] = node
    return out


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("manifest.json") if (p.parent / "metrics.parquet").is_file())


def summarize(root: str | Path) -> pd.DataFrame:
    root = Path(root)
    rows: list[dict[str, Any]] = []
    for rd in run_dirs(root):
        manifest = json.loads((rd / "manifest.json").read_text())
        control = manifest.get("control")
        metrics = pd.read_parquet(rd / "metrics.parquet")
        point = {"run_dir": str(rd.relative_to(root)), **_overrides(rd),
                 "status": manifest.get("status"), "n_failed": manifest.get("n_failed", 0)}
        if metrics.empty:
            rows.append(point)
            continue
        # session means first, so every session weighs the same regardless of its agent count
        per_session = metrics.groupby(["metric", "arm", "session"], sort=True)["value"].mean()
        by_arm = per_session.groupby(["metric", "arm"]).agg(["mean", "count"])
        for metric in sorted(metrics["metric"].unique()):
            row = {**point, "metric": metric}
            arms = by_arm.loc[metric]
            for arm, stats in arms.iterrows():
                row[f"mean_{arm}"] = stats["mean"]
                row[f"n_{arm}"] = int(stats["count"])
            for arm in arms.index:
                if control in arms.index and arm != control:
                    row[f"effect_{arm}"] = arms.loc[arm, "mean"] - arms.loc[control, "mean"]
            rows.append(row)
    return pd.DataFrame(rows)


def write_summary(root: str | Path) -> Path | None:
    table = summarize(root)
    if table.empty:
        return None
    out = Path(root) / "sweep_summary.csv"
    table.to_csv(out, index=False)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trials sweep-summary", description=__doc__.split("\n")[0])
    parser.add_argument("multirun_dir", help="the sweep directory (holds one run directory per point)")
    args = parser.parse_args(argv)
    root = Path(args.multirun_dir)
    if not root.is_dir():
        print(f"trials sweep-summary: {root} is not a directory", file=sys.stderr)
        return 2
    out = write_summary(root)
    if out is None:
        print(f"trials sweep-summary: no finished run directories (manifest.json + metrics.parquet) "
              f"under {root}", file=sys.stderr)
        return 1
    print(pd.read_csv(out).to_string(index=False, max_colwidth=40))
    print(f"sweep summary: {out}")
    return 0


class SweepSummaryCallback(Callback):  # type: ignore[misc]
    """Hydra callback: after a multirun, write sweep_summary.csv into the sweep directory."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        try:
            out = write_summary(Path(config.hydra.sweep.dir))
        except Exception as exc:  # noqa: BLE001 - a summary failure never hides the runs
            print(f"warning: sweep summary failed ({exc}); run `trials sweep-summary "
                  f"{config.hydra.sweep.dir}`", file=sys.stderr)
            return
        if not out:
            return
        print(f"sweep summary: {out}")
        root = Path(config.hydra.sweep.dir).resolve()
        if config.get("run", {}).get("report", True):
            try:
                from reports import render

                print("rendering the sweep report ...", file=sys.stderr, flush=True)
                print(f"report: {render(root).html}")
            except Exception as exc:  # noqa: BLE001 - the summary and the runs are already written
                print(f"warning: sweep report failed ({type(exc).__name__}: {exc}); retry with "
                      f"`trials report {root}`", file=sys.stderr)
        print(f"run directory: {root}", flush=True)
