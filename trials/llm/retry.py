"""Retries and per-endpoint concurrency limits around one backend request.

`call_with_retries` retries `TransientLLMError` (429, 5xx, timeouts, dropped connections) with
exponential backoff and full jitter, honouring a server's Retry-After; it returns how many retries
were needed and raises `RetriesExhausted` after `max_retries`. The concurrency slot is held only
while a request is in flight, never during a backoff sleep.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from typing import Callable, TypeVar

from trials.llm.base import RetriesExhausted, TransientLLMError

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


def call_with_retries(fn: Callable[[], T], *, max_retries: int, limit: threading.BoundedSemaphore | None,
                      base_s: float = 0.5, max_s: float = 20.0, what: str = "LLM call",
                      sleep: Callable[[float], None] = time.sleep) -> tuple[T, int]:
    rng = random.Random()
    for attempt in range(max_retries + 1):
        try:
            with limit if limit is not None else contextlib.nullcontext():
                return fn(), attempt
        except TransientLLMError as e:
            if attempt >= max_retries:
                raise RetriesExhausted(f"{what} failed after {attempt + 1} attempts: {e}",
                                       attempts=attempt + 1, last=e) from None
            delay = backoff_delay(attempt, base_s, max_s, getattr(e, "retry_after", None), rng)
            log.warning("%s: %s; retry %d/%d in %.2fs", what, e, attempt + 1, max_retries, delay)
            sleep(delay)
    raise AssertionError("unreachable")
