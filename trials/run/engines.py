"""Execution engines: how the jobs of a run are executed. `dispatch(jobs, run, may_start)` yields
each job's summary as it finishes; `may_start()` is asked before every job starts (the budget).

| `run.backend` | where sessions run |
|---|---|
| `auto` (default) | `sequential` when one job at a time (`run.n_jobs=1`, the local model's default); `loky` for the local model with n_jobs > 1 (one model per process); else `threading` |
| `sequential` | one after another in the driver |
| `threading` | many sessions as threads of the driver. With `run.n_jobs=auto` a new session starts while the endpoint schedulers (`trials.llm.scheduler`) have spare capacity, up to `MAX_SESSIONS`; an integer fixes the number |
| `loky`, `multiprocessing` | joblib worker processes (`run.n_jobs` of them) |
| `dask` | a Dask distributed cluster: `run.cluster=tcp://host:port` (an existing one) or `local` (a `LocalCluster` of `run.n_jobs` worker processes). Workers return each job's events, metrics and calls; only the driver writes the run directory |
| `ray` | joblib's Ray backend (`ray.util.joblib`); not tested here |

Cache on Dask: the driver ships one snapshot of its SQLite cache to every worker (scattered once
per run); each worker answers hits from a worker-local copy, and every entry a job adds travels
back with its result and is merged into the driver's cache. No shared filesystem is needed, and
the driver's cache stays the one source of truth (a re-run is served from it).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Iterator

from trials.llm.base import CallsStopped
from trials.llm.usage import token_totals, total_cost
from trials.run.errors import ConfigError
from trials.run.jobs import Job, current_dask_worker, execute_job, run_job, write_result
from trials.run.rundir import RunDir, journal_rows

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

ENGINES = ("auto", "sequential", "threading", "loky", "multiprocessing", "dask", "ray")
#: Most sessions the adaptive threading engine runs at once (threads of the driver).
MAX_SESSIONS = 256
#: How long run.backend=dask waits for the scheduler at run.cluster (seconds; Dask's default is 30).
CONNECT_TIMEOUT_S = 10
#: How long a stopping Dask run waits for its running sessions to end their current call (seconds).
STOP_WAIT_S = 30
#: How often the adaptive engine looks at the schedulers' spare capacity (seconds).
TICK_S = 0.02
#: Most sessions at once while every endpoint in use answers instantly (`_endpoints_instant`):
#: one session prepares its next call while another's is at the server.
INSTANT_SESSIONS = 2


def choose(run: dict[str, Any], llm_backends: set[str]) -> str:
    """The engine `run.backend=auto` means for this run (see the module table)."""
    backend = str(run.get("backend") or "auto")
    if backend != "auto":
        return backend
    if int(run.get("n_jobs") or 1) == 1:  # also run.n_jobs=auto on the local model
        return "sequential"
    return "loky" if "local" in llm_backends else "threading"


def dispatch(jobs: list[Job], run: dict[str, Any], may_start: Callable[[], bool],
             engine: str) -> Iterator[dict[str, Any]]:
    n_jobs = int(run.get("n_jobs") or 1)
    if engine == "sequential" or (engine in ("loky", "multiprocessing") and n_jobs == 1):
        for job in jobs:
            if not may_start():
                return
            yield execute_job(job)
    elif engine == "threading":
        adaptive = run.get("n_jobs_auto") or n_jobs < 1  # auto, or -1 ("as many as the endpoint takes")
        yield from _threads(jobs, None if adaptive else n_jobs, int(run.get("threads_per_session", 4)), may_start)
    elif engine == "dask":
        yield from _dask(jobs, run, may_start)
    else:
        yield from _joblib(jobs, n_jobs, engine, may_start)


# ---------------------------------------------------------------------------------- threading
def _spare_sessions(threads: int, since: float) -> int:
    """Sessions the schedulers of the endpoints used since `since` could take now (their spare
    slots / calls per session)."""
    from trials.llm.scheduler import schedulers

    spare = [s.spare() for s in schedulers(used_since=since)]
    return min(spare) // max(1, threads) if spare else 1


def _endpoints_instant(since: float) -> bool:
    """Every endpoint used since `since` has answered, each typically in under `OVERLAP_MIN_S`
    (`Scheduler.typical_s`): a loopback server, the scripted backend. More sessions then add no throughput,
    only GIL hand-offs and context switches (issue #14, fake server at 0 ms, 48 sessions: CPU per
    request 1.68 ms with up to 48 sessions at once, 1.13-1.34 ms with 1-2)."""
    from trials.llm.scheduler import schedulers
    from trials.session.threads import OVERLAP_MIN_S

    typical = [s.typical_s() for s in schedulers(used_since=since)]
    return bool(typical) and all(t is not None and t < OVERLAP_MIN_S for t in typical)


def _threads(jobs: list[Job], fixed: int | None, threads: int,
             may_start: Callable[[], bool]) -> Iterator[dict[str, Any]]:
    """Sessions as threads; `fixed` sessions at once, or adaptively while schedulers have room
    (at most doubling the running sessions per tick, so a session that has not yet sent its
    first request is not mistaken for spare capacity), and at most `INSTANT_SESSIONS` while every
    endpoint in use answers instantly."""
    import queue

    done: queue.Queue = queue.Queue()
    todo = list(reversed(jobs))
    running = 0
    stopped = False
    sessions: list[threading.Thread] = []
    since = time.monotonic()  # this run's endpoints: the schedulers used from now on

    def work(job: Job) -> None:
        try:
            done.put(execute_job(job))
        except BaseException as exc:  # noqa: BLE001 - execute_job never raises; this is a bug guard
            done.put(exc)

    try:
        while todo or running:
            if fixed is not None:
                room = fixed - running
            else:
                room = min(MAX_SESSIONS - running, max(running, 1), max(0, _spare_sessions(threads, since)))
                if _endpoints_instant(since):
                    room = min(room, INSTANT_SESSIONS - running)
                if running == 0:
                    room = max(room, 1)
            while room > 0 and todo and not stopped:
                if not may_start():
                    stopped = True
                    break
                sessions.append(threading.Thread(target=work, args=(todo.pop(),), daemon=True, name="session"))
                sessions[-1].start()
                running += 1
                room -= 1
            if stopped:
                todo.clear()
            if not running:
                break
            try:
                item = done.get(timeout=TICK_S if fixed is None else None)
            except queue.Empty:
                continue
            while True:
                running -= 1
                if isinstance(item, BaseException):
                    raise item
                yield item
                try:
                    item = done.get_nowait()
                except queue.Empty:
                    break
    except (KeyboardInterrupt, GeneratorExit):  # Ctrl-C / SIGTERM in the driver (trials.run.experiment)
        _stop_sessions([t for t in sessions if t.is_alive()])
        raise


def _stop_sessions(running: list[threading.Thread]) -> None:
    """The run is stopping: no session starts a new call (`stop_calls`); wait for the running ones
    to end (each finishes the call it is in, which is recorded) so that no call is made after the
    driver collects the run. A second Ctrl-C stops the wait (the calls journals keep the rows)."""
    from trials.llm import stop_calls

    stop_calls()
    if running:
        print(f"interrupted: waiting for {len(running)} running session(s) to end their current LLM call "
              "(Ctrl-C again to stop now)", file=sys.stderr, flush=True)
    for thread in running:
        thread.join()


# ---------------------------------------------------------------------------------- joblib
def _joblib(jobs: list[Job], n_jobs: int, backend: str, may_start: Callable[[], bool]) -> Iterator[dict[str, Any]]:
    from joblib import Parallel, delayed

    def feed() -> Iterator[Any]:
        for job in jobs:
            if not may_start():
                return
            yield delayed(execute_job)(job)

    if backend == "ray":
        from ray.util.joblib import register_ray

        register_ray()
    yield from Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered",
                        pre_dispatch="n_jobs", batch_size=1)(feed())


# ---------------------------------------------------------------------------------- dask
# Workers stream two things to the driver as Dask events:
# - every LLM call, under one topic per session, like the write-ahead calls journal of the other
#   engines (`trials.run.rundir.journal_rows`): a "started" record before each request is sent,
#   delivered to the scheduler before the request goes out (a round trip: `Scheduler.log_event`),
#   and the call's row once it returns (`Worker.log_event`: the worker's ordered stream to the
#   scheduler, ahead of the task's own result). If the worker dies mid-session, the driver still
#   records every request that session sent (and may pay for): a started call with no row becomes
#   an "interrupted mid-call" row of cost NaN. Retried attempts are told apart by an attempt id.
# - the `trials` loggers' records (INFO and up), so worker log lines reach the driver's cli.log.
def _calls_topic(token: str, session: str) -> str:
    return f"persona-trials-calls-{token}-{session}"


def _log_topic(token: str) -> str:
    return f"persona-trials-log-{token}"


def _worker_cache_path(token: str) -> str:
    return os.path.join(tempfile.gettempdir(), "persona-trials-worker", f"cache-{token}.sqlite")


#: token -> the log handler forwarding this worker process's `trials` records to the driver
_FORWARDERS: dict[str, logging.Handler] = {}
_FORWARDERS_LOCK = threading.Lock()


class _EventLogHandler(logging.Handler):
    """Forwards log records as Dask events (msgpack-safe dicts) to the run's driver."""

    def __init__(self, worker: Any, topic: str):
        super().__init__(logging.INFO)
        self.worker, self.topic = worker, topic

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.worker.log_event(self.topic, {"name": record.name, "levelno": record.levelno,
                                               "message": record.getMessage(), "worker": str(self.worker.address),
                                               "process": record.process})
        except Exception:  # noqa: BLE001 - logging must never break a session
            self.handleError(record)


