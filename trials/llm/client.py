"""`LLM`: the one interface every caller uses. It wraps a backend with the cache, retries, the
per-endpoint concurrency limit, structured-output parsing/repair, score weighting and usage
recording. `build_llm` makes one from the Hydra `llm` config.

    llm = build_llm({"backend": "scripted"}, cache={"path": "c.sqlite", "mode": "read_write"})
    view = llm.bind(seed=replicate_seed, recorder=CallRecorder())
    reply = view.chat([{"role": "user", "content": "Hi"}], purpose="action", protocol="action")
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from trials.llm.base import (PROTOCOLS, PURPOSES, Backend, CallsStopped, Completion, LLMError, LLMTimeout,
                             MalformedResponse, Message, Reply,
                             Request, RetriesExhausted, StructuredOutputError, Usage, add_tokens, as_messages, cache_key)
from trials.llm.cache import ResponseCache, build_cache
from trials.llm.config import LLMConfig, _plain, parse_llm_config
from trials.llm.retry import call_with_retries
from trials.llm.scheduler import Scheduler, endpoint_scheduler
from trials.llm.schema_tools import to_json_schema
from trials.llm.structured import ParseFailure, parse_structured, repair_messages, schema_instruction
from trials.llm.usage import FREE_BACKENDS, CallRecorder, check_prices, cost_usd, load_prices

_KEEP: Any = object()

#: Set while a run stops (trials.run.experiment on Ctrl-C / SIGTERM): every new call of this
#: process raises CallsStopped, so running sessions end at their next call instead of spending on.
_STOPPED = threading.Event()


def stop_calls() -> None:
    _STOPPED.set()


def allow_calls() -> None:
    _STOPPED.clear()


def mix_seed(bound: int | None, call: int | None) -> int | None:
    """Combine the bound (replicate) seed with a per-call salt into one 31-bit seed."""
    if call is None:
        return bound
    if bound is None:
        return call
    digest = hashlib.sha256(f"{bound}/{call}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def weighted_score(digit_probs: Mapping[int, float] | None) -> float | None:
    """sum_d d * p(d) / sum_d p(d) over the digits 0-9; None without probabilities."""
    if not digit_probs:
        return None
    total = sum(p for d, p in digit_probs.items() if 0 <= d <= 9)
    if total <= 0:
        return None
    return sum(d * p for d, p in digit_probs.items() if 0 <= d <= 9) / total


@dataclasses.dataclass
class _Core:
    """What every view of one LLM shares: backend, cache, endpoint limit, config and prices."""

    backend: Backend
    config: LLMConfig
    cache: ResponseCache | None
    prices: dict[str, dict[str, float]]
    limit: Scheduler | None  # the endpoint's scheduler (shared by every LLM of this process)
    injected: bool = False  # the backend was passed in by the caller, not built from config

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the recipe, not the resources: a worker process (joblib/loky) rebuilds its own
        backend, HTTP pool, SQLite connection and model from config; the API key is read again
        from the worker's environment and never travels in the pickle."""
        backend = self.backend if self.injected else None
        return (_rebuild, (self.config.model_dump(), self.cache, self.prices, backend))


def _rebuild(cfg: dict[str, Any], cache: ResponseCache | None, prices: dict[str, Any],
             backend: Backend | None) -> "_Core":
    return build_llm(cfg, cache=cache, prices=prices, backend=backend)._core


