"""`trials run`: arms x replicates -> jobs -> joblib -> the run directory (DESIGN.md).

`run_from_hydra(cfg)` is the Hydra task; `run_experiment(cfg, root)` does the work on a plain
config (tests call it directly). The main process plans, dispatches and collects; sessions run on
an engine (`trials.run.engines`: threads, processes or a Dask cluster).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import platform
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import yaml
from omegaconf import DictConfig, OmegaConf

import trials
from trials.llm.client import allow_calls
from trials.run import preflight
from trials.run.budget import Budget, check_priced
from trials.run.delivery import undelivered_metrics, write_delivery
from trials.run.engines import choose, dispatch
from trials.run.jobs import abandon_sessions
from trials.run.plan import ConfigError, Job, Plan, build_plan, divide_threads, plain_values, resolve_n_jobs
from trials.run.remeasure import remeasure_run
from trials.run.progress import Progress, estimate, format_estimate, format_plan
from trials.run.resume import apply_transport, record_resume, resume_changes
from trials.run.rundir import RunDir

log = logging.getLogger(__name__)

#: Settings that do not change the experiment: a rerun into the same directory may differ in them
#: (a resume takes them, like every SAFE_ON_RESUME key, only when its command line sets them).
RESUME_FROM_COMMAND = ("n_jobs", "backend", "budget_usd", "dry_run", "threads_per_session", "analyze", "report",
                       "cluster")


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(trials.__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _prepare(cfg: dict[str, Any], root: Path, overrides: list[str] | None = None,
             resumed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resume: the saved config wins; a change of design is refused (trials.run.resume), safe
    changes are taken and noted in `resumed`; cache path made absolute."""
    run = dict(cfg.get("run") or {})
    saved = root / "config.yaml"
    if run.get("resume_dir"):
        if not saved.is_file():
            raise ConfigError(f"run.resume_dir={run['resume_dir']!r}: no config.yaml in {root}; "
                              "point it at the directory of an earlier `trials run`")
        old = yaml.safe_load(saved.read_text())
        changed = resume_changes(cfg, old, overrides)
        # a budget survives resume unless the command sets another (trials.run.budget)
        if run.get("budget_usd") is None:
            changed.pop("run.budget_usd", None)
        if resumed is not None:
            resumed.update(changed)
        _apply_changes(old, changed)  # only what the command line changed; the rest as saved
        old["run"]["resume_dir"] = str(root)
        apply_transport(old, changed)  # a fixed URL, port, key variable, timeout or rate limit
        cfg = old
    elif saved.is_file() and _comparable(yaml.safe_load(saved.read_text())) != _comparable(cfg):
        raise ConfigError(f"{root} already holds a different run (its config.yaml differs); use a new "
                          f"directory, or run.resume_dir={root} to finish that run with its own config")
    cache = dict(cfg.get("cache") or {})
    if cache.get("path") and cache.get("mode", "read_write") != "off":
        cache["path"] = str(Path(cache["path"]).expanduser().resolve())
        cfg = {**cfg, "cache": cache}
    return cfg


def _apply_changes(saved: dict[str, Any], changed: dict[str, list[Any]]) -> None:
    """Put a resume's `run.*` and `cache.*` changes ({dotted key: [old, new]}, all of them safe:
    trials.run.resume) into the saved config; a key the command line did not change keeps its
    saved value (a replay run stays a replay run)."""
    for key, (_, new) in changed.items():
        section, _, leaf = key.partition(".")
        if section in ("run", "cache") and leaf:
            saved[section] = {**(saved.get(section) or {}), leaf: new}


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    run = {k: v for k, v in (cfg.get("run") or {}).items() if k not in (*RESUME_FROM_COMMAND, "resume_dir")}
    return {**{k: v for k, v in cfg.items() if k not in ("cache", "run")}, "run": run}


def _dispatch(jobs: list[Job], run: dict[str, Any], progress: Progress) -> Iterator[dict[str, Any]]:
    """Yield job summaries as they finish (trials/run/engines.py). The engine asks the budget
    before starting each job (`Progress.over_budget` reserves its estimated cost), so once the
    cost reaches it no new job starts (running ones finish), however many sessions run at once."""
    yield from dispatch(jobs, run, lambda: not progress.over_budget(), run["engine"])