def _forward_logs(worker: Any, token: str) -> None:
    with _FORWARDERS_LOCK:
        if token in _FORWARDERS:
            return
        handler = _FORWARDERS[token] = _EventLogHandler(worker, _log_topic(token))
        logger = logging.getLogger("trials")
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)


def _tidy_worker(token: str) -> None:
    """Run on every worker at the end of a run: drop its cache copy and its log forwarder."""
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(_worker_cache_path(token) + suffix)
        except FileNotFoundError:
            pass
    with _FORWARDERS_LOCK:
        handler = _FORWARDERS.pop(token, None)
    if handler is not None:
        logging.getLogger("trials").removeHandler(handler)
    from trials.llm import allow_calls

    allow_calls()  # a cluster outlives the run: the next run's sessions may call


def _call_recorder(worker: Any, topic: str, attempt: str) -> Any:
    """A `CallRecorder` that streams this attempt's calls to the driver (see above)."""
    from distributed.utils import sync

    from trials.llm import CallRecorder

    def row(line: dict[str, Any]) -> None:
        msg = {k: (v.item() if hasattr(v, "item") else v) for k, v in line.items()}  # numpy -> msgpack-safe
        try:
            worker.log_event(topic, {**msg, "attempt": attempt})
        except Exception as exc:  # noqa: BLE001 - the row is still in the job's own result
            log.warning("could not stream an LLM call record to the driver: %s", exc)

    def started(line: dict[str, Any]) -> None:  # waits for the scheduler: the record is there before the request
        try:
            sync(worker.loop, worker.scheduler.log_event, topic=topic, msg={**line, "attempt": attempt},
                 callback_timeout=CONNECT_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the scheduler is unreachable: the run's result cannot reach it either
            log.warning("could not tell the driver of an LLM call about to be sent: %s", exc)

    return CallRecorder(listener=row, on_start=started)


def _dask_task(job: Job, image: bytes | None, token: str = "") -> dict[str, Any]:
    """Runs on a Dask worker: the session, with the driver's cache snapshot as a worker-local
    cache (one per run: `token`); returns the result plus the cache entries this job added and
    this attempt's id. Streams each call row and log record to the driver (see above). Never
    writes `job.root`."""
    from dataclasses import replace

    from trials.llm.cache import ResponseCache

    cache = None
    if image is not None and job.cache:
        cache = ResponseCache.from_snapshot(image, job.cache.get("mode", "read_write"), _worker_cache_path(token))
        job = replace(job, cache={"path": str(cache.path), "mode": cache.mode})
    attempt, worker, recorder = uuid.uuid4().hex, current_dask_worker(), None
    if worker is not None and token:
        _forward_logs(worker, token)
        recorder = _call_recorder(worker, _calls_topic(token, job.session), attempt)
    started = time.time()
    try:
        result = run_job(job, recorder=recorder)
    except CallsStopped:  # the run is stopping (an Exception for Dask: a BaseException may kill the worker)
        raise RuntimeError(f"session {job.session} stopped: the run was interrupted") from None
    result["cache_entries"] = cache.entries_since(started) if cache is not None else []
    result["attempt"] = attempt
    return result


def _relay_log(event: tuple[float, dict[str, Any]]) -> None:
    """A worker's log record, logged again in the driver (so it reaches cli.log)."""
    msg = event[1]
    logging.getLogger(str(msg.get("name", "trials"))).log(
        int(msg.get("levelno", logging.INFO)), "[worker %s pid %s] %s", msg.get("worker"), msg.get("process"),
        msg.get("message"))


def _streamed_calls(client: Any, token: str, job: Job) -> "pd.DataFrame":
    """The call rows this job's attempts streamed (with their `attempt` id), in call order; a call
    an attempt started and never finished is an "interrupted mid-call" row (`journal_rows`)."""
    import pandas as pd

    attempts: dict[str, list[dict[str, Any]]] = {}
    for _, msg in client.get_events(_calls_topic(token, job.session)):
        line = {k: v for k, v in msg.items() if k != "worker"}  # the scheduler adds the sender
        attempts.setdefault(str(line.get("attempt")), []).append(line)
    calls = pd.DataFrame([row for lines in attempts.values() for row in journal_rows(lines)])
    if len(calls):
        for i, (k, v) in enumerate({"arm": job.arm, "replicate": job.replicate, "session": job.session}.items()):
            calls.insert(i, k, v)
    return calls


def _dask(jobs: list[Job], run: dict[str, Any], may_start: Callable[[], bool]) -> Iterator[dict[str, Any]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise RuntimeError("run.backend=dask needs Dask distributed: pip install 'persona-trials[dask]'") from None
    from trials.llm.cache import build_cache

    address = str(run.get("cluster") or "local")
    cluster = None
    if address == "local":
        n = int(run.get("n_jobs") or 2)
        cluster = LocalCluster(n_workers=n, threads_per_worker=4,
                               processes=True, dashboard_address=None)
    try:
        client = Client(cluster if cluster is not None else address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:  # refused, unreachable, a malformed address
        if cluster is not None:
            cluster.close()
        raise ConfigError(f"run.cluster={address}: could not connect to a Dask scheduler within "
                          f"{CONNECT_TIMEOUT_S:g} s ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                          "fix: start one (`dask scheduler`) and give its address as tcp://host:port, or use "
                          "run.cluster=local (a LocalCluster on this machine)") from None
    image, token = None, uuid.uuid4().hex
    client.subscribe_topic(_log_topic(token), _relay_log)
    try:
        driver_cache = build_cache(jobs[0].cache) if jobs else None
        image = client.scatter(driver_cache.snapshot(), broadcast=True) if driver_cache else None
        slots = max(int(run.get("n_jobs") or 1), sum(client.nthreads().values()))
        by_key: dict[str, Job] = {}
        pending = iter(jobs)
        ac = as_completed()

        def submit() -> bool:
            job = next(pending, None)
            if job is None or not may_start():
                return False
            RunDir(job.root).log_execution(job.arm, job.replicate, "submit")
            fut = client.submit(_dask_task, job, image, token, pure=False, key=f"job-{job.session}-{token}")
            by_key[fut.key] = job
            ac.add(fut)
            return True

        for _ in range(slots):
            if not submit():
                break
        try:
            yield from _dask_results(client, token, ac, by_key, driver_cache, submit)
        except (KeyboardInterrupt, GeneratorExit):  # the driver stops: keep the calls streamed so far
            from distributed import wait

            from trials.llm import stop_calls

            futures = list(ac.futures)
            try:  # the sessions on the workers end at their next call; their last rows arrive
                client.run(stop_calls)
                wait(futures, timeout=STOP_WAIT_S)
            except Exception as exc:  # noqa: BLE001 - TimeoutError: a call still running; keep what came
                log.info("stopping the Dask sessions: %s", exc)
            client.cancel(futures)
            for job in by_key.values():
                streamed = _streamed_calls(client, token, job)
                if len(streamed):
                    RunDir(job.root).write_interrupted(job.arm, job.replicate, streamed.drop(columns="attempt"))
            raise
    finally:
        try:  # tidy the workers (cache copies, log forwarders); never hide the run's own outcome
            client.unsubscribe_topic(_log_topic(token))
            client.run(_tidy_worker, token)
        except Exception as exc:  # noqa: BLE001
            log.info("could not tidy the Dask workers: %s", exc)
        client.close()
        if cluster is not None:
            cluster.close()


def _dask_results(client: Any, token: str, ac: Any, by_key: dict[str, Job], driver_cache: Any,
                  submit: Callable[[], bool]) -> Iterator[dict[str, Any]]:
    """Collect the Dask jobs as they finish (`by_key`: the ones in flight), starting the next."""
    for fut in ac:
        job = by_key.pop(fut.key)
        streamed = _streamed_calls(client, token, job)
        try:
            result = fut.result()
        except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
            result = _lost(job, exc, streamed)
        else:  # attempts that died on a worker before this one finished: their calls were sent
            earlier = streamed.loc[streamed["attempt"] != result["attempt"]] if len(streamed) else streamed
            if len(earlier):
                RunDir(job.root).write_failed_calls(job.arm, job.replicate, earlier.drop(columns="attempt"))
        # collected: the scheduler may forget the task. Held on, a finished task whose worker then
        # dies is rerun by Dask (a whole session again: its requests sent, never recorded)
        fut.release()
        if driver_cache is not None:
            driver_cache.merge(result.pop("cache_entries", []))
        write_result(RunDir(job.root), job, result)
        yield result["summary"]
        submit()


def _lost(job: Job, exc: BaseException, streamed: "pd.DataFrame") -> dict[str, Any]:
    """A job whose task the cluster could not finish (its workers died): a failed job, rerun on
    resume. Its calls are the rows its attempts streamed before dying (recorded as failed-job
    calls); with none streamed, its cost is unknown: NaN, not 0."""
    error = f"{type(exc).__name__}: {exc}"
    calls = streamed.drop(columns="attempt") if len(streamed) else streamed
    cost = total_cost(calls["cost_usd"]) if len(calls) else math.nan
    return {"summary": {"arm": job.arm, "replicate": job.replicate, "session": job.session,
                        "seed": job.seed, "status": "failed", "error": error, "duration_s": math.nan,
                        "calls": int(len(calls)),
                        "requests": int((~calls["cached"].astype(bool)).sum()) if len(calls) else 0,
                        **(token_totals(calls) if len(calls) else {"tokens_in": None, "tokens_out": None,
                                                                   "tokens_note": "no calls recorded"}),
                        "cost_usd": cost, "worker": "lost",
                        "cost_known_usd": float(calls["cost_usd"].sum(skipna=True)) if len(calls) else 0.0},
            "traceback": error, "cache_entries": [], "calls": calls}
