"""Concurrent calls within a session (agents acting in a step, judge calls after it) on one
process-wide pool of worker threads.

A session used to make a new `ThreadPoolExecutor` for every step, so a run of many sessions
started and stopped threads all the time (issue #14). `run_all` keeps at most `width` items of
one call going at once: the calling thread works on the items too, and `width - 1` helpers come
from the shared pool, whose idle threads are reused (`concurrent.futures` starts a new thread only
when none is idle). Outcomes come back in item order, whatever the thread timing.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable, Sequence, TypeVar

T = TypeVar("T")

#: Most helper threads of the shared pool (threads are made on demand, and reused when idle).
MAX_THREADS = 2048
#: Calls overlap (width > 1) only when an endpoint they use has a typical round trip (the median of
#: its last replies) at least this long. Against an endpoint that answers in about a millisecond (a loopback server, the scripted
#: backend) there is nothing to overlap: helper threads only add GIL hand-offs and context switches
#: (issue #14, 0 ms latency, 48 sessions: 1.5 ms of CPU per request with 4 threads per session,
#: 0.95 ms with 1). Any real provider's typical reply takes tens of milliseconds or more.
OVERLAP_MIN_S = 0.01

_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0
_POOL_LOCK = threading.Lock()


def shared_pool() -> ThreadPoolExecutor:
    """The process's pool (a fresh one in a forked child: the parent's threads do not exist there)."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid():
            _POOL = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="session-worker")
            _POOL_PID = os.getpid()
        return _POOL


def overlap_width(width: int, llms: Iterable[Any]) -> int:
    """`width`, or 1 when every LLM the calls use has answered and typically answers faster than
    `OVERLAP_MIN_S` (`LLM.typical_latency_s`): then overlapping gains nothing. An LLM that has
    not answered yet, or that does not report its latency, keeps `width`."""
    if width <= 1:
        return width
    typical = [getattr(llm, "typical_latency_s", lambda: None)() for llm in llms]
    return 1 if typical and all(t is not None and t < OVERLAP_MIN_S for t in typical) else width


def run_all(fn: Callable[[Any], T], items: Iterable[Any], width: int) -> list[tuple[bool, Any]]:
    """`fn(item)` for every item, at most `width` at a time; returns `(True, result)` or
    `(False, exception)` per item, in item order, once all are done (the order and the results
    do not depend on the width: only timing does)."""
    todo = list(items)
    outcomes: list[tuple[bool, Any]] = [(False, None)] * len(todo)
    index = iter(range(len(todo)))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(index, None)
            if i is None:
                return
            try:
                outcomes[i] = (True, fn(todo[i]))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller with its item
                outcomes[i] = (False, exc)

    helpers = [shared_pool().submit(worker) for _ in range(max(1, min(width, len(todo))) - 1)]
    worker()
    wait(helpers)
    for h in helpers:
        h.result()  # a failure of the loop itself (not of `fn`): a bug, raised
    for ok, value in outcomes:  # KeyboardInterrupt, SystemExit: not an item's failure
        if not ok and not isinstance(value, Exception):
            raise value
    return outcomes


def map_all(fn: Callable[[Any], T], items: Sequence[Any], width: int) -> list[T]:
    """Like `ThreadPoolExecutor(width).map(fn, items)`: results in order; the first failure (in
    item order) is raised once every item has finished."""
    outcomes = run_all(fn, items, width)
    for ok, value in outcomes:
        if not ok:
            raise value
    return [value for _, value in outcomes]
