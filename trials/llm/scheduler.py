"""One request scheduler per endpoint, shared by every session of a run in a process.

A request needs a slot before it goes out. `Scheduler` admits it when all of these hold:
- fewer than `limit` requests are in flight. `limit` is adaptive (AIMD, as TCP congestion control
  and Netflix's concurrency-limits `AIMDLimit`): it starts at `llm.max_concurrency` (or
  `ADAPTIVE_START` when that is not set), grows while requests succeed and the limit is what
  holds requests back, and is multiplied by `BACKOFF` on 429/503 (at most once per round trip:
  only a request started after the last decrease can cause another one). It never exceeds
  `llm.max_concurrency` (or `ADAPTIVE_MAX`) and never drops below 1. Growth is slow start (+1 per
  success, doubling per round trip) until the first overload, then congestion avoidance (+1/limit
  per success, about +1 per round trip; a plateau, as in TCP CUBIC: up to one below the in-flight
  level of the last refused request it regains `REGAIN` slots per round trip, and around that
  level it probes at one slot per `PROBE` round trips, so a provider's fixed cap stays nearly full
  with a 429 every ~10 round trips rather than every ~5; not below `ADAPTIVE_START` slots, where
  a single 503 would hold the limit low for long). Slow start can overshoot the provider's limit by up to
  2x, so the first overload cuts from the number of requests in flight when the refused request
  was admitted (what the provider refused), not from the limit: BACKOFF x that level, but not
  below half the limit (TCP's cut on leaving slow start). Against a cap of 64 this lands at 58
  instead of anywhere in 32-64, which then took up to ~30 round trips to regain.
- the endpoint is not paused. A 429/503's Retry-After always delays the retry of the request that
  got it (`trials.llm.retry`); it pauses the whole endpoint when the overload persists: the
  request was admitted after the last decrease and the limit has not grown since (the cut did not
  help: e.g. an exhausted quota). The first 429 of an episode only shrinks the limit: against a
  provider's concurrency cap, pausing every request for each probe above the cap idled the
  endpoint for a round trip each time (issue #14: ~6 s of a 44 s run). The pause is capped at
  `max_pause_s` (`llm.retry_max_s`, default 20 s) and a pause of `PAUSE_WARN_S` or more is logged
  as a warning: a Retry-After of hours must not freeze the run silently.
- the `llm.rpm` / `llm.tpm` token buckets (optional; requests and tokens per minute) hold a
  positive balance. A request takes 1 from the rpm bucket and its estimated tokens (prompt chars
  / 4 + max_tokens) from the tpm bucket, corrected to the real count when it finishes; the balance
  may go negative (a request bigger than the burst still goes out once the bucket is full), so
  the long-run rate is exact. Burst: `BURST_S` seconds of the rate.

The scheduler only changes timing, never what a call returns. `snapshot()` gives the counters
(`limit`, `in_flight`, `waiting`, `overloads`, `peak_in_flight`) for tests, benchmarks and the
runner (which starts another session while the scheduler has spare capacity). `typical_s()` is
the median of the last `RECENT` successful round trips: sessions (`LLM.typical_latency_s`) and the
runner read it to decide whether overlapping calls can gain anything (a median, not the fastest
reply: an endpoint that answers a few requests from a cache in a millisecond is not instant).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

#: Starting limit when llm.max_concurrency is not set (adaptive mode).
ADAPTIVE_START = 16
#: Ceiling of the adaptive limit when llm.max_concurrency is not set.
ADAPTIVE_MAX = 1024
#: Multiplicative decrease on overload: Netflix concurrency-limits AIMDLimit's default backoffRatio
#: (0.9). A gentler cut than TCP's 0.5 keeps a provider's fixed concurrency cap nearly full.
BACKOFF = 0.9
#: After a cut, growth up to one below the refused level: about REGAIN slots per round trip.
REGAIN = 4.0
#: Around the refused level, growth slows to one slot per PROBE round trips (fewer 429s).
PROBE = 8.0
#: Token buckets hold this many seconds of their rate.
BURST_S = 5.0
#: Longest pause of the whole endpoint on a Retry-After (default; the client passes
#: `llm.retry_max_s`, the same cap as a retry's delay). A longer Retry-After is not honoured by
#: pausing: the request that got it fails after its retries (trials.llm.retry).
MAX_PAUSE_S = 20.0
#: An endpoint pause at least this long is logged as a warning (console and cli.log).
PAUSE_WARN_S = 5.0
#: Round trips `Scheduler.typical_s` takes the median of.
RECENT = 32

log = logging.getLogger(__name__)


class TokenBucket:
    """`rate_per_min` units per minute, burst `BURST_S` seconds; the balance may go negative."""

    def __init__(self, rate_per_min: float, clock: Callable[[], float]):
        if not rate_per_min > 0:
            raise ValueError(f"token bucket rate must be > 0 per minute, got {rate_per_min!r}")
        self.rate = rate_per_min / 60.0
        self.capacity = max(1.0, self.rate * BURST_S)
        self.balance = self.capacity
        self._clock = clock
        self._t = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.balance = min(self.capacity, self.balance + (now - self._t) * self.rate)
        self._t = now

    def wait_s(self) -> float:
        """Seconds until the balance is positive (0 when it is)."""
        self._refill()
        return 0.0 if self.balance > 0 else (-self.balance + 1e-9) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.balance -= amount


@dataclass
class Snapshot:
    limit: float
    in_flight: int
    waiting: int
    overloads: int
    peak_in_flight: int
    admitted: int


class Scheduler:
    """Admission control for one endpoint (see the module docstring). Thread-safe."""

    def __init__(self, max_concurrency: int | None = None, rpm: float | None = None, tpm: float | None = None,
                 *, clock: Callable[[], float] = time.monotonic, max_pause_s: float = MAX_PAUSE_S):
        self.max_pause_s = float(max_pause_s)
        self.cap = int(max_concurrency) if max_concurrency else ADAPTIVE_MAX
        self.limit = float(max_concurrency) if max_concurrency else float(min(ADAPTIVE_START, self.cap))
        self.rpm = TokenBucket(rpm, clock) if rpm else None
        self.tpm = TokenBucket(tpm, clock) if tpm else None
        self._clock = clock
        self._cond = threading.Condition()
        self.in_flight = 0
        self.waiting = 0
        self.peak_in_flight = 0
        self.overloads = 0
        self.admitted = 0
        self._recent: collections.deque[float] = collections.deque(maxlen=RECENT)  # round trips (s)
        self.last_used = -math.inf  # when a request was last admitted or finished (`clock`'s time)
        self._pause_until = 0.0
        self._last_decrease = -math.inf
        self._after_decrease = -math.inf  # the limit right after the last decrease
        self._slow_start = True
        self._refused = math.inf  # the in-flight level of the last refused request (the last cut)

    # ------------------------------------------------------------------ admission
    def _wait_s(self) -> float | None:
        """0 = may go now; a number = retry after that many seconds; None = wait for a release."""
        delay = max(0.0, self._pause_until - self._clock())
        for bucket in (self.rpm, self.tpm):
            if bucket is not None:
                delay = max(delay, bucket.wait_s())
        if delay > 0:
            return delay
        return 0.0 if self.in_flight < int(self.limit) else None

    @contextlib.contextmanager
    def slot(self, tokens: int = 0) -> Iterator["_Slot"]:
        """Hold one in-flight slot for the duration of a request; `tokens` = its estimated size."""
        with self._cond:
            self.waiting += 1
            try:
                while (wait := self._wait_s()) != 0.0:
                    self._cond.wait(wait)
            finally:
                self.waiting -= 1
            self.in_flight += 1
            self.admitted += 1
            self.last_used = self._clock()
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            if self.rpm is not None:
                self.rpm.take(1)
            if self.tpm is not None:
                self.tpm.take(tokens)
            # the limit binds when the window is at least half used (Linux's tcp_is_cwnd_limited in
            # slow start: cwnd < 2 * packets_out); only then does a success justify growth
            limited = 2 * self.in_flight >= int(self.limit)
            level = self.in_flight
        s = _Slot(self._clock(), tokens, limited, level)
        try:
            yield s
        finally:
            with self._cond:
                self.in_flight -= 1
                if self.tpm is not None and s.actual_tokens is not None:
                    self.tpm.take(s.actual_tokens - tokens)
                self.last_used = self._clock()
                if s.outcome == "ok":
                    self._increase(s.limited)
                    self._recent.append(self.last_used - s.started)
                elif s.outcome == "overload":
                    self._decrease(s.started, s.retry_after, s.level)
                self._cond.notify(max(1, int(self.limit) - self.in_flight))

    def _increase(self, limited: bool) -> None:
        # grow only when the limit was what held requests back (a full window, or a queue)
        if not (limited or self.waiting) or self.limit >= self.cap:
            return
        if self._slow_start:
            step = 1.0
        elif self._refused < ADAPTIVE_START:  # too few slots for a plateau: one blip would pin it
            step = 1.0 / self.limit
        elif self.limit < self._refused - 1:  # regain the room below the last refused level quickly
            step = REGAIN / self.limit
        elif self.limit < self._refused + 1:  # probe the level that was refused slowly
            step = 1.0 / (PROBE * self.limit)
        else:  # above it: the provider's limit has grown, congestion avoidance as usual
            step = 1.0 / self.limit
        self.limit = min(self.cap, self.limit + step)

    def _decrease(self, started: float, retry_after: float | None, level: int) -> None:
        self.overloads += 1
        now = self._clock()
        after_cut = started >= self._last_decrease  # admitted after the last decrease (or none yet)
        if retry_after and after_cut and self.limit < self._after_decrease + 1:  # the cut did not help
            # capped: a Retry-After of hours must not freeze every session of the run silently (the
            # request that got it fails after its retries instead: trials.llm.retry)
            pause = min(float(retry_after), self.max_pause_s)
            if pause < float(retry_after) or pause >= PAUSE_WARN_S:
                log.warning("endpoint overloaded: the server asks to wait %.0f s (Retry-After); every request "
                            "to it is paused for %.0f s (llm.retry_max_s)", float(retry_after), pause)
            self._pause_until = max(self._pause_until, now + pause)
        if after_cut:  # one decrease per round trip, not one per failed request
            self._refused = min(self.limit, level)
            # leaving slow start (up to 2x overshoot): from what was refused, at least half the limit
            base = max(min(self.limit, level), self.limit / 2) if self._slow_start else self.limit
            self.limit = max(1.0, math.floor(base * BACKOFF))
            self._last_decrease = now
            self._after_decrease = self.limit
            self._slow_start = False

    def typical_s(self) -> float | None:
        """Median of the last `RECENT` successful round trips (seconds); None before the first."""
        with self._cond:
            return statistics.median(self._recent) if self._recent else None

    def snapshot(self) -> Snapshot:
        with self._cond:
            return Snapshot(self.limit, self.in_flight, self.waiting, self.overloads,
                            self.peak_in_flight, self.admitted)

    def spare(self) -> int:
        """Room for more requesters: free slots plus a backlog of up to one `limit` of queued
        requests (so the endpoint never idles while sessions think); the runner starts sessions
        while this is > 0."""
        with self._cond:
            return max(0, 2 * int(self.limit) - self.in_flight - self.waiting)


@dataclass
class _Slot:
    started: float
    tokens: int
    limited: bool
    level: int = 0  # requests in flight when this one was admitted (itself included)
    outcome: str = "error"  # ok | overload | error (other failures leave the limit alone)
    retry_after: float | None = None
    actual_tokens: int | None = None

    def ok(self, tokens: int | None = None) -> None:
        self.outcome, self.actual_tokens = "ok", tokens

    def overload(self, retry_after: float | None) -> None:
        self.outcome, self.retry_after = "overload", retry_after


_REGISTRY: dict[tuple, Scheduler] = {}
_REGISTRY_LOCK = threading.Lock()


def endpoint_scheduler(endpoint: str, max_concurrency: int | None, rpm: float | None = None,
                       tpm: float | None = None, max_pause_s: float = MAX_PAUSE_S) -> Scheduler:
    """The process-wide scheduler of one endpoint (backend + base_url + model) and its settings:
    every LLM object of every session that talks to it shares it, agents and judges together."""
    key = (endpoint, max_concurrency, rpm, tpm, max_pause_s)
    with _REGISTRY_LOCK:
        sched = _REGISTRY.get(key)
        if sched is None:
            sched = _REGISTRY[key] = Scheduler(max_concurrency, rpm, tpm, max_pause_s=max_pause_s)
        return sched


def schedulers(used_since: float | None = None) -> list[Scheduler]:
    """The schedulers of this process; with `used_since` (a `time.monotonic()` time), only those
    that admitted or finished a request since then: the endpoints a run is using, not those of an
    earlier run in the same process."""
    with _REGISTRY_LOCK:
        found = list(_REGISTRY.values())
    return found if used_since is None else [s for s in found if s.last_used >= used_since]