class LLM:
    def __init__(self, core: _Core, seed: int | None = None, recorder: CallRecorder | None = None):
        self._core = core
        self.seed = seed
        self.recorder = recorder if recorder is not None else CallRecorder()

    @property
    def backend(self) -> str:
        return self._core.backend.name

    @property
    def model(self) -> str:
        return self._core.backend.model

    @property
    def config(self) -> LLMConfig:
        return self._core.config

    def typical_latency_s(self) -> float | None:
        """The endpoint's median round trip over its last few successful requests (seconds;
        `Scheduler.typical_s`). None before its first answer (cache hits do not count)."""
        return self._core.limit.typical_s() if self._core.limit is not None else None

    def bind(self, seed: int | None = _KEEP, recorder: CallRecorder | None = _KEEP) -> "LLM":
        """A view on the same backend/cache with its own base seed and recorder (one per job)."""
        return LLM(self._core, self.seed if seed is _KEEP else seed,
                   self.recorder if recorder is _KEEP else recorder)

    def chat(self, messages: Sequence[Message | dict[str, str]], *, purpose: str = "action",
             protocol: str = "text", schema: Any = None, temperature: float | None = None,
             max_tokens: int | None = None, seed: int | None = None, score_digits: bool = False,
             stop: Sequence[str] = ()) -> Reply:
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        cfg, backend = self._core.config, self._core.backend
        msgs = as_messages(messages)
        schema_dict = to_json_schema(schema) if schema is not None else None
        if schema_dict is not None:
            protocol = "json"
            if not backend.supports_json_schema:
                msgs = (*msgs, Message("user", schema_instruction(schema_dict)))
        request = Request(messages=msgs, temperature=cfg.temperature if temperature is None else temperature,
                          max_tokens=cfg.max_tokens if max_tokens is None else max_tokens,
                          seed=mix_seed(self.seed, seed), schema=schema_dict, score_digits=score_digits,
                          stop=tuple(stop), purpose=purpose, protocol=protocol)  # type: ignore[arg-type]
        completion, usage = self._request(request)
        data = None
        if schema_dict is not None:
            try:
                data = parse_structured(completion.text, schema, completion.data)
            except ParseFailure as first:
                fix = dataclasses.replace(request, messages=repair_messages(
                    request.messages, completion.text, str(first), schema_dict))
                completion, usage2 = self._request(fix)
                usage = _add(usage, usage2)
                try:
                    data = parse_structured(completion.text, schema, completion.data)
                except ParseFailure as second:
                    raise StructuredOutputError(
                        f"{purpose} call: reply did not match the schema after one repair ({second})",
                        completion.text) from None
        return Reply(text=completion.text, usage=usage, data=data,
                     score=weighted_score(completion.digit_probs), digit_probs=completion.digit_probs)

    def _request(self, request: Request) -> tuple[Completion, Usage]:
        """One logical request: cache lookup, then the backend with retries; one recorder row."""
        if _STOPPED.is_set() or self.recorder.stopped:
            raise CallsStopped("the run is stopping: no new LLM call")
        core = self._core
        backend = core.backend
        t0 = time.perf_counter()
        key = cache_key(backend.name, backend.model, request) if core.cache is not None else ""
        completion = core.cache.get(key, request) if core.cache is not None else None
        cached, retries, call = completion is not None, 0, None
        maybe_billed = [0]  # attempts that timed out or got a malformed 2xx reply (may have been billed)

        def attempt() -> Completion:
            try:
                return backend.complete(request)
            except (LLMTimeout, MalformedResponse):
                maybe_billed[0] += 1
                raise

        if completion is None:  # write-ahead: a kill mid-request still leaves a trace of this call
            call = self.recorder.start(request.purpose, backend.name, backend.model, request.prompt_chars())
            try:
                completion, retries = call_with_retries(
                    attempt, max_retries=core.config.max_retries, limit=core.limit,
                    base_s=core.config.retry_base_s, max_s=core.config.retry_max_s,
                    what=f"{backend.name}/{backend.model} {request.purpose} call",
                    tokens=request.prompt_chars() // 4 + request.max_tokens)
            except LLMError as e:
                tries = e.attempts - 1 if isinstance(e, RetriesExhausted) else 0
                self.recorder.record(self._usage(request, None, time.perf_counter() - t0, False, tries,
                                                 maybe_billed[0]), error=type(e).__name__, call=call)
                raise
            except BaseException as e:  # Ctrl-C mid-request: it may have been sent (and billed)
                usage = dataclasses.replace(  # its tokens are unknown, as the calls journal says too
                    self._usage(request, None, time.perf_counter() - t0, False, 0, maybe_billed[0]),
                    tokens_in=None, tokens_out=None)
                if core.backend.name not in FREE_BACKENDS:
                    usage = dataclasses.replace(usage, cost_usd=math.nan)
                self.recorder.record(usage, error=type(e).__name__, call=call)
                raise
            if core.cache is not None:
                core.cache.put(key, completion)
        usage = self._usage(request, completion, time.perf_counter() - t0, cached, retries, maybe_billed[0])
        self.recorder.record(usage, call=call)
        return completion, usage

    def _usage(self, request: Request, c: Completion | None, latency: float, cached: bool, retries: int,
               maybe_billed: int = 0) -> Usage:
        core = self._core
        # a failed call: no reply billed as far as we know (attempts that may have been: `maybe_billed`)
        t_in, t_out = (c.tokens_in, c.tokens_out) if c is not None else (0, 0)
        # a cache hit costs nothing: no request was billed
        cost = 0.0 if cached else cost_usd(core.backend.name, core.backend.model, t_in, t_out,
                                           core.prices, core.config.price)
        return Usage(purpose=request.purpose, backend=core.backend.name, model=core.backend.model,
                     tokens_in=t_in, tokens_out=t_out, latency_s=latency, cached=cached, retries=retries,
                     cost_usd=cost, prompt_chars=request.prompt_chars(), unknown_billing_attempts=maybe_billed)


def _add(a: Usage, b: Usage) -> Usage:
    """Usage of a chat() that needed a repair request: both requests summed (unknown if either is)."""
    return dataclasses.replace(a, tokens_in=add_tokens(a.tokens_in, b.tokens_in),
                               tokens_out=add_tokens(a.tokens_out, b.tokens_out),
                               latency_s=a.latency_s + b.latency_s, cached=a.cached and b.cached,
                               retries=a.retries + b.retries, cost_usd=a.cost_usd + b.cost_usd,
                               unknown_billing_attempts=a.unknown_billing_attempts + b.unknown_billing_attempts)


def make_backend(cfg: LLMConfig) -> Backend:
    if cfg.backend == "scripted":
        from trials.llm.scripted import ScriptedBackend

        return ScriptedBackend(rules=cfg.rules, model=cfg.model or "scripted")
    if cfg.backend == "openai":
        from trials.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(cfg)
    from trials.llm.local_backend import LocalBackend

    return LocalBackend(cfg)


def build_llm(llm_cfg: Any, cache: Mapping[str, Any] | ResponseCache | None = None,
              prices: Mapping[str, Any] | str | Path | None = None, *,
              backend: Backend | None = None) -> LLM:
    """An LLM from the `llm` config (Mapping or DictConfig). `cache`: {path, mode} or None (off).
    `prices`: a {model: {input_per_1m, output_per_1m}} mapping, a YAML path, or None for
    conf/prices/default.yaml. `backend` lets tests inject an already-built backend instance."""
    cfg = parse_llm_config(llm_cfg)
    be = backend if backend is not None else make_backend(cfg)
    the_cache = cache if isinstance(cache, ResponseCache) else build_cache(cache)
    if prices is None or isinstance(prices, (str, Path)):
        table = load_prices(prices)
    else:
        table = check_prices(_plain(prices))
    endpoint = f"{be.name}|{cfg.base_url or ''}|{be.model}"
    limit = endpoint_scheduler(endpoint, cfg.max_concurrency, cfg.rpm, cfg.tpm, cfg.retry_max_s)
    return LLM(_Core(backend=be, config=cfg, cache=the_cache, prices=table, limit=limit,
                     injected=backend is not None))
