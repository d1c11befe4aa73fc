"""The `openai` backend: the official SDK against any OpenAI-compatible endpoint (OpenAI, Azure
OpenAI, Ollama, vLLM, llama.cpp server, LM Studio).

One SDK client per backend object, reused for every call (connections are pooled and kept alive).
The SDK's own retries are off: `trials.llm.retry` wraps every call. SDK errors are mapped to our
typed errors with messages that never contain the API key, and the SDK exception (which holds the
request and its headers) is not chained onto ours.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import threading
from typing import Any
from urllib.parse import urlparse

import openai

from trials.llm.base import (Completion, LLMError, LLMTimeout, MalformedResponse, PermanentLLMError, RateLimited,
                             Request, TransientLLMError)
from trials.llm.config import LLMConfig, LLMConfigError

#: SDK clients (connection pools) per backend, shared round-robin by the threads that call it.
CLIENT_SHARDS = 4
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "0.0.0.0", "::1", "host.docker.internal"}
_KEYLIKE = re.compile(r"(sk-|Bearer\s+)[A-Za-z0-9_\-\.]{6,}")


def is_local_url(url: str | None) -> bool:
    return bool(url) and (urlparse(url).hostname or "") in _LOCAL_HOSTS


class OpenAIBackend:
    name = "openai"
    supports_logprobs = True

    def __init__(self, cfg: LLMConfig):
        if not cfg.model:
            raise LLMConfigError("llm.model is required for the openai backend (e.g. llm.model=gpt-4o-mini; "
                                 "for Azure, the deployment name)")
        self.model = cfg.model
        self.supports_json_schema = cfg.json_schema
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", cfg.api_key_env):  # never echo it: it may be the key
            raise LLMConfigError("llm.api_key_env must be the NAME of an environment variable (e.g. "
                                 "OPENAI_API_KEY), not the key itself; export the key in that variable")
        key = os.environ.get(cfg.api_key_env)
        if not key:
            if not is_local_url(cfg.base_url):
                raise LLMConfigError(
                    f"environment variable {cfg.api_key_env} is not set: export your API key there "
                    f"(it is read from the environment and never written anywhere) or point "
                    f"llm.api_key_env at the variable that holds it")
            key = "not-needed-for-local-servers"
        self._secret = key
        self._endpoint = self._redact(cfg.base_url or "https://api.openai.com/v1")
        common = dict(api_key=key, timeout=cfg.timeout, max_retries=0)
        if cfg.api_version:
            if not cfg.base_url:
                raise LLMConfigError("llm.base_url is required with llm.api_version (Azure): set it to "
                                     "https://<resource>.openai.azure.com")
            self._make = lambda: openai.AzureOpenAI(azure_endpoint=cfg.base_url, api_version=cfg.api_version, **common)
        else:
            self._make = lambda: openai.OpenAI(base_url=cfg.base_url, **common)
        self._client = self._make()
        # Many sessions' threads share this backend; one SDK client (one httpx pool, one pool lock)
        # for all of them made that lock the top CPU item (py-spy --gil: 18% of the GIL time).
        # Each thread uses one of CLIENT_SHARDS clients (made on first use), assigned round-robin.
        self._shards = [self._client]
        self._shards_lock = threading.Lock()
        self._local = threading.local()
        self._next_shard = itertools.count()

    def _shard(self) -> Any:
        i = getattr(self._local, "shard", None)
        if i is None:
            i = self._local.shard = next(self._next_shard) % CLIENT_SHARDS
        if i >= len(self._shards):
            with self._shards_lock:
                while i >= len(self._shards):
                    self._shards.append(self._make())
        return self._shards[i]

    def complete(self, request: Request) -> Completion:
        kwargs: dict[str, Any] = dict(model=self.model, messages=[m.as_dict() for m in request.messages],
                                      temperature=request.temperature, max_tokens=request.max_tokens)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.schema is not None and self.supports_json_schema:
            name = re.sub(r"[^A-Za-z0-9_-]", "_", str(request.schema.get("title", "reply")))[:64] or "reply"
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": name, "schema": request.schema, "strict": False}}
        if request.score_digits:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = 10
        try:
            # the body goes in `extra_body` (sent as is): the SDK's per-call type transform of
            # `messages` costs ~1 ms of CPU per request (benchmarks/throughput.py), more than all our code
            model = kwargs.pop("model")
            resp = self._shard().chat.completions.create(model=model, messages=[], extra_body=kwargs)
            choice = resp.choices[0]
            text = choice.message.content or ""
        except Exception as e:  # noqa: BLE001 - every SDK failure becomes one of our typed errors
            error = self._map_error(e)
        else:
            error = None
        if error is not None:  # raised outside the handler: not even __context__ holds the SDK error
            raise error
        usage = resp.usage
        t_in = usage.prompt_tokens if usage else request.prompt_chars() // 4
        t_out = usage.completion_tokens if usage else len(text) // 4
        probs = digit_probs(choice.logprobs) if request.score_digits else None
        return Completion(text=text, tokens_in=t_in, tokens_out=t_out, digit_probs=probs)

    def _map_error(self, e: Exception) -> LLMError:
        where = f"{self._endpoint} model {self.model}"
        if isinstance(e, LLMError):
            return e
        if isinstance(e, openai.APITimeoutError):
            return LLMTimeout(f"{where}: request timed out")
        if isinstance(e, openai.APIConnectionError):
            return TransientLLMError(f"{where}: connection failed ({self._redact(str(e))})")
        if isinstance(e, openai.APIStatusError):
            msg = f"{where}: HTTP {e.status_code}: {self._redact(_error_text(e))}"
            if e.status_code in (429, 503):  # rate limit / overload: the scheduler backs off
                err = RateLimited(msg)
                err.retry_after = _retry_after(e)
                return err
            if e.status_code >= 500 or e.status_code in (408, 409):
                return TransientLLMError(msg)
            if e.status_code in (401, 403):
                return PermanentLLMError(f"{msg} (check the key in the environment variable, and llm.base_url)")
            return PermanentLLMError(msg)
        # a 200 whose body is not a completion (invalid JSON, no choices, no message): retried
        return MalformedResponse(f"{where}: malformed response ({type(e).__name__}: "
                                 f"{self._redact(str(e))[:200]})")

    def _redact(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return _KEYLIKE.sub(r"\1***", text)

    def close(self) -> None:
        for client in self._shards:
            client.close()


def _error_text(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(getattr(e, "message", "") or type(e).__name__)[:300]


def _retry_after(e: Any) -> float | None:
    try:
        value = e.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None


def digit_probs(logprobs: Any) -> dict[int, float] | None:
    """Probabilities of 0-9 at the first reply token that is a digit, from its top_logprobs.
    Tokens like ' 7' and '7' are pooled. None when the reply has no digit or no logprobs."""
    content = getattr(logprobs, "content", None) or []
    for tok in content:
        if tok.token.strip().isdigit() and len(tok.token.strip()) == 1:
            probs: dict[int, float] = {}
            for alt in tok.top_logprobs or []:
                s = alt.token.strip()
                if len(s) == 1 and s.isdigit():
                    probs[int(s)] = probs.get(int(s), 0.0) + math.exp(alt.logprob)
            return probs or {int(tok.token.strip()): math.exp(tok.logprob)}
    return None
