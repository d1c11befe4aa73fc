"""One job = one session (arm x replicate). `run_job` builds (or reuses) the LLM, binds it to the
session seed and a fresh `CallRecorder`, runs the scenario and returns everything it produced
(events, metrics, calls, meta) without touching the run directory, so it can run on a cluster
worker with no shared filesystem. `execute_job` = `run_job` + `write_result` (the job folder,
atomically) for engines that run in the driver's machine. Neither raises: a failure is returned
(and written to `<replicate>.failed.json`) as a summary, so one bad session never stops the others."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from typing import Any

import pandas as pd

from trials.llm.base import CallsStopped
from trials.llm.usage import token_totals, total_cost
from trials.session.actions import derive_seed
from trials.run.plan import Job, load_scenario
from trials.run.rundir import Journal, RunDir
from trials.run.worker_log import ensure_run_log

log = logging.getLogger(__name__)

#: LLM clients built in this worker process, keyed by their config. Loading the local model costs
#: ~1 s and ~100 MB, so a worker loads it once and every session gets its own bound view (own seed,
#: own recorder); the views share no mutable session state.
_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(llm_cfg: dict[str, Any], cache: dict[str, Any] | None, prices: Any) -> Any:
    from trials.llm import build_llm

    key = json.dumps([llm_cfg, cache, prices], sort_keys=True, default=str)
    with _CLIENTS_LOCK:  # many sessions start at once in one process: build each client once
        if key not in _CLIENTS:
            _CLIENTS[key] = build_llm(llm_cfg, cache=cache, prices=prices)
        return _CLIENTS[key]


_IMPORTS_LOCK = threading.Lock()


def _scenario(name: str) -> Any:
    """The scenario module, with the packages scenarios import lazily (judging, steering) loaded
    first, under one lock: sessions start in many threads of a fresh process at once (the
    threading engine, a Dask worker's threads), and CPython's concurrent first import of a package
    whose modules import each other fails at random ("partially initialized module",
    KeyError: 'trials.judging')."""
    with _IMPORTS_LOCK:
        import trials.judging  # noqa: F401
        import trials.steering  # noqa: F401

        return load_scenario(name)


def _model_name(cfg: dict[str, Any]) -> str:
    return str(cfg.get("model") or cfg.get("model_path") or cfg.get("backend") or "")


def _summary(job: Job, status: str, calls: pd.DataFrame, started: float, error: str = "") -> dict[str, Any]:
    cost = total_cost(calls["cost_usd"]) if len(calls) else 0.0
    return {"arm": job.arm, "replicate": job.replicate, "session": job.session, "seed": job.seed,
            "status": status, "error": error, "duration_s": round(time.time() - started, 3),
            "calls": int(len(calls)), "requests": int((~calls["cached"].astype(bool)).sum()) if len(calls) else 0,
            **token_totals(calls), "cost_usd": cost,
            "cost_known_usd": float(calls["cost_usd"].sum(skipna=True)) if len(calls) else 0.0,  # the budget's count
            "worker": worker_name()}


def current_dask_worker() -> Any:
    """The Dask worker running this code, or None (not inside a Dask worker; Dask never imported
    just to ask)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:  # not inside a Dask worker
        return None


def worker_name() -> str:
    """Where a job ran: the Dask worker's address inside a Dask worker, else host:pid."""
    worker = current_dask_worker()
    return str(worker.address) if worker is not None else f"{socket.gethostname()}:{os.getpid()}"


def execute_job(job: Job) -> dict[str, Any]:
    """Run one session and write its folder; returns a small summary for the progress bar."""
    rundir = RunDir(job.root)
    ensure_run_log(job.root)  # worker processes' log lines reach <run dir>/cli.log
    rundir.log_execution(job.arm, job.replicate, "start")
    attempt = f"{os.getpid()}-{time.monotonic_ns()}"
    where = {"arm": job.arm, "replicate": job.replicate, "session": job.session}
    # every call as it is made: a session stopped midway (Ctrl-C, SIGTERM, a killed worker) keeps them
    # (write-ahead: a "started" line before each request is sent, so a kill mid-request leaves a trace)
    with Journal(rundir.calls_journal(job.arm, job.replicate, attempt)) as journal:
        from trials.llm import CallRecorder

        recorder = CallRecorder(listener=lambda row: journal.write({**where, **row}),
                                on_start=lambda line: journal.write({**where, **line}))
        with _WRITE_LOCK:
            _LIVE.add(recorder)
        try:
            result = run_job(job, recorder=recorder)
            with _WRITE_LOCK:
                if recorder.stopped:  # abandoned: the driver recorded this session from its journal
                    raise CallsStopped(f"session {job.session} abandoned: the run was interrupted")
                write_result(rundir, job, result, attempt)
                journal.path.unlink(missing_ok=True)  # its rows are in the job folder or failed-calls/ now
        finally:
            with _WRITE_LOCK:
                _LIVE.discard(recorder)
    return result["summary"]


#: The recorders of the sessions `execute_job` runs in this process. `_WRITE_LOCK` makes "write a
#: session's result" and "abandon it" (`abandon_sessions`) exclusive.
_LIVE: set[Any] = set()
_WRITE_LOCK = threading.Lock()


def abandon_sessions() -> int:
    """A stopping driver records the running sessions of this process from their journals now (it
    stopped waiting for them: a second Ctrl-C): from here on they start no LLM call and write no
    result (their calls would count twice). Returns how many were running."""
    with _WRITE_LOCK:
        for recorder in _LIVE:
            recorder.stop()
        return len(_LIVE)


def write_result(rundir: RunDir, job: Job, result: dict[str, Any], attempt: str | None = None) -> None:
    """Write what `run_job` returned: the job folder (atomic) or the failure record. `attempt`
    names this attempt's call journal (RunDir.recover_calls tells a finished attempt by it)."""
    if result["summary"]["status"] == "failed":
        calls = result.get("calls")
        if calls is not None and len(calls):
            rundir.write_failed_calls(job.arm, job.replicate, calls, attempt=attempt)
        rundir.write_failure(job.arm, job.replicate, {**result["summary"], "traceback": result["traceback"]})
    else:
        rundir.write_job(job.arm, job.replicate, events=result["events"], metrics=result["metrics"],
                         calls=result["calls"], meta={**result["meta"], "attempt": attempt},
                         remeasure=result.get("remeasure"))
    rundir.log_execution(job.arm, job.replicate, result["summary"]["status"])


def run_job(job: Job, recorder: Any = None) -> dict[str, Any]:
    """Run one session; returns {summary, events, metrics, calls, meta, traceback}. Never writes
    into the run directory (`job.root` is not used). `recorder`: the session's `CallRecorder`
    (one that journals or streams each call as it is made), else a plain one."""
    from trials.llm import CallRecorder
    from trials.persona import Persona
    from trials.scenarios.base import SessionContext

    started = time.time()
    recorder = recorder if recorder is not None else CallRecorder()
    context = {"arm": job.arm, "replicate": job.replicate, "session": job.session}
    try:
        scenario = _scenario(job.scenario)
        llm = _client(job.llm, job.cache, job.prices).bind(seed=job.seed, recorder=recorder)
        judge_base = llm if job.judge == job.llm else _client(job.judge, job.cache, job.prices)
        judge = judge_base.bind(seed=derive_seed(job.seed, "judge"), recorder=recorder)
        ctx = SessionContext(
            experiment=job.experiment, arm=job.arm, arm_config=job.arm_config,
            replicate=job.replicate, session=job.session, seed=job.seed, llm=llm, judge=judge,
            personas=[Persona.model_validate(p) for p in job.personas], material=job.material,
            # a local model serves one call at a time (its lock): concurrent agent calls gain
            # nothing and interleave prompts, which defeats llama.cpp's prompt-prefix reuse
            threads=1 if "local" in (llm.backend, judge.backend) else job.threads,
            judge_model=judge.model or _model_name(job.judge), recorder=recorder)
        out = scenario.run(ctx)
    except Exception as exc:  # noqa: BLE001 - recorded, never swallowed
        calls = recorder.to_frame()
        error = f"{type(exc).__name__}: {exc}"
        log.warning("job %s failed: %s", job.session, error)
        summary = _summary(job, "failed", calls, started, error)
        if len(calls):  # the calls a failed session made are recorded too
            for i, (k, v) in enumerate(context.items()):
                calls.insert(i, k, v)
        return {"summary": summary, "traceback": traceback.format_exc(limit=8)[-4000:], "calls": calls}
    calls = recorder.to_frame()
    for i, (k, v) in enumerate(context.items()):
        calls.insert(i, k, v)
    metrics = pd.DataFrame(out.metrics)
    if len(metrics):
        for k, v in reversed(list({"experiment": job.experiment.get("name", ""), **context}.items())):
            metrics.insert(0, k, v)
        metrics["judge_model"] = ctx.judge_model
        for factor, level in (job.extra.get("factors") or {}).items():  # factorial designs
            metrics[f"factor_{factor}"] = level
    events = [e.record(**context) if hasattr(e, "record") else {**context, **e} for e in out.events]
    summary = _summary(job, "done", calls, started)
    return {"summary": summary, "events": events, "metrics": metrics, "calls": calls, "traceback": "",
            "remeasure": getattr(out, "remeasure", None),
            "meta": {**summary, "material": job.material, "personas": [p.get("name") for p in job.personas],
                     "persona_records": job.personas,  # for `trials export`
                     "factors": job.extra.get("factors") or {}, "arm_config": job.extra.get("arm_config")}}