def run_experiment(cfg: dict[str, Any] | DictConfig, root: str | Path, overrides: list[str] | None = None) -> int:
    """Run (or resume) an experiment into `root`. Returns the exit status: 0 every job done, 1 not
    every job done (failed, or not run: budget), 2 config error (nothing was run), 3 every job done
    but a requested analysis, report or validation failed (the run data is kept), 130 interrupted
    (Ctrl-C), 143 stopped by SIGTERM. `overrides`: the command line's overrides (a resume
    compares only those keys with the saved config; None = the whole config)."""
    rundir = RunDir(root)
    try:
        if isinstance(cfg, DictConfig):
            cfg = preflight.resolve(cfg)
        cfg = plain_values({k: v for k, v in cfg.items() if k != "hydra"})
        resumed: dict[str, Any] = {}
        cfg = _prepare(cfg, rundir.root, overrides, resumed)
        plan = build_plan(cfg, rundir.root)
        preflight.check(cfg, plan)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    run = dict(cfg["run"])
    run["n_jobs_auto"] = run.get("n_jobs", "auto") == "auto"
    run["n_jobs"] = resolve_n_jobs(cfg)
    run["engine"] = choose(run, {str(j.llm.get("backend")) for j in plan.jobs} | {str(j.judge.get("backend")) for j in plan.jobs})
    divide_threads(plan.jobs, run["n_jobs"])
    for arm in plan.aa_arms:
        print(f"note: arm {arm!r} is identical to control {plan.control!r}: an A/A check "
              "(any 'effect' is noise)", file=sys.stderr)
    est = estimate(plan, run, cfg.get("prices"))
    try:
        check_priced(run.get("budget_usd"), [c for j in plan.jobs[:len(plan.arms)] for c in (j.llm, j.judge)],
                     cfg.get("prices"))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(format_estimate(est, len(plan.jobs)), flush=True)
    if run.get("dry_run"):
        print(format_plan(plan, est))
        print("dry run: nothing was called")
        return 0

    rundir.root.mkdir(parents=True, exist_ok=True)
    (rundir.root / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    stale = rundir.clean_stale()
    recovered = rundir.recover_calls()  # calls of sessions a killed run left midway
    if recovered:
        print(f"recorded {sum(recovered.values())} LLM call(s) of {len(recovered)} session(s) an earlier "
              "run left midway (job_status interrupted)", file=sys.stderr)
    pending = [j for j in plan.jobs if not rundir.is_done(j.arm, j.replicate)]
    if len(pending) < len(plan.jobs):
        print(f"resuming: {len(plan.jobs) - len(pending)} of {len(plan.jobs)} jobs already done"
              + (f", {stale} interrupted job(s) restarted" if stale else ""), file=sys.stderr)
        tried, fixed = remeasure_run(rundir, plan.jobs)  # repeat the measurements whose call had failed
        if tried:
            print(f"re-measured {fixed} of {tried} value(s) missing because a call had failed",
                  file=sys.stderr)
    manifest = {**_manifest(cfg, plan, est, started=_now()), "engine": run["engine"]}
    if run.get("resume_dir"):  # keep the first start; log every resume
        record_resume(rundir.root / "manifest.json", manifest, resumed, _now())
    rundir.write_manifest({**manifest, "status": "running"})

    budget = Budget(run.get("budget_usd"), per_job_estimate=est["cost_usd"] / max(1, len(plan.jobs)))
    earlier = rundir.attempt_costs() if run.get("budget_usd") is not None else []
    if earlier:  # a resume: what the earlier attempts cost counts against the cap, as while running
        print(f"budget {run['budget_usd']} USD: {budget.count_earlier(earlier)}", file=sys.stderr)
    progress = Progress(total=len(pending), budget_usd=run.get("budget_usd"), budget=budget)
    stop_ticker = _local_model_console(cfg, run, pending)
    interrupted: int | None = None
    engine_error: ConfigError | None = None
    jobs = _dispatch(pending, run, progress)
    try:
        with _sigterm_as_interrupt() as signals:
            try:
                for summary in jobs:
                    progress.update(summary)
            except KeyboardInterrupt:  # keep what finished and every call made; the manifest says partial
                interrupted = signals.get("signal", signal.SIGINT)
                print("interrupted: stopping the running sessions, then collecting the run", file=sys.stderr)
                try:
                    jobs.close()  # the engine stops its sessions (trials.run.engines) before this returns
                except KeyboardInterrupt:  # a second Ctrl-C: collect now (the calls journals keep the rows)
                    print("interrupted again: collecting the run now", file=sys.stderr)
    except ConfigError as exc:  # e.g. no Dask scheduler at run.cluster: the run stays resumable
        engine_error = exc
    finally:
        jobs.close()  # an engine left midway (any exception) stops its sessions here, not at garbage collection
        if interrupted is not None:  # sessions the engine stopped waiting for (a second Ctrl-C) call no more
            abandon_sessions()
        allow_calls()  # the engine may have stopped this process's calls (a sweep runs many runs)
        stop_ticker()
        progress.close()
    if interrupted is not None:
        recovered = rundir.recover_calls()  # sessions stopped midway: their calls, "interrupted"
        if recovered:
            print(f"kept {sum(recovered.values())} LLM call(s) of {len(recovered)} session(s) stopped midway "
                  "(job_status interrupted in llm_calls.parquet)", file=sys.stderr)
    code = _finish(cfg, plan, rundir, manifest, progress)
    if engine_error is not None:
        print(f"config error: {engine_error}; the run directory {rundir.root} is kept as a resumable "
              f"record (manifest status partial): finish it with run.resume_dir={rundir.root} "
              "and a working run.cluster, or delete it", file=sys.stderr)
        return 2
    return 128 + int(interrupted) if interrupted is not None else code


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[dict[str, int]]:
    """While the jobs run, SIGTERM (a scheduler's or `kill`'s stop) is handled like Ctrl-C: the
    running sessions stop and every call made is recorded. Yields {"signal": n} once one came."""
    seen: dict[str, int] = {}
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handler(signum: int, frame: Any) -> None:
        seen["signal"] = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)


