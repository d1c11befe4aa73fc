"""Re-measurement on resume: a finished job whose judge or extraction call failed after its retries
keeps its session and records the request in `jobs/<arm>/<replicate>/remeasure.jsonl`; resuming
the run (`run.resume_dir`) repeats exactly those requests (same messages, seeds, limits) without
re-simulating the session, and updates the job's metrics (and the values derived from them, e.g.
positive_share from the votes) in place, and the job's judge event in `events.jsonl` (hence
`transcript.jsonl`): the event of the failed call is replaced by the new one, marked
`"remeasured": true` (an idea extraction that had no event gets one, appended). Requests that
fail again stay listed for the next resume.
Only values whose `missing_reason` is transient (`trials.judging.answers.TRANSIENT_REASONS`) are
re-measured: an unparseable reply is the model's answer, not an accident.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from trials.run.plan import Job, load_scenario
from trials.run.rundir import CALL_COLUMNS, METRIC_COLUMNS, RunDir, tidy
from trials.session.actions import derive_seed
from trials.session.events import Event

log = logging.getLogger(__name__)


def _replace(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _measure(spec: dict[str, Any], judge: Any) -> dict[str, Any]:
    """One repeated measurement -> the metric row fields to set, and its judge event's content and
    scores (`event`; None: the measurement has no event, e.g. a failed idea extraction)."""
    from trials.scenarios.measures import ideas_event, judgement_event, vote_event

    if spec["kind"] == "judge":
        from trials.judging.judge import rejudge

        r = rejudge(spec, judge)
        value = r.weighted_score if r.weighted_score is not None else r.mean
        return {"value": value, "missing_reason": r.missing_reason, "missing_detail": r.missing_detail,
                "flag": r.flag, "remeasure": r.remeasure, "event": judgement_event(r, spec["metric"])}
    from trials.judging.extract import count_unique_ideas, reextract

    r = reextract(spec, judge)
    event = vote_event(r) if spec["kind"] == "vote" else ideas_event(r) if r.ok else None
    if not r.ok:
        return {"value": None, "missing_reason": r.missing_reason, "missing_detail": r.missing_detail,
                "flag": "", "remeasure": r.remeasure, "event": event}
    value = float(r.value.vote) if spec["kind"] == "vote" else float(count_unique_ideas(r.value))
    return {"value": value, "missing_reason": "", "missing_detail": "", "flag": "", "remeasure": None,
            "event": event}


def _update_events(path: Path, job: Job, updates: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Put each re-measurement's judge event (metric, agent, {content, scores}) in place of the
    event of its failed call in `events.jsonl`, marked `remeasured`; appended (after the last
    step) when the failed call left no event."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    last_step = max((int(e.get("step") or 0) for e in events), default=0)
    for metric, agent, fields in updates:
        same = [e for e in events if e.get("kind") == "judge" and e.get("type") == metric
                and (e.get("agent") or "") == agent]
        if same:
            same[-1].update(fields, remeasured=True)
        else:
            event = Event(step=last_step, kind="judge", type=metric, agent=agent or None, **fields)
            events.append({**event.record(arm=job.arm, replicate=job.replicate, session=job.session),
                           "remeasured": True})
    _replace(path, lambda p: p.write_text("".join(json.dumps(e, default=str, ensure_ascii=False) + "\n"
                                                  for e in events)))


def remeasure_job(rundir: RunDir, job: Job, judge_llm: Any) -> tuple[int, int]:
    """Repeat the failed measurements of one done job; returns (tried, now measured)."""
    folder = rundir.job_dir(job.arm, job.replicate)
    path = folder / "remeasure.jsonl"
    specs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    from trials.llm import CallRecorder

    recorder = CallRecorder()
    judge = judge_llm.bind(seed=derive_seed(job.seed, "judge"), recorder=recorder)
    metrics = pd.read_parquet(folder / "metrics.parquet")
    left, tried, fixed = [], 0, 0
    events: list[tuple[str, str, dict[str, Any]]] = []  # judge events to put in events.jsonl
    for spec in sorted(specs, key=lambda s: s["kind"] == "derived"):  # derived values last
        rows = (metrics["metric"] == spec["metric"]) & (metrics["agent"] == spec["agent"]) & \
            (metrics["missing_reason"] == "call failed")
        if not rows.any():
            continue
        tried += 1
        if spec["kind"] == "derived":
            got = _rederive(job, metrics, spec["metric"])
            if got is None:
                left.append(spec)
                continue
        else:
            got = _measure(spec, judge)
        if got.get("remeasure"):
            left.append({"metric": spec["metric"], "agent": spec["agent"], **got["remeasure"]})
        for col in ("value", "missing_reason", "missing_detail", "flag"):
            metrics.loc[rows, col] = got[col] if got[col] is not None else float("nan")
        if got.get("event") is not None:
            events.append((spec["metric"], spec["agent"], got["event"]))
        fixed += got["value"] is not None
    calls = recorder.to_frame()
    if len(calls):
        for i, (k, v) in enumerate({"arm": job.arm, "replicate": job.replicate, "session": job.session}.items()):
            calls.insert(i, k, v)
        old = pd.read_parquet(folder / "llm_calls.parquet")
        _replace(folder / "llm_calls.parquet",
                 lambda p: tidy(pd.concat([old, calls], ignore_index=True), CALL_COLUMNS).to_parquet(p, index=False))
    _replace(folder / "metrics.parquet", lambda p: tidy(metrics, METRIC_COLUMNS).to_parquet(p, index=False))
    if events:
        _update_events(folder / "events.jsonl", job, events)
    if left:
        _replace(path, lambda p: p.write_text("".join(json.dumps(s, default=str) + "\n" for s in left)))
    else:
        path.unlink()
    return tried, fixed


def _rederive(job: Job, metrics: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    """A derived session value (scenario.rederive over DERIVED_FROM), once its inputs have no
    transient gap; None while one of them is still missing because a call failed."""
    scenario = load_scenario(job.scenario)
    source = getattr(scenario, "DERIVED_FROM", {}).get(metric)
    if source is None or not hasattr(scenario, "rederive"):
        return None
    inputs = metrics.loc[metrics["metric"] == source]
    if (inputs["missing_reason"] == "call failed").any():
        return None
    value = scenario.rederive([float(v) for v in inputs["value"].dropna()]).get(metric)
    return {"value": value, "missing_reason": "" if value is not None else "no answer",
            "missing_detail": "" if value is not None else f"no {source} value to derive {metric} from",
            "flag": ""}


def remeasure_run(rundir: RunDir, jobs: list[Job]) -> tuple[int, int]:
    """Repeat the failed measurements of every done job in `jobs`; (tried, measured)."""
    from trials.run.jobs import _client

    tried = fixed = 0
    for job in jobs:
        if not (rundir.is_done(job.arm, job.replicate)
                and (rundir.job_dir(job.arm, job.replicate) / "remeasure.jsonl").is_file()):
            continue
        try:
            t, f = remeasure_job(rundir, job, _client(job.judge, job.cache, job.prices))
        except Exception as exc:  # noqa: BLE001 - the job's data stays as it was
            log.warning("re-measuring %s failed: %s: %s", job.session, type(exc).__name__, exc)
            continue
        tried, fixed = tried + t, fixed + f
    return tried, fixed
