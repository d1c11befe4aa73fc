"""Quality of the run, from the run directory's files: failed jobs, action-correction attempts and
pass rates, intervention fire counts, judge noise (missing values come from analysis' missing.csv)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from reports import fmt
from reports.document import Table


def as_table(frame: pd.DataFrame, caption: str = "") -> Table:
    """A DataFrame as a display table: floats with two decimals, integers as integers."""
    rows, numeric = [], set()
    for j, col in enumerate(frame.columns):
        if pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col]):
            numeric.add(j)
    for _, rec in frame.iterrows():
        row = []
        for j, col in enumerate(frame.columns):
            v = rec[col]
            if col == "metric":  # one display name per metric everywhere
                row.append(fmt.metric(v))
            elif j in numeric:
                whole = pd.isna(v) or math.isinf(float(v)) or float(v).is_integer()
                row.append(fmt.integer(v) if whole else fmt.num(v))
            else:
                row.append("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        rows.append(row)
    return Table([fmt.label(c) for c in frame.columns], rows, caption, numeric)


MEASUREMENT_COLUMNS = ("arm", "metric", "reason", "count", "share", "missing_share", "share_diff", "p_fisher",
                       "differential")


def measurement_check(miss: pd.DataFrame) -> list[Any]:
    """The measurement check from missing.csv: missing values per arm x metric by reason (the
    vocabulary of metrics.csv's missing_reason), and a warning where missingness differs between
    arms (the rule is analysis.missing's: Fisher p < 0.05 or a gap >= 10 points)."""
    from reports.document import Callout, Para

    if "count" in miss.columns and not (miss["count"] > 0).any():
        return [Para("Missing values: none.")]
    shown = miss[miss["count"] > 0] if "count" in miss.columns else miss
    cols = [c for c in MEASUREMENT_COLUMNS if c in shown.columns] or list(shown.columns)
    blocks: list[Any] = [as_table(shown[cols], "Measurement check: missing values per arm and metric, by reason "
                                  "(no answer, unparseable, out of range, call failed, not delivered); "
                                  "share_diff = this arm's missing share minus control's; differential = Fisher "
                                  "p < 0.05 or a gap of 10 points or more.")]
    if "differential" in miss.columns:
        flagged = miss[miss["differential"].astype(str).str.lower() == "true"]
        notes = list(dict.fromkeys(f"{r.metric} ({r.arm})" + (f": {r.note}" if getattr(r, "note", "") else "")
                                   for r in flagged.itertuples()))
        if notes:
            blocks.append(Callout("Differential missingness", notes, "warning"))
    return blocks


def failed_jobs(manifest: dict[str, Any] | None) -> pd.DataFrame:
    jobs = pd.DataFrame((manifest or {}).get("jobs") or [])
    if jobs.empty or "status" not in jobs:
        return pd.DataFrame()
    failed = jobs[jobs["status"] != "done"]
    cols = [c for c in ("arm", "replicate", "session", "status", "error") if c in failed]
    return failed[cols].reset_index(drop=True)


def _passed(scores: Any) -> float:
    if isinstance(scores, dict) and "passed" in scores:
        return float(bool(scores["passed"]))
    return np.nan


def corrections(transcript: pd.DataFrame | None) -> pd.DataFrame:
    """Per arm: attempts judged, first candidates, share passing at first try and overall."""
    if transcript is None or transcript.empty or "kind" not in transcript:
        return pd.DataFrame()
    ev = transcript[transcript["kind"] == "correction"].copy()
    if ev.empty:
        return pd.DataFrame()
    ev["passed"] = ev["scores"].map(_passed) if "scores" in ev else np.nan
    ev["attempt"] = pd.to_numeric(ev.get("attempt"), errors="coerce").fillna(0)
    rows = []
    for arm, sub in ev.groupby("arm", sort=False):
        first = sub[sub["attempt"] == 0]
        rows.append({"arm": arm, "attempts": len(sub), "candidate actions": len(first),
                     "regenerations": int((sub["attempt"] > 0).sum()),
                     "pass rate (first try)": fmt.percent(first["passed"].mean()),
                     "pass rate (all attempts)": fmt.percent(sub["passed"].mean()),
                     "max attempt": int(sub["attempt"].max())})
    return pd.DataFrame(rows)


def interventions(transcript: pd.DataFrame | None) -> pd.DataFrame:
    if transcript is None or transcript.empty or "kind" not in transcript:
        return pd.DataFrame()
    ev = transcript[transcript["kind"] == "intervention"]
    if ev.empty:
        return pd.DataFrame()
    out = ev.groupby(["arm", "type"], sort=False).agg(fires=("type", "size"), sessions=("session", "nunique"))
    return out.reset_index().rename(columns={"type": "intervention"})


def judge_noise(metrics: pd.DataFrame | None) -> pd.DataFrame:
    """Mean within-item SD of repeated judge samples, per metric and arm (only where k > 1)."""
    if metrics is None or not {"judge_k", "judge_sd"} <= set(metrics.columns):
        return pd.DataFrame()
    rep = metrics[pd.to_numeric(metrics["judge_k"], errors="coerce") > 1]
    if rep.empty:
        return pd.DataFrame()
    out = rep.groupby(["metric", "arm"], sort=False).agg(
        k=("judge_k", "max"), items=("judge_sd", "count"), mean_judge_sd=("judge_sd", "mean"),
        max_judge_sd=("judge_sd", "max"))
    return out.reset_index()