def _local_model_console(cfg: dict[str, Any], run: dict[str, Any], pending: list[Job]) -> Any:
    """On the local model (calls take seconds) say that the model is loading and show per-call
    progress; the calls are only visible here when the jobs run in this process. Returns a stopper."""
    backends = {str((j.llm or {}).get("backend")) for j in pending} | {str((j.judge or {}).get("backend")) for j in pending}
    if "local" not in backends:
        return lambda: None
    path = (cfg.get("llm") or {}).get("model_path")
    model = f"model {path}" if path else "the embedded SmolLM2-135M model"
    engine = str(run.get("engine") or run.get("backend"))  # trials/run/engines.py: who runs the sessions
    in_process = engine in ("sequential", "threading") or int(run.get("n_jobs") or 1) == 1
    print(f"loading {model} (local backend)"
          + ("" if in_process else f" in each of {run.get('n_jobs')} worker processes") + " ...",
          file=sys.stderr, flush=True)
    if not in_process:
        return lambda: None
    from trials.llm.usage import add_call_listener
    from trials.run.progress import CallTicker

    ticker = CallTicker(every=1)  # local calls take seconds each: one line per call in logs
    remove = add_call_listener(ticker.tick)

    def stop() -> None:
        remove()
        ticker.close()
    return stop


def _manifest(cfg: dict[str, Any], plan: Plan, est: dict[str, Any], started: str) -> dict[str, Any]:
    judge = plan.jobs[0].judge if plan.jobs else {}
    return {
        "schema_version": 1, "package_version": trials.__version__, "git_sha": _git_sha(),
        "python": platform.python_version(), "experiment": plan.experiment.get("name"),
        "scenario": plan.experiment.get("scenario"), "control": plan.control,
        "arms": list(plan.arms), "arm_configs": plan.arm_configs or plan.arms, "aa_arms": plan.aa_arms,
        "factors": plan.factors, "propositions": _propositions(plan),
        "paired": bool(cfg["run"].get("paired", True)), "seed": int(cfg["run"].get("seed", 0)),
        "replicates": int(cfg["run"]["replicates"]),
        "llm": {"backend": cfg["llm"].get("backend"), "model": cfg["llm"].get("model")},
        "judge": {"backend": judge.get("backend"), "model": judge.get("model")},
        "estimate": est, "started_at": started,
    }


