"""Overlapping calls only where they gain something (issue #14's CPU per request): a session's
step sends its agents' calls in parallel while an endpoint's round trip without queueing is long
(`Scheduler.typical_s`, `overlap_width`), one at a time against an endpoint that answers in about a
millisecond; and the adaptive engine's `CpuMeter`."""

from __future__ import annotations

import threading
import time

import pytest

from fake_openai import FakeOpenAI
from trials.llm import build_llm
from trials.llm.scheduler import RECENT, Scheduler
from trials.persona import Persona
from trials.session import world as world_module
from trials.session.threads import OVERLAP_MIN_S, overlap_width, run_all
from trials.session.world import World


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_typical_round_trip_is_the_median_of_recent_successful_slots():
    clock = Clock()
    s = Scheduler(clock=clock)
    assert s.typical_s() is None

    def trip(seconds: float, ok: bool = True) -> None:
        with s.slot() as slot:
            clock.t += seconds
            slot.ok() if ok else slot.overload(None)

    for seconds in (0.30, 0.12, 0.50):
        trip(seconds)
    trip(0.001, ok=False)  # a 429 is not a round trip of the endpoint's work
    assert s.typical_s() == pytest.approx(0.30)
    for _ in range(3):  # a proxy answering a few requests from its cache: the endpoint is not instant
        trip(0.001)
    assert s.typical_s() == pytest.approx((0.001 + 0.12) / 2) and s.typical_s() >= OVERLAP_MIN_S
    for _ in range(RECENT):  # only the last RECENT count
        trip(0.002)
    assert s.typical_s() == pytest.approx(0.002)


class _Latency:
    def __init__(self, base: float | None):
        self.base = base

    def typical_latency_s(self) -> float | None:
        return self.base


def test_overlap_width_needs_every_endpoint_known_and_fast_to_go_serial():
    fast, slow, unknown = _Latency(0.001), _Latency(0.2), _Latency(None)
    assert overlap_width(4, [fast]) == 1
    assert overlap_width(4, [fast, fast]) == 1
    assert overlap_width(4, [fast, slow]) == 4, "one slow endpoint: its calls gain from overlapping"
    assert overlap_width(4, [fast, unknown]) == 4, "before an endpoint answers, its latency is unknown"
    assert overlap_width(4, [object()]) == 4, "an LLM that does not report latency keeps the width"
    assert overlap_width(4, []) == 4
    assert overlap_width(1, [slow]) == 1
    assert overlap_width(4, [_Latency(OVERLAP_MIN_S)]) == 4


def test_run_all_width_one_runs_in_the_calling_thread_and_width_two_overlaps():
    me = threading.get_ident()
    threads: list[int] = []
    assert [v for _, v in run_all(lambda x: threads.append(threading.get_ident()) or x * 2, [1, 2, 3], 1)] == [2, 4, 6]
    assert set(threads) == {me}
    both = threading.Barrier(2, timeout=10)  # passes only if two items run at the same time
    outcomes = run_all(lambda x: both.wait() is not None and x, [1, 2], 2)
    assert outcomes == [(True, 1), (True, 2)]


def _session(llm) -> World:
    world = World(llm, seed=3, max_workers=4)
    for name in ("Ana Ruiz", "Bo Chen", "Cy Diaz", "Di Eze"):
        world.add_agent(Persona(name=name), goals=["Brainstorm."])
    return world


def test_a_session_steps_serially_once_the_endpoint_is_known_to_answer_instantly(monkeypatch):
    widths: list[int] = []
    real = world_module.run_all
    monkeypatch.setattr(world_module, "run_all", lambda fn, items, width: widths.append(width) or real(fn, items, width))
    llm = build_llm({"backend": "scripted", "model": "overlap-test-instant"})
    world = _session(llm)
    world.run(3)
    assert llm.typical_latency_s() is not None and llm.typical_latency_s() < OVERLAP_MIN_S
    assert widths[0] == 4, "the first step: nothing is known of the endpoint yet"
    assert widths[1:] == [1, 1]


def test_a_session_still_overlaps_its_agents_calls_against_a_slow_endpoint():
    with FakeOpenAI(latency=0.05) as srv:
        llm = build_llm({"backend": "openai", "base_url": srv.base_url, "model": "overlap-test-slow",
                         "timeout": 10, "max_retries": 0})
        _session(llm).run(2)
        assert llm.typical_latency_s() >= 0.05
        assert srv.max_in_flight >= 2, "four agents' calls of one step overlap against a 50 ms endpoint"


def test_schedulers_used_since_a_time_are_the_runs_endpoints():
    from trials.llm.scheduler import endpoint_scheduler, schedulers

    old = endpoint_scheduler("test|used-since|old", None)
    with old.slot() as slot:
        slot.ok()
    since = time.monotonic()
    new = endpoint_scheduler("test|used-since|new", None)
    assert new not in schedulers(used_since=since), "not used yet"
    with new.slot() as slot:
        slot.ok()
    assert new in schedulers(used_since=since) and old not in schedulers(used_since=since)
    assert {old, new} <= set(schedulers())


def _peak_sessions(monkeypatch) -> list[int]:
    """Patch the threading engine's job runner to count sessions running at once; [peak]."""
    from trials.run import engines

    lock, now, peak = threading.Lock(), [0], [0]
    real = engines.execute_job

    def counted(job):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        try:
            return real(job)
        finally:
            with lock:
                now[0] -= 1
    monkeypatch.setattr(engines, "execute_job", counted)
    return peak


HELLO8 = ["experiment=hello", "llm=openai", "llm.model=fake", "llm.max_retries=0", "judge=same", "run.replicates=8",
          "run.n_jobs=auto", "run.backend=threading", "cache.mode=off", "run.analyze=false", "run.report=false"]


@pytest.mark.parametrize("latency, instant", [(0.0, True), (0.05, False)])
def test_sessions_at_once_against_an_instant_endpoint_are_capped(tmp_path, monkeypatch, latency, instant):
    """The adaptive engine starts sessions while the endpoint has room; against an endpoint that
    answers instantly more sessions only add context switches, so at most INSTANT_SESSIONS run
    at once."""
    from runner_support import run

    from trials.run.engines import INSTANT_SESSIONS

    peak = _peak_sessions(monkeypatch)
    with FakeOpenAI(latency=latency) as srv:
        # the endpoint answers before the run: its scheduler knows its fastest reply from the start
        # (the min of 10 replies, so a loaded machine cannot make a loopback server look slow)
        warm = build_llm({"backend": "openai", "base_url": srv.base_url, "model": "fake", "max_retries": 0})
        for i in range(10):
            warm.chat([{"role": "user", "content": f"warm-up {i}"}])
        sched = warm._core.limit
        before = sched.admitted
        assert run(tmp_path / "r", *HELLO8, f"llm.base_url={srv.base_url}") == 0
        assert sched.admitted > before, "the run used the warmed endpoint's scheduler"
    if instant:
        # + 1: a session may start in the ramp-up tick before the run's first request is admitted
        assert peak[0] <= INSTANT_SESSIONS + 1, peak  # 8 without the cap
    else:
        assert peak[0] > INSTANT_SESSIONS + 1, peak
