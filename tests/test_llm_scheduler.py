"""The per-endpoint scheduler: AIMD concurrency on 429 storms, Retry-After, token buckets, and its
use by `LLM` against a fake server with a provider-style concurrency limit."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fake_openai import FakeOpenAI
from trials.llm import build_llm
import math

from trials.llm.scheduler import ADAPTIVE_START, BACKOFF, Scheduler, TokenBucket, endpoint_scheduler


def _round(s: Scheduler, n: int, outcome: str, retry_after: float | None = None) -> None:
    """n requests in flight at once, then all finish with `outcome`."""
    with contextlib.ExitStack() as stack:
        slots = [stack.enter_context(s.slot()) for _ in range(n)]
        for slot in slots:
            slot.ok() if outcome == "ok" else slot.overload(retry_after)


def test_adaptive_limit_grows_while_full_shrinks_once_per_round_trip_and_recovers():
    s = Scheduler()
    assert s.limit == ADAPTIVE_START
    _round(s, ADAPTIVE_START, "ok")  # a full window of successes: slow start adds one per success
    grown = s.limit
    assert grown > ADAPTIVE_START
    _round(s, 20, "overload")  # a storm: every request of one round trip (20 in flight) gets 429
    # the first overload ends slow start: BACKOFF x the refused level (20), not x the limit (32)
    once = math.floor(20 * BACKOFF)
    assert s.limit == once, "a storm of one round trip shrinks the limit once, not once per 429"
    assert s.snapshot().overloads == 20
    refused = int(s.limit)
    _round(s, refused, "overload")  # the next round trip still overloaded: shrinks again, gently
    assert s.limit == math.floor(once * BACKOFF)
    _round(s, int(s.limit), "ok")  # recovery: up to one below the refused level within a round trip
    assert refused - 1 <= s.limit < refused
    for _ in range(8):  # around the refused level: one slot per PROBE round trips
        _round(s, int(s.limit), "ok")
    assert refused - 0.5 < s.limit < refused + 0.5
    for _ in range(40):  # then above it: congestion avoidance again (the provider may have grown)
        _round(s, int(s.limit), "ok")
    assert refused + 6 <= s.limit <= refused + 20


def test_no_growth_without_evidence_and_cap_respected():
    s = Scheduler()
    for _ in range(50):
        _round(s, 1, "ok")  # one request at a time never tests the limit
    assert s.limit == ADAPTIVE_START
    fixed = Scheduler(max_concurrency=4)
    for _ in range(10):
        _round(fixed, 4, "ok")
    assert fixed.limit == 4, "llm.max_concurrency is a hard cap"
    _round(fixed, 4, "overload")
    assert fixed.limit == 3, "even a fixed cap backs off on 429"


def test_leaving_slow_start_cuts_from_the_refused_level_but_at_most_halves():
    def grown() -> Scheduler:
        s = Scheduler()
        while s.limit < 64:
            _round(s, int(s.limit), "ok")  # slow start
        assert 64 <= s.limit < 120
        return s

    s = grown()
    _round(s, 60, "overload")  # refused at 60 in flight: the provider's cap is below 60
    assert s.limit == math.floor(60 * BACKOFF)
    s = grown()
    before = s.limit
    _round(s, 5, "overload")  # refused at 5 in flight: at most halved all the same (TCP's cut)
    assert s.limit == math.floor(before / 2 * BACKOFF)


def test_in_flight_never_exceeds_limit():
    s = Scheduler(max_concurrency=3)
    seen, lock, active = [], threading.Lock(), [0]

    def work(_):
        with s.slot() as slot:
            with lock:
                active[0] += 1
                seen.append(active[0])
            time.sleep(0.01)
            with lock:
                active[0] -= 1
            slot.ok()

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(work, range(60)))
    assert max(seen) == 3 and s.snapshot().peak_in_flight == 3


def test_retry_after_pauses_the_whole_endpoint_when_the_overload_persists():
    s = Scheduler(max_concurrency=8)
    _round(s, 1, "overload", retry_after=0.3)  # a probe above the provider's cap: the limit shrinks ...
    assert s.limit == 3
    t0 = time.monotonic()
    with s.slot() as slot:  # ... but the other requests go on (the 429'd one waits in its retry)
        slot.ok()
    assert time.monotonic() - t0 < 0.25
    _round(s, 1, "ok")  # a success that does not fill the window: no growth
    assert s.limit == 3
    _round(s, 1, "overload", retry_after=0.3)  # admitted after the cut, limit not grown: it persists
    assert s.limit == 2
    t0 = time.monotonic()
    with s.slot() as slot:  # another request, not the one that got the 429
        slot.ok()
    assert time.monotonic() - t0 >= 0.29


def test_an_overload_after_the_limit_grew_again_is_a_new_episode_without_pause():
    s = Scheduler(max_concurrency=64)
    _round(s, 64, "overload", retry_after=5.0)  # -> 32, no pause
    for _ in range(3):
        _round(s, int(s.limit), "ok")  # +1 per full round trip
    assert s.limit >= 33
    _round(s, 1, "overload", retry_after=5.0)  # a later probe: shrinks, still no pause
    assert s.snapshot().overloads == 65
    t0 = time.monotonic()
    with s.slot() as slot:
        slot.ok()
    assert time.monotonic() - t0 < 1.0


def test_token_buckets_hold_the_long_run_rate():
    now = [0.0]
    bucket = TokenBucket(600, clock=lambda: now[0])  # 10 per second, burst 5 s = 50
    assert bucket.capacity == 50
    bucket.take(51)
    assert bucket.wait_s() == pytest.approx(0.1, abs=1e-6)
    now[0] = 0.1
    bucket.take(100)  # a request bigger than the burst goes out and leaves a debt
    assert bucket.wait_s() == pytest.approx(10.0, abs=1e-6)
    now[0] = 10.2
    assert bucket.wait_s() == 0.0
    with pytest.raises(ValueError, match="> 0"):
        TokenBucket(0, clock=time.monotonic)


def test_rpm_limits_requests_per_second():
    s = Scheduler(rpm=1200)  # 20/s, burst 100
    t0 = time.monotonic()
    for _ in range(110):
        with s.slot() as slot:
            slot.ok()
    elapsed = time.monotonic() - t0
    assert 0.4 <= elapsed < 2.0  # 100 from the burst, 10 more at 20/s = ~0.5 s


def _openai(srv: FakeOpenAI, **over):
    return build_llm({"backend": "openai", "base_url": srv.base_url, "model": f"fake-{id(srv)}",
                      "max_retries": 8, "retry_base_s": 0.01, "retry_max_s": 0.2, **over})


def test_429_storm_against_a_provider_limit_shrinks_then_every_call_succeeds():
    """A server that allows 6 in flight; 40 callers; adaptive start 16 -> 429s -> the limit
    settles near the provider's and every call still succeeds (retries recorded)."""
    with FakeOpenAI(latency=0.03, capacity=6, retry_after=0.02) as srv:
        llm = _openai(srv)
        sched = llm._core.limit

        def call(i):
            return llm.chat([{"role": "user", "content": f"hi {i}"}], purpose="action").text

        with ThreadPoolExecutor(40) as pool:
            texts = list(pool.map(call, range(200)))
        snap = sched.snapshot()
        assert len(texts) == 200 and all(t.startswith("echo: hi") for t in texts)
        assert srv.rejected > 0 and snap.overloads == srv.rejected
        assert snap.limit < ADAPTIVE_START, "the limit shrank from its start towards the provider's"
        assert llm.recorder.to_frame()["retries"].sum() == srv.rejected
        # after the storm, most requests were admitted without a 429
        assert srv.rejected < 0.5 * srv.requests