def _propositions(plan: Plan) -> dict[str, Any]:
    """The experiment's own propositions (any arm's) with their level, scale and direction."""
    out: dict[str, Any] = {}
    for conf in (plan.arm_configs or {}).values():
        for name, spec in dict(conf.get("propositions") or {}).items():
            out.setdefault(name, {"claim": spec.get("claim"), "rubric": spec.get("rubric"),
                                  "level": spec.get("level", "agent"), "scale": "0-9",
                                  "higher_is_better": bool(spec.get("higher_is_better", True))})
    return out


def _finish(cfg: dict[str, Any], plan: Plan, rundir: RunDir, manifest: dict[str, Any],
            progress: Progress) -> int:
    jobs, done = [], []
    for j in plan.jobs:
        meta = rundir.read_job_meta(j.arm, j.replicate) or {}
        status = "done" if rundir.is_done(j.arm, j.replicate) else meta.get("status", "not run")
        if status == "done":
            done.append((j.arm, j.replicate))
        jobs.append({"arm": j.arm, "replicate": j.replicate, "session": j.session, "seed": j.seed,
                     "status": status, "error": meta.get("error", "") if status != "done" else "",
                     "duration_s": meta.get("duration_s"), "worker": meta.get("worker")})
    # sessions of failed jobs become "not delivered" rows, in arms with a finished session (an arm
    # with none stays out of the table: nothing to compare; the manifest lists its failures)
    failed = [(j["arm"], j["replicate"], j["error"]) for j in jobs
              if j["status"] == "failed" and any(a == j["arm"] for a, _ in done)]
    totals = rundir.collect(done, undelivered_metrics(plan, failed))  # failed sessions: "not delivered"
    if plan.experiment.get("scenario") == "market_research" and done:
        from trials.run.respondents import write_respondents

        write_respondents(rundir.root, plan.jobs)
    # the manipulation check: was each arm's treatment delivered? (trials.run.delivery)
    arms_check = write_delivery(rundir.root, plan.arms, plan.control, plan.aa_arms, {a for a, _ in done})
    for role, purpose in (("llm", "action"), ("judge", "judge")):  # the backend's real model name
        if totals["models"].get(purpose):
            manifest[role]["model"] = ", ".join(totals["models"][purpose])
    n_failed = sum(j["status"] == "failed" for j in jobs)
    n_interrupted = sum(j["status"] == "interrupted" for j in jobs)  # stopped midway (Ctrl-C, SIGTERM)
    n_missing = sum(j["status"] not in ("done", "failed", "interrupted") for j in jobs)
    complete = n_failed == 0 and n_missing == 0 and n_interrupted == 0
    rundir.write_manifest({**manifest, "finished_at": _now(),
                           "status": "complete" if complete else "partial",
                           "stopped_for_budget": progress.stopped_for_budget,
                           "n_jobs_total": len(jobs), "n_done": len(done), "n_failed": n_failed,
                           "n_not_run": n_missing, "n_interrupted": n_interrupted, "jobs": jobs, "totals": totals, "arms": arms_check})
    report, steps_failed = None, []
    if done:
        try:
            steps_failed += _validate(cfg, rundir.root, plan)
            report = _post_process(cfg, rundir.root, plan.control, steps_failed)
        except (_Interrupted, KeyboardInterrupt) as stop:  # Ctrl-C while analysing: the data is written
            doing = str(stop) if isinstance(stop, _Interrupted) else "checking the judge's reliability"
            print(f"interrupted while {doing}: the run data is complete; rebuild the analysis and report with: "
                  f"trials run run.resume_dir={rundir.root}", file=sys.stderr, flush=True)
            return 130
    cost = "n/a" if totals["cost_usd"] is None else f"${totals['cost_usd']:.4f}"
    print(f"{len(done)}/{len(jobs)} jobs done, {n_failed} failed"
          + (f", {n_interrupted} interrupted" if n_interrupted else "")
          + (f", {n_missing} not run (budget {cfg['run'].get('budget_usd')} USD reached)"
             if progress.stopped_for_budget else f", {n_missing} not run" if n_missing else "")
          + f"; {totals['calls']} LLM calls ({totals['requests_sent']} requests), "  # HTTP requests: retries count
          + (f"tokens n/a ({totals['tokens_note']})" if None in (totals["tokens_in"], totals["tokens_out"])
             else f"{totals['tokens_in'] + totals['tokens_out']} tokens") + f", {cost}"
          + (f" (known cost; {totals['billing_note']})" if totals.get("billing_note") else ""))
    for arm, check in arms_check.items():
        if check["delivered"] is False:
            print(f"note: arm {arm!r}: {check['note']}; its comparison is marked 'treatment not delivered' "
                  "(more steps, or experiment.intervention_options)")
    for j in jobs:
        if j["status"] == "failed":
            print(f"  failed: {j['session']}: {j['error'][:200]}")
    if n_failed or n_missing or n_interrupted:
        print(f"rerun with run.resume_dir={rundir.root} to retry the {n_failed + n_missing + n_interrupted} "
              "unfinished job(s)")
    if report is not None:
        print(f"report: {report}")
    print(f"run directory: {rundir.root}", flush=True)
    for reason in steps_failed:  # the run's data is written; only a requested output is missing
        print(f"error: {reason}", file=sys.stderr, flush=True)
    # 1: not every job done (failed, interrupted, or not run: budget) -- a script can tell a partial run
    return 1 if n_failed or n_missing or n_interrupted else 3 if steps_failed else 0


