"""Retries around one backend request, inside the endpoint's scheduler.

`call_with_retries` retries `TransientLLMError` (429, 5xx, timeouts, dropped connections) with
exponential backoff and full jitter, honouring a server's Retry-After; it returns how many retries
were needed and raises `RetriesExhausted` after `max_retries`. The scheduler slot
(`trials.llm.scheduler`) is held only while a request is in flight, never during a backoff sleep;
each outcome is reported to the scheduler (success grows its limit, 429/503 shrinks it).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from typing import Any, Callable, TypeVar

from trials.llm.base import RateLimited, RetriesExhausted, TransientLLMError
from trials.llm.scheduler import Scheduler

log = logging.getLogger(__name__)
T = TypeVar("T")

_LIMITS: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_LIMITS_LOCK = threading.Lock()


def endpoint_limit(endpoint: str, size: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore for one endpoint (e.g. base_url + model). Every LLM object talking
    to the same endpoint shares it, so agents and judges together stay under the provider's limit.
    It only throttles timing; it never changes what any call returns."""
    with _LIMITS_LOCK:
        sem = _LIMITS.get((endpoint, size))
        if sem is None:
            sem = _LIMITS[(endpoint, size)] = threading.BoundedSemaphore(size)
        return sem


def backoff_delay(attempt: int, base_s: float, max_s: float, retry_after: float | None, rng: random.Random) -> float:
    """Full-jitter exponential backoff; at least the server's Retry-After when it sent one."""
    delay = rng.uniform(0, min(max_s, base_s * 2 ** attempt))
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), max_s))
    return delay


#: Attempts a request gets for 429/503 when an adaptive scheduler paces the endpoint and the server
#: sent a Retry-After no longer than `max_s`: there such answers are the expected probe of the
#: provider's limit, not a failure of this request, so they do not use up `max_retries` (kept for
#: other transient errors); bounded all the same, since a 429 can also mean an exhausted quota.
#: A 429/503 without a valid Retry-After, or asking for more than `max_s`, counts against
#: `max_retries` like any other transient error.
OVERLOAD_ATTEMPTS = 20


def _too_long(e: BaseException, max_s: float) -> float | None:
    """The Retry-After of `e` when it asks for longer than `max_s` (we do not wait that long)."""
    ra = getattr(e, "retry_after", None)
    return float(ra) if isinstance(e, RateLimited) and ra is not None and float(ra) > max_s else None


def call_with_retries(fn: Callable[[], T], *, max_retries: int, limit: Any = None,
                      base_s: float = 0.5, max_s: float = 20.0, what: str = "LLM call",
                      sleep: Callable[[float], None] = time.sleep, tokens: int = 0) -> tuple[T, int]:
    """`limit`: a `Scheduler` (its slot is held per attempt), a semaphore, or None.
    `tokens`: the request's estimated tokens, for the scheduler's tpm bucket.
    A Retry-After longer than `max_s` is not waited for: the call retries after at most `max_s`
    and, after `max_retries` retries, fails with a message saying how long the endpoint asked to wait."""
    rng: random.Random | None = None  # made on the first failure (seeding one costs a syscall)
    attempt = overloads = 0
    while True:
        try:
            if isinstance(limit, Scheduler):
                with limit.slot(tokens) as slot:
                    try:
                        result = fn()
                    except RateLimited as e:  # 429, and 503 (the backends map it here)
                        slot.overload(getattr(e, "retry_after", None))
                        raise
                    used = (getattr(result, "tokens_in", 0), getattr(result, "tokens_out", 0))
                    slot.ok(sum(used) or None if None not in used else None)
                    return result, attempt
            with limit if limit is not None else contextlib.nullcontext():
                return fn(), attempt
        except TransientLLMError as e:
            too_long = _too_long(e, max_s)
            paced = (isinstance(e, RateLimited) and isinstance(limit, Scheduler)
                     and getattr(e, "retry_after", None) is not None and too_long is None)
            overloads += paced
            tries = attempt + 1
            if (overloads >= OVERLOAD_ATTEMPTS) if paced else (tries - overloads > max_retries):
                why = (f"the endpoint asks to wait {too_long:.0f} s (Retry-After), longer than "
                       f"llm.retry_max_s={max_s:g} s; wait and resume the run, lower llm.max_concurrency / "
                       f"llm.rpm, or raise llm.retry_max_s; " if too_long is not None else "")
                raise RetriesExhausted(f"{what} failed after {tries} attempts: {why}{e}",
                                       attempts=tries, last=e) from None
            rng = rng or random.Random()
            delay = backoff_delay(min(attempt, 6), base_s, max_s, getattr(e, "retry_after", None), rng)
            # a 429/503 under an adaptive scheduler is the expected probe of the endpoint's limit
            log.log(logging.INFO if paced else logging.WARNING,
                    "%s: %s; retry %d in %.2fs", what, e, tries, delay)
            sleep(delay)
            attempt += 1
