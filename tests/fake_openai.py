"""A fake OpenAI-compatible server for tests and benchmarks (127.0.0.1, random port, no network).

    with FakeOpenAI(latency=0.1) as srv:
        build_llm({"backend": "openai", "base_url": srv.base_url, "model": "fake"})
        srv.requests        # number of POST /v1/chat/completions handled
        srv.bodies          # their JSON bodies (in arrival order)
        srv.connections     # TCP connections accepted (connection reuse = fewer than requests)
        srv.headers         # every request's headers, names lower-cased
        srv.max_in_flight   # most requests being handled at the same time

Modes (`mode=` for every request, or `srv.queue("429", "500")` for the next requests only):
  normal, slow (sleeps `slow_s`), 429 (with Retry-After: `retry_after`), 503, 500, 401 (echoes the
  bearer token in its message, as some providers do), malformed (200 with a body that is not
  JSON), no_choices (200 with an empty choices list), hang (never answers until the server stops).
`faults={"429": 0.05, ...}` makes each request faulty with those probabilities (a seeded draw per
request, `fault_seed`); `srv.faults_served` counts what was served. Any path ending in /chat/completions is
  served (Azure uses /openai/deployments/<name>/chat/completions); `srv.paths` records them.
`capacity=N` answers 429 (with Retry-After: `retry_after`) to any request beyond N in flight, as a
provider's concurrency limit does; `srv.rejected` counts them.
`tls=(cert_file, key_file)` serves https://localhost:<port>/v1 with that certificate.
`usage=False` omits `usage` from replies (an endpoint that reports no token counts: tokens NA, cost NaN).
`reply=f(body) -> str` scripts the assistant text (default: echoes the last user message, or
"Score: 7" style text when logprobs are asked). Logprobs are returned when the body asks for them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

MODES = ("normal", "slow", "429", "503", "500", "401", "malformed", "no_choices", "hang")


def default_reply(body: dict[str, Any]) -> str:
    if body.get("logprobs"):
        return "Score: 7\nReason: fits the persona."
    if body.get("response_format", {}).get("type") in ("json_schema", "json_object"):
        return json.dumps({"answer": "ok"})
    last = next((m["content"] for m in reversed(body.get("messages", [])) if m["role"] == "user"), "")
    return f"echo: {last[:200]}"


def _logprobs(text: str, digit_probs: dict[int, float]) -> dict[str, Any]:
    """OpenAI-style logprobs content: a token per word-ish chunk, top_logprobs at the first digit."""
    content = []
    for i, ch in enumerate(text[:40]):
        entry: dict[str, Any] = {"token": ch, "logprob": -0.1, "bytes": None, "top_logprobs": []}
        if ch.isdigit() and not any(c["token"].isdigit() for c in content):
            entry["top_logprobs"] = [{"token": str(d), "logprob": math.log(p), "bytes": None}
                                     for d, p in sorted(digit_probs.items(), key=lambda kv: -kv[1])]
            entry["top_logprobs"].append({"token": " the", "logprob": math.log(1e-4), "bytes": None})
        content.append(entry)
    return {"content": content}


class FakeOpenAI:
    def __init__(self, mode: str = "normal", latency: float = 0.0, slow_s: float = 2.0, retry_after: float = 0.05,
                 reply: Callable[[dict[str, Any]], str] | None = None,
                 digit_probs: dict[int, float] | None = None, faults: dict[str, float] | None = None,
                 fault_seed: int = 0, capacity: int | None = None, tls: tuple[str, str] | None = None,
                 usage: bool = True):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode, self.latency, self.slow_s, self.retry_after = mode, latency, slow_s, retry_after
        self.reply = reply or default_reply
        self.usage = usage
        self.digit_probs = digit_probs or {6: 0.2, 7: 0.6, 8: 0.2}
        self.requests = 0
        self.capacity = capacity
        self.rejected = 0
        self.faults = dict(faults or {})
        if set(self.faults) - set(MODES) or sum(self.faults.values()) > 1:
            raise ValueError(f"faults: modes of {MODES} with probabilities summing to <= 1")
        import random

        self._fault_rng = random.Random(fault_seed)
        self.faults_served: dict[str, int] = {}
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        self.headers: list[dict[str, str]] = []  # every request's headers (names lower-cased)
        self.paths: list[str] = []
        self._plan: deque[str] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.tls = tls  # (certificate file, key file): serve https://localhost:<port>/v1

    # -------------------------------------------------------------- control
    def queue(self, *modes: str) -> None:
        """One-shot modes for the next requests, then back to `mode`."""
        with self._lock:
            self._plan.extend(modes)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        if self.tls:  # the name a test certificate is made for
            return f"https://localhost:{self._server.server_address[1]}/v1"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "FakeOpenAI":
        fake = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def process_request(self, request, client_address):  # one call per TCP connection
                with fake._lock:
                    fake.connections += 1
                super().process_request(request, client_address)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: clients can reuse connections
            disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms delayed-ACK stall)

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = Server(("127.0.0.1", 0), Handler)
        if self.tls:  # a client that refuses the certificate fails the handshake in accept(): no request
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -------------------------------------------------------------- serving
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            mode = self._plan.popleft() if self._plan else self.mode
            if self.faults and not self._plan:
                u, acc = self._fault_rng.random(), 0.0
                for fault, p in self.faults.items():
                    acc += p
                    if u < acc:
                        mode = fault
                        break
            self.faults_served[mode] = self.faults_served.get(mode, 0) + 1
            if self.capacity is not None and self.in_flight > self.capacity:
                mode = "429"
                self.rejected += 1
            self.auth_headers.append(h.headers.get("Authorization", "") or h.headers.get("api-key", ""))
            self.headers.append({k.lower(): v for k, v in h.headers.items()})
            self.paths.append(h.path)
        try:
            if not h.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
                return self._send(h, 404, {"error": {"message": f"no route {h.path}", "type": "not_found"}})
            body = json.loads(raw or b"{}")
            with self._lock:
                self.bodies.append(body)
            if self.latency and not (mode == "429" and self.capacity is not None):  # a limit rejects at once
                time.sleep(self.latency)
            if mode == "hang":
                self._stop.wait(600)
                return
            if mode == "slow":
                time.sleep(self.slow_s)
            if mode == "429":
                return self._send(h, 429, {"error": {"message": "Rate limit reached", "type": "rate_limit"}},
                                  {"Retry-After": str(self.retry_after)})
            if mode == "401":
                token = self.auth_headers[-1].removeprefix("Bearer ")
                return self._send(h, 401, {"error": {"message": f"Incorrect API key provided: {token}",
                                                     "type": "invalid_request_error"}})
            if mode == "503":
                return self._send(h, 503, {"error": {"message": "overloaded", "type": "server_error"}})
            if mode == "500":
                return self._send(h, 500, {"error": {"message": "internal error", "type": "server_error"}})
            if mode == "malformed":
                return self._send_raw(h, 200, b'{"id": "x", "choices": [ {not json', "application/json")
            if mode == "no_choices":
                return self._send(h, 200, {"id": "x", "object": "chat.completion", "created": 0,
                                           "model": body.get("model", "fake"), "choices": []})
            self._send(h, 200, self._completion(body))
        finally:
            with self._lock:
                self.in_flight -= 1

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self.reply(body)
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": text}}
        if body.get("logprobs"):
            choice["logprobs"] = _logprobs(text, self.digit_probs)
        out = {"id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": int(time.time()),
               "model": body.get("model", "fake"), "choices": [choice]}
        if self.usage:
            out["usage"] = {"prompt_tokens": max(1, prompt_chars // 4), "completion_tokens": max(1, len(text) // 4),
                            "total_tokens": max(1, prompt_chars // 4) + max(1, len(text) // 4)}
        return out

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        FakeOpenAI._send_raw(h, status, json.dumps(payload).encode(), "application/json", headers)

    @staticmethod
    def _send_raw(h: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str,
                  headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        try:
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