def test_503_is_an_overload_too():
    with FakeOpenAI() as srv:
        llm = _openai(srv, max_concurrency=4)
        srv.queue("503")
        assert llm.chat([{"role": "user", "content": "x"}]).text == "echo: x"
        # 4 -> 1 by the 503 refused at 1 in flight (0.9 x max(1, 4 / 2), floored); the retry
        # then fills the window: +1/limit
        assert llm._core.limit.snapshot().overloads == 1 and llm._core.limit.limit == 2.0


def test_one_scheduler_per_endpoint_shared_by_agents_and_judges():
    a = endpoint_scheduler("openai|http://x|m", None)
    assert endpoint_scheduler("openai|http://x|m", None) is a
    assert endpoint_scheduler("openai|http://y|m", None) is not a


def test_paced_429s_do_not_use_up_max_retries_but_are_bounded():
    from trials.llm import RetriesExhausted
    from trials.llm.retry import OVERLOAD_ATTEMPTS

    with FakeOpenAI(retry_after=0.01) as srv:
        llm = _openai(srv, max_retries=2, retry_max_s=0.02)
        srv.queue(*["429"] * 6)  # more 429s than max_retries: the scheduler's probe, not a failure
        assert llm.chat([{"role": "user", "content": "x"}]).text == "echo: x"
        assert llm.recorder.to_frame()["retries"].tolist() == [6]
        srv.mode = "429"  # a 429 that never ends (e.g. an exhausted quota) still stops
        with pytest.raises(RetriesExhausted, match=f"after {OVERLOAD_ATTEMPTS} attempts"):
            llm.chat([{"role": "user", "content": "y"}])
        assert srv.requests == 7 + OVERLOAD_ATTEMPTS