def _step_failed(command: str, exc: Exception, redo: str) -> str:
    """The one-line reason a post-processing step failed, with how to redo it."""
    why = " ".join(str(exc).split())[:300]
    return f"{command} failed ({type(exc).__name__}: {why}); the run data is intact; redo it with {redo}"


def _validate(cfg: dict[str, Any], root: Path, plan: Plan) -> list[str]:
    """experiment.validation: compare with the human answers; judge_k >= 2: the judge's agreement
    with itself (both before the report, which shows them). Returns the failure's reason, if any."""
    from analysis.judge_reliability import write_judge_reliability
    from trials.run.validation import run_validation
    from trials.scenarios.base import metrics_of

    try:
        write_judge_reliability(root)
        run_validation(cfg, root, metrics_of(plan.scenario.METRICS, dict(cfg.get("experiment") or {})))
    except Exception as exc:  # noqa: BLE001 - the run directory is already complete
        return [_step_failed("validation", exc, f"`trials validate {root} --human FILE --column C --metric M`")]
    return []


def _analyze(root: Path, control: str) -> Path | None:
    from analysis import analyze, load_table

    analyze(load_table(root), control=control).write(root / "analysis")
    return None


def _report(root: Path, control: str) -> Path | None:
    from reports import render

    return render(root).html


class _Interrupted(Exception):
    """Ctrl-C during a post-processing step (its text: what was being done)."""


def _post_process(cfg: dict[str, Any], root: Path, control: str, failed: list[str]) -> Path | None:
    """Analysis, then the report, when those packages exist; a failure there never loses the run
    (its one-line reason is appended to `failed`: the run's exit status 3).
    Says on stderr what it is doing (these steps take seconds); returns report.html's path."""
    run = cfg.get("run") or {}
    report = None
    for key, step, command, doing in (("analyze", _analyze, "analyze", "analysing: effects, CIs, tests (analysis/)"),
                                      ("report", _report, "report", "rendering the report: figures, report.md, report.html")):
        if not run.get(key, True):
            continue
        print(f"{doing} ...", file=sys.stderr, flush=True)
        try:
            report = step(root, control) or report
        except KeyboardInterrupt:
            raise _Interrupted("analysing" if key == "analyze" else "rendering the report") from None
        except ImportError as exc:
            log.info("%s skipped: %s", command, exc)
        except Exception as exc:  # noqa: BLE001 - the run directory is already complete
            failed.append(_step_failed(command, exc, f"`trials {command} {root}` or "
                                                     f"`trials run run.resume_dir={root}`"))
    return report


def run_from_hydra(cfg: DictConfig) -> int:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    resume = OmegaConf.select(cfg, "run.resume_dir")
    root = Path(resume).expanduser() if resume else Path(hc.runtime.output_dir)
    if hc.mode == RunMode.MULTIRUN:  # Hydra's own "#0 : overrides" line is INFO, not shown
        print(f"sweep point #{hc.job.num}: {' '.join(hc.overrides.task)}", flush=True)
    code = run_experiment(cfg, root, overrides=list(hc.overrides.task))
    if code and hc.mode == RunMode.RUN:
        sys.exit(code)  # Hydra drops the task's return value in single-run mode
    return code
