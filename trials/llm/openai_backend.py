"""The `openai` backend: the chat-completions call against any OpenAI-compatible endpoint (OpenAI,
Azure OpenAI, Ollama, vLLM, llama.cpp server, LM Studio), over libcurl (`pycurl`).

Why not the `openai` SDK, nor urllib3: we make one kind of call (POST .../chat/completions, JSON in,
JSON out). The SDK's request/response machinery (httpx, option models, typed response
construction) cost ~1.4 ms of CPU per request; a `urllib3` pool ~0.38 ms, a third of it in
`http.client`'s e-mail header parser; libcurl, whose transfer runs in C without the GIL, 0.15 ms
(benchmarks/throughput.py; issue #14: with hundreds of requests in flight the driver is
CPU-bound). What the SDK did for us is kept here, explicitly:
- URL and auth: `{base_url}/chat/completions` with `Authorization: Bearer <key>` (base_url
  default: $OPENAI_BASE_URL, else https://api.openai.com/v1; $OPENAI_ORG_ID / $OPENAI_PROJECT_ID
  sent as OpenAI-Organization / OpenAI-Project); Azure (`llm.api_version` set):
  `{base_url}/openai/deployments/{model}/chat/completions?api-version=...` with an `api-key` header.
- connections kept alive and reused: a pool of curl handles per backend (each keeps its
  connection), thread-safe; no retries and no redirects in the transport (`trials.llm.retry`
  wraps every call); proxies from the environment (HTTPS_PROXY/HTTP_PROXY/NO_PROXY, read by
  Python's `urllib.request` rules, http and socks), certificates from `certifi` (or $SSL_CERT_FILE).
- timeout: `llm.timeout` seconds for the whole request (connecting, sending, the server's work and
  the reply); a non-streamed completion sends nothing until it is done.
- typed errors: 429/503 -> RateLimited (with Retry-After / retry-after-ms), other 5xx/408/409 and
  connection failures -> TransientLLMError, timeouts -> LLMTimeout, 401/403/other 4xx and an
  untrusted server certificate (or a broken CA bundle) -> PermanentLLMError, a 2xx whose body is not a completion -> MalformedResponse. Messages never
  contain the API key, and no transport exception is chained onto ours (it may hold headers).
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import os
import re
import threading
import time
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import pycurl

from trials.llm.base import (Completion, LLMError, LLMTimeout, MalformedResponse, PermanentLLMError, RateLimited,
                             Request, TransientLLMError)
from trials.llm.config import LLMConfig, LLMConfigError
from trials.llm.scheduler import ADAPTIVE_MAX
from trials.secrets import redact

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "0.0.0.0", "::1", "host.docker.internal"}
DEFAULT_BASE_URL = "https://api.openai.com/v1"


def is_local_url(url: str | None) -> bool:
    return bool(url) and (urlparse(url).hostname or "") in _LOCAL_HOSTS


#: Placeholders shipped in conf/llm/*.yaml (e.g. azure.yaml's https://YOUR-RESOURCE.openai.azure.com).
_PLACEHOLDER = re.compile(r"your[-_]resource|<[^>]*>", re.IGNORECASE)


def key_problem(key: str, env: str = "OPENAI_API_KEY") -> str | None:
    """Why the key in `env` cannot be sent (it would break the header and be echoed in the
    error, or not encode as a header at all), or None. Never contains the key."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in key):
        return (f"{env} contains a newline or carriage return (or other control/whitespace characters): "
                f"remove it (e.g. export {env}=\"$(printf %s \"${env}\" | tr -d '[:space:]')\")")
    if not key.isascii():  # an HTTP header value is ASCII: it could not be sent at all
        return (f"{env} contains non-ASCII characters (a letter such as ü or й, a typographic quote or "
                f"dash from a copied text): API keys and IDs are plain ASCII; copy it again from your "
                f"provider's page and export {env}=<the value>")
    return None


