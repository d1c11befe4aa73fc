"""One job = one session (arm x replicate), run inside a joblib worker. It builds (or reuses) the
LLM, binds it to the session seed and a fresh `CallRecorder`, runs the scenario, and writes the
job folder atomically. It never raises: a failure is written to `<replicate>.failed.json` and
returned as a summary, so one bad session never stops the others."""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

import pandas as pd

from trials.session.actions import derive_seed
from trials.run.plan import Job, load_scenario
from trials.run.rundir import RunDir
from trials.run.worker_log import ensure_run_log

log = logging.getLogger(__name__)

#: LLM clients built in this worker process, keyed by their config. Loading the local model costs
#: ~1 s and ~100 MB, so a worker loads it once and every session gets its own bound view (own seed,
#: own recorder); the views share no mutable session state.
_CLIENTS: dict[str, Any] = {}


def _client(llm_cfg: dict[str, Any], cache: dict[str, Any] | None, prices: Any) -> Any:
    from trials.llm import build_llm

    key = json.dumps([llm_cfg, cache, prices], sort_keys=True, default=str)
    if key not in _CLIENTS:
        _CLIENTS[key] = build_llm(llm_cfg, cache=cache, prices=prices)
    return _CLIENTS[key]


def _model_name(cfg: dict[str, Any]) -> str:
    return str(cfg.get("model") or cfg.get("model_path") or cfg.get("backend") or "")


def _summary(job: Job, status: str, calls: pd.DataFrame, started: float, error: str = "") -> dict[str, Any]:
    cost = float(calls["cost_usd"].sum()) if len(calls) else 0.0
    return {"arm": job.arm, "replicate": job.replicate, "session": job.session, "seed": job.seed,
            "status": status, "error": error, "duration_s": round(time.time() - started, 3),
            "calls": int(len(calls)), "requests": int((~calls["cached"].astype(bool)).sum()) if len(calls) else 0,
            "tokens_in": int(calls["tokens_in"].sum()) if len(calls) else 0,
            "tokens_out": int(calls["tokens_out"].sum()) if len(calls) else 0, "cost_usd": cost}


def execute_job(job: Job) -> dict[str, Any]:
    """Run one session and write its folder; returns a small summary for the progress bar."""
    from trials.llm import CallRecorder
    from trials.persona import Persona
    from trials.scenarios.base import SessionContext

    rundir = RunDir(job.root)
    ensure_run_log(job.root)  # worker processes' log lines reach <run dir>/cli.log
    started = time.time()
    rundir.log_execution(job.arm, job.replicate, "start")
    recorder = CallRecorder()
    context = {"arm": job.arm, "replicate": job.replicate, "session": job.session}
    try:
        scenario = load_scenario(job.scenario)
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
        if len(calls):
            for i, (k, v) in enumerate(context.items()):
                calls.insert(i, k, v)
            rundir.write_failed_calls(job.arm, job.replicate, calls)
        rundir.write_failure(job.arm, job.replicate, {
            **summary, "traceback": traceback.format_exc(limit=8)[-4000:]})
        rundir.log_execution(job.arm, job.replicate, "failed")
        return summary
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
    rundir.write_job(job.arm, job.replicate, events=events, metrics=metrics, calls=calls,
                     meta={**summary, "material": job.material,
                           "personas": [p.get("name") for p in job.personas],
                           "persona_records": job.personas,  # for `trials export`
                           "factors": job.extra.get("factors") or {},
                           "arm_config": job.extra.get("arm_config")},
                     remeasure=getattr(out, "remeasure", None))
    rundir.log_execution(job.arm, job.replicate, "done")
    return summary
