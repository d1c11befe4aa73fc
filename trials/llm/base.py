"""The contract of the LLM layer: requests, replies, usage, errors and the backend protocol.

Every caller (agents, judges, extractors, the population factory) talks to an `LLM`
(`trials.llm.client.LLM`) through `chat(...)`; backends only implement `complete(Request)`.
Cache, retries, concurrency limits, structured-output repair and usage recording live in the
client around the backend, never inside a backend.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence, get_args

Role = Literal["system", "user", "assistant"]

#: What a call is for; recorded in `llm_calls.parquet` and used for per-purpose summaries.
PURPOSES = ("action", "judge", "correction", "extract", "factory", "story", "intervention", "other")

#: The reply format the caller expects. Real backends ignore it (it is not part of the cache key);
#: the scripted backend uses it to answer in the right shape.
Protocol_ = Literal["text", "action", "score", "json"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol_)


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def as_messages(messages: Sequence[Message | dict[str, str] | tuple[str, str]]) -> tuple[Message, ...]:
    """Normalise the accepted message spellings into a tuple of `Message`."""
    out = []
    for m in messages:
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, dict):
            out.append(Message(m["role"], m["content"]))
        else:
            role, content = m
            out.append(Message(role, content))
    return tuple(out)


@dataclass(frozen=True)
class Request:
    """One call as the backend sees it. Everything here except `purpose` and `protocol`
    can change the output, so everything else is part of the cache key."""

    messages: tuple[Message, ...]
    temperature: float = 0.7
    max_tokens: int = 256
    seed: int | None = None
    schema: dict[str, Any] | None = None  # a JSON schema when structured output was asked
    score_digits: bool = False  # ask for log-probabilities of the digits 0-9 (judge calls)
    stop: tuple[str, ...] = ()
    purpose: str = "other"
    protocol: Protocol_ = "text"

    def key_material(self) -> dict[str, Any]:
        return {
            "messages": [m.as_dict() for m in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "schema": self.schema,
            "score_digits": self.score_digits,
            "stop": list(self.stop),
        }

    def prompt_chars(self) -> int:
        return sum(len(m.content) for m in self.messages)


def cache_key(backend: str, model: str, request: Request) -> str:
    """Content address of a call: backend, model, messages, parameters and seed."""
    material = {"backend": backend, "model": model, **request.key_material()}
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def add_tokens(a: int | None, b: int | None) -> int | None:
    """A sum of token counts where None is unknown: unknown if either is, never the known part."""
    return None if a is None or b is None else a + b


@dataclass
class Completion:
    """What a backend returns for one request (before parsing, caching and accounting)."""

    text: str
    tokens_in: int | None  # None: the endpoint did not say (no `usage` in its reply)
    tokens_out: int | None
    #: probability of each digit 0-9 as the first scored token, when the backend has logprobs
    digit_probs: dict[int, float] | None = None
    #: already-parsed JSON when the backend enforced the schema itself (optional)
    data: Any = None


@dataclass(frozen=True)
class Usage:
    purpose: str
    backend: str
    model: str
    tokens_in: int | None  # None: unknown (the endpoint reported no usage)
    tokens_out: int | None
    latency_s: float
    cached: bool
    retries: int
    cost_usd: float  # NaN when the model has no price in the table, or its tokens are unknown
    prompt_chars: int = 0
    #: attempts that timed out or got a malformed 2xx reply: the provider may have billed them
    #: without telling us the tokens (not in tokens_in/out nor cost_usd)
    unknown_billing_attempts: int = 0


@dataclass
class Reply:
    text: str
    usage: Usage
    data: Any = None  # parsed structured output when a schema was asked
    #: probability-weighted 0-9 score (sum_d d * p(d) / sum_d p(d)) when log-probabilities exist
    score: float | None = None
    digit_probs: dict[int, float] | None = field(default=None, repr=False)


class Backend(Protocol):
    """A provider. Implementations: `openai` (any OpenAI-compatible URL), `local` (llama.cpp
    in-process), `scripted` (deterministic test double, not a language model)."""

    name: str
    model: str
    supports_json_schema: bool
    supports_logprobs: bool

    def complete(self, request: Request) -> Completion: ...


# ----------------------------------------------------------------------------------- errors
class LLMError(RuntimeError):
    """Base class of every error the LLM layer raises. Messages never contain API keys."""


class TransientLLMError(LLMError):
    """Worth retrying: rate limit (429), server error (5xx), timeout, dropped connection."""

    #: seconds the server asked us to wait (Retry-After), when it said
    retry_after: float | None = None


class RateLimited(TransientLLMError):
    pass


class LLMTimeout(TransientLLMError):
    pass


class MalformedResponse(TransientLLMError):
    """HTTP 200 whose body is not a completion (invalid JSON, no choices): a server or proxy
    glitch, retried like a 5xx (issue #11)."""


class PermanentLLMError(LLMError):
    """Not worth retrying: bad request, authentication, unknown model."""


class RetriesExhausted(LLMError):
    def __init__(self, message: str, attempts: int, last: Exception | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.last = last


class StructuredOutputError(LLMError):
    """The reply could not be parsed into the asked schema, even after one repair attempt."""

    def __init__(self, message: str, text: str):
        super().__init__(f"{message}; the model replied: {text[:300]!r}")
        self.text = text


class CallsStopped(BaseException):
    """The run is stopping (Ctrl-C, SIGTERM): no new call starts. A BaseException, like
    KeyboardInterrupt, so no scenario's `except Exception` turns it into a missing value and lets
    the session go on calling (trials.llm.client.stop_calls)."""


class CacheMiss(LLMError):
    """cache.mode=replay and this call is not in the cache."""