#: environment variables sent as request headers (not with Azure): checked like the key
HEADER_ENVS = (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project"))


def header_problem() -> str | None:
    """Why $OPENAI_ORG_ID / $OPENAI_PROJECT_ID cannot be sent as a header (a newline, carriage
    return, space or non-ASCII character would break the request at the first call), or None.
    Never the value."""
    for env, _ in HEADER_ENVS:
        problem = key_problem(os.environ.get(env) or "", env)
        if problem:
            return problem
    return None


def name_looks_like_key(name: str) -> bool:
    """An api_key_env value that is a valid variable name but looks like a key itself (a 32-hex
    Azure key, a long mixed string without underscores): never echoed."""
    if len(name) >= 16 and re.fullmatch(r"[0-9a-fA-F]+", name) and any(c.isdigit() for c in name):
        return True
    return len(name) >= 20 and "_" not in name and any(c.isdigit() for c in name)


def url_problem(url: str | None, where: str = "llm.base_url", key_env: str | None = None) -> str | None:
    """Why `url` cannot be used as the endpoint (`where` names the setting it came from; `key_env`
    the api_key_env setting in effect, by default the one beside `where`), or None.
    Never echoes a password or key."""
    if not url:
        return None
    parts = urlparse(str(url))
    shown = redact(str(url)[:80])
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return (f"{where} contains credentials (user:password@); remove them and put the key in the "
                f"environment variable {key_env or _beside(where, 'api_key_env')} names (it is never written "
                f"anywhere)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (f"{where}={shown!r} is not an http(s) URL; fix: e.g. https://api.openai.com/v1 "
                f"or http://127.0.0.1:8000/v1")
    if _PLACEHOLDER.search(str(url)):
        return (f"{where}={shown!r} is the placeholder of the shipped config; set it to your endpoint, e.g. "
                f"{where}=https://<your resource name>.openai.azure.com for Azure")
    return None


def _beside(where: str, key: str) -> str:
    """`judge.base_url` -> `judge.<key>` (a setting of the same model); `llm.<key>` for an
    environment variable such as $OPENAI_BASE_URL."""
    return f"{where.rpartition('.')[0]}.{key}" if where.endswith(".base_url") else f"llm.{key}"


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        ours = version("persona-trials")
    except Exception:  # noqa: BLE001 - not installed (a source checkout): the agent string is cosmetic
        ours = "dev"
    return f"persona-trials/{ours} {pycurl.version.split()[0]}"


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
        env_url = None if cfg.api_version else os.environ.get("OPENAI_BASE_URL")
        problem = url_problem(cfg.base_url or env_url, "llm.base_url" if cfg.base_url else "$OPENAI_BASE_URL")
        if problem:
            raise LLMConfigError(problem)
        key = os.environ.get(cfg.api_key_env)
        if key and key_problem(key):
            raise LLMConfigError(key_problem(key, cfg.api_key_env))
        if not key:
            if not is_local_url(cfg.base_url or env_url):
                shown = "<hidden>" if name_looks_like_key(cfg.api_key_env) else cfg.api_key_env
                raise LLMConfigError(
                    f"environment variable {shown} is not set: export your API key there "
                    f"(it is read from the environment and never written anywhere) or point "
                    f"llm.api_key_env at the variable that holds it")
            key = "not-needed-for-local-servers"
        self._secret = key
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Accept-Encoding": "gzip, deflate", "User-Agent": _user_agent()}
        if cfg.api_version:  # Azure OpenAI: the deployment is in the path, the key in `api-key`
            if not cfg.base_url:
                raise LLMConfigError("llm.base_url is required with llm.api_version (Azure): set it to "
                                     "https://<resource>.openai.azure.com")
            base = cfg.base_url.rstrip("/")
            url = (f"{base}/openai/deployments/{quote(cfg.model, safe='')}/chat/completions?"
                   + urlencode({"api-version": cfg.api_version}))
            headers["api-key"] = key
        else:
            base = (cfg.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
            url = f"{base}/chat/completions"
            headers["Authorization"] = f"Bearer {key}"
            if header_problem():
                raise LLMConfigError(header_problem())
            for env, header in HEADER_ENVS:
                if os.environ.get(env):
                    headers[header] = os.environ[env]
        parts = urlparse(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LLMConfigError(f"llm.base_url must be an http(s) URL such as https://api.openai.com/v1, "
                                 f"got {self._redact(base)!r}")
        self._endpoint = self._redact(base)
        self._url = url
        self._headers = headers
        self._timeout = cfg.timeout
        self._http = CurlPool(url, max(cfg.max_concurrency or 0, ADAPTIVE_MAX), cfg.timeout)
        self._send = self._http.post

    def complete(self, request: Request) -> Completion:
        body: dict[str, Any] = {"model": self.model, "messages": [m.as_dict() for m in request.messages],
                                "temperature": request.temperature, "max_tokens": request.max_tokens}
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if request.schema is not None and self.supports_json_schema:
            name = re.sub(r"[^A-Za-z0-9_-]", "_", str(request.schema.get("title", "reply")))[:64] or "reply"
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": name, "schema": request.schema, "strict": False}}
        if request.score_digits:
            body["logprobs"] = True
            body["top_logprobs"] = 10
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        error: LLMError | None = None
        try:
            resp = self._send(payload, self._headers)
        except Exception as e:  # noqa: BLE001 - any transport failure (ValueError of a bad header too), redacted
            error = self._transport_error(e)
        if error is not None:  # raised outside the handler: not even __context__ holds the transport error
            raise error
        if not 200 <= resp.status < 300:
            raise self._status_error(resp)
        try:
            obj = json.loads(resp.data)
            choice = obj["choices"][0]
            text = choice["message"]["content"] or ""
            if not isinstance(text, str):
                raise TypeError(f"message content is {type(text).__name__}, not a string")
            probs = digit_probs(choice.get("logprobs")) if request.score_digits else None
            usage = obj.get("usage") or {}
            t_in, t_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        except Exception as e:  # noqa: BLE001 - a 2xx whose body is not a completion: retried
            error = MalformedResponse(f"{self._where()}: malformed response ({type(e).__name__}: "
                                      f"{self._redact(str(e))[:200]})")
        if error is not None:
            raise error
        # an endpoint that reports no usage: the tokens are unknown (None), never guessed from characters
        t_in = t_in if isinstance(t_in, int) and not isinstance(t_in, bool) else None
        t_out = t_out if isinstance(t_out, int) and not isinstance(t_out, bool) else None
        return Completion(text=text, tokens_in=t_in, tokens_out=t_out, digit_probs=probs)

    # ------------------------------------------------------------------ errors
    def _where(self) -> str:
        return f"{self._endpoint} model {self.model}"

    def _transport_error(self, e: BaseException) -> LLMError:
        code = e.args[0] if isinstance(e, pycurl.error) and e.args else None
        if code == pycurl.E_OPERATION_TIMEDOUT:
            return LLMTimeout(f"{self._where()}: request timed out (llm.timeout={self._timeout:g} s)")
        detail = f"{type(e).__name__}: {self._redact(' '.join(map(str, e.args)) if code else str(e))[:300]}"
        if code in _UNTRUSTED:  # the same certificate fails the same way at every attempt
            return PermanentLLMError(f"{self._where()}: the server's certificate is not trusted ({detail}): set "
                                     f"SSL_CERT_FILE to its CA bundle (now: {self._http.ca_source()}), or use "
                                     f"http:// for a local server")
        if code in _TLS_SETUP:
            return PermanentLLMError(f"{self._where()}: TLS could not be set up ({detail}); check SSL_CERT_FILE "
                                     f"(now: {self._http.ca_source()}) names a readable PEM CA bundle")
        if code is None or code in _NOT_CONNECTION:  # not a connection problem: retrying will not help
            return PermanentLLMError(f"{self._where()}: the request could not be sent ({detail})")
        return TransientLLMError(f"{self._where()}: connection failed ({detail})")

    def _status_error(self, resp: Any) -> LLMError:
        status = resp.status
        msg = f"{self._where()}: HTTP {status}: {self._redact(_error_text(resp))}"
        if status in (429, 503):  # rate limit / overload: the scheduler backs off
            err = RateLimited(msg)
            err.retry_after = retry_after(resp.headers)
            return err
        if status >= 500 or status in (408, 409):
            return TransientLLMError(msg)
        if status in (401, 403):
            return PermanentLLMError(f"{msg} (check the key in the environment variable, and llm.base_url)")
        if 300 <= status < 400:
            return PermanentLLMError(f"{msg} (a redirect to {self._redact(resp.headers.get('location', '?'))}: "
                                     f"set llm.base_url to the URL it points to)")
        return PermanentLLMError(msg)

    def _redact(self, text: str) -> str:
        if self._secret:
            # the key as sent, as repr() shows it (b'...\\r'), and its whitespace-separated parts
            forms = {self._secret, repr(self._secret)[1:-1], repr(self._secret.encode("utf-8", "replace"))[2:-1]}
            forms.update(p for p in re.split(r"[\s\x00-\x1f\x7f]+", self._secret) if len(p) >= 6)
            for form in sorted(forms, key=len, reverse=True):
                if form:
                    text = text.replace(form, "***")
        return redact(text)

    def close(self) -> None:
        self._http.close()


#: libcurl errors that are not a connection problem (a retry would fail the same way)
_NOT_CONNECTION = {pycurl.E_UNSUPPORTED_PROTOCOL, pycurl.E_URL_MALFORMAT, pycurl.E_BAD_FUNCTION_ARGUMENT,
                   pycurl.E_OUT_OF_MEMORY, pycurl.E_TOO_MANY_REDIRECTS}


#: libcurl errors of the server's certificate: not trusted by our CA bundle, issued for another name,
#: a wrong issuer or pinned key, a revoked status (51 is the code of libcurl before 7.62)
_UNTRUSTED = {51, pycurl.E_PEER_FAILED_VERIFICATION, pycurl.E_SSL_ISSUER_ERROR, pycurl.E_SSL_PINNEDPUBKEYNOTMATCH,
              pycurl.E_SSL_INVALIDCERTSTATUS}
#: libcurl errors of our own TLS setup: CA bundle or CRL file unreadable, client certificate,
#: cipher list or crypto engine: every attempt fails alike
_TLS_SETUP = {pycurl.E_SSL_CACERT_BADFILE, pycurl.E_SSL_CRL_BADFILE, pycurl.E_SSL_CERTPROBLEM, pycurl.E_SSL_CIPHER,
              pycurl.E_SSL_ENGINE_NOTFOUND, pycurl.E_SSL_ENGINE_SETFAILED, pycurl.E_SSL_ENGINE_INITFAILED}


class CurlResponse:
    """What the backend reads of a reply: `status`, `reason`, `headers` (lower-case names; the
    last response's, after any 1xx) and the decoded body `data`."""

    def __init__(self, status: int, header_lines: list[bytes], data: bytes):
        self.status, self.data = status, data
        start = max((i for i, line in enumerate(header_lines) if line.startswith(b"HTTP/")), default=0)
        status_line = header_lines[start].decode("latin-1").split(None, 2) if header_lines else []
        self.reason = status_line[2].strip() if len(status_line) > 2 else ""
        self.headers: dict[str, str] = {}
        for line in header_lines[start + 1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                self.headers[name.strip().lower()] = value.strip()


class CurlPool:
    """POSTs to one URL over kept-alive connections: a pool of libcurl easy handles, each used by
    one thread at a time and returned after its request (LIFO, so warm connections are reused);
    at most `maxsize` idle handles are kept (never blocks: beyond it a handle is made and closed).
    The transfer runs in C with the GIL released. The environment's proxy for the URL (Python's
    `urllib.request` rules, so HTTP(S)_PROXY, NO_PROXY and socks:// behave as they did with
    urllib3) is set on each handle; libcurl's own reading of proxy variables is switched off."""

    def __init__(self, url: str, maxsize: int, timeout_s: float):
        parts = urlparse(url)
        self.url, self.maxsize = url, maxsize
        self._timeout_ms = max(1, int(math.ceil(timeout_s * 1000)))
        self._proxy = "" if urllib.request.proxy_bypass(parts.hostname or "") else \
            (urllib.request.getproxies().get(parts.scheme) or "")
        self._ca = (os.environ.get("SSL_CERT_FILE") or _certifi()) if parts.scheme == "https" else None
        self._idle: list[pycurl.Curl] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def ca_source(self) -> str:
        """Where the certificates come from, for an error message."""
        if os.environ.get("SSL_CERT_FILE") and self._ca == os.environ["SSL_CERT_FILE"]:
            return f"SSL_CERT_FILE={self._ca}"
        return f"certifi's bundle {self._ca}" if self._ca else "the system's certificates"

    def _handle(self) -> pycurl.Curl:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's connections are not ours
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                return self._idle.pop()
        c = pycurl.Curl()
        c.setopt(pycurl.URL, self.url)
        c.setopt(pycurl.POST, 1)
        c.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for timeouts
        c.setopt(pycurl.TIMEOUT_MS, self._timeout_ms)
        c.setopt(pycurl.CONNECTTIMEOUT_MS, self._timeout_ms)
        c.setopt(pycurl.FOLLOWLOCATION, 0)
        c.setopt(pycurl.ACCEPT_ENCODING, "")  # every encoding libcurl decodes (gzip, deflate, br)
        c.setopt(pycurl.PROXY, self._proxy)  # "" = no proxy, whatever libcurl would read from the environment
        if self._ca:
            c.setopt(pycurl.CAINFO, self._ca)
        return c

    def post(self, body: bytes, headers: dict[str, str]) -> CurlResponse:
        c = self._handle()
        chunks: list[bytes] = []
        lines: list[bytes] = []
        ok = False
        try:
            # "Expect:" turns off libcurl's 100-continue round trip for large bodies
            c.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in headers.items()] + ["Expect:"])
            c.setopt(pycurl.POSTFIELDS, body)
            c.setopt(pycurl.WRITEFUNCTION, chunks.append)
            c.setopt(pycurl.HEADERFUNCTION, lines.append)
            c.perform()
            response = CurlResponse(c.getinfo(pycurl.RESPONSE_CODE), lines, b"".join(chunks))
            ok = True
            return response
        finally:
            if ok and len(self._idle) < self.maxsize:
                with self._lock:
                    self._idle.append(c)
            else:  # a failed transfer's connection state is unknown: not reused
                c.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()


def _certifi() -> str | None:
    try:
        import certifi

        return certifi.where()
    except ImportError:  # the system's default certificates
        return None


def _error_text(resp: Any) -> str:
    """The server's error message: `error.message` of a JSON body, else the body's start."""
    raw = resp.data or b""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(inner, str) and inner:
            return inner[:300]
    text = raw.decode("utf-8", "replace").strip()
    return text[:300] or (getattr(resp, "reason", None) or "no body")


def retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms` (OpenAI) or `Retry-After` as seconds
    (RFC 9110 allows only integers; decimals are accepted) or an HTTP-date; None when absent or
    unreadable. Never negative."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    value_s = headers.get("retry-after")
    if value_s is None:
        return None
    try:
        value = float(value_s)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value_s)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC without a claim about the local zone
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _logprob(value: Any) -> float | None:
    """A valid log-probability (a finite number <= 0, with float rounding slack), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value <= 1e-6 else None


def digit_probs(logprobs: Any) -> dict[int, float] | None:
    """Probabilities of 0-9 at the first reply token that is a digit, from its top_logprobs
    (the chat-completions `choice.logprobs` object). Tokens like ' 7' and '7' are pooled. None
    when the reply has no digit or no logprobs, or when the distribution is invalid (a logprob
    that is not a finite number <= 0, i.e. a probability above 1 or NaN, or alternatives summing
    to more than 1): the reply text is then parsed as usual rather than trusting broken numbers."""
    content = (logprobs.get("content") if isinstance(logprobs, dict) else None) or []
    for tok in content:
        token = str(tok["token"]).strip()
        if len(token) == 1 and token.isdigit():
            probs: dict[int, float] = {}
            total = 0.0
            for alt in tok.get("top_logprobs") or []:
                lp = _logprob(alt.get("logprob")) if isinstance(alt, dict) else None
                if lp is None:
                    return None
                total += math.exp(lp)
                s = str(alt["token"]).strip()
                if len(s) == 1 and s.isdigit():
                    probs[int(s)] = probs.get(int(s), 0.0) + math.exp(lp)
            if total > 1.0 + 1e-3:  # the alternatives of one position cannot exceed probability 1
                return None
            if probs:
                return probs
            lp = _logprob(tok.get("logprob"))
            return None if lp is None else {int(token): math.exp(lp)}
    return None
