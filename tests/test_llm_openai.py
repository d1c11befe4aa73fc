"""The openai backend against tests/fake_openai.py on 127.0.0.1: bodies, logprob scores, retries,
timeouts, typed errors, the concurrency limit, Azure routing, and the API key never leaking."""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback

import pytest
from fake_openai import FakeOpenAI

from trials.llm import (CallRecorder, LLMConfigError, LLMTimeout, MalformedResponse, PermanentLLMError, RateLimited,
                        RetriesExhausted, TransientLLMError, build_llm)

SECRET = "sk-" + "test-SECRET-4f9a1c77e2b04d0d"  # built at run time: a fake key, not a leaked one
MSG = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(autouse=True)
def fake_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def make(srv, **cfg):
    base = {"backend": "openai", "base_url": srv.base_url, "model": "fake-model", "timeout": 2,
            "max_retries": 2, "retry_base_s": 0.01, "retry_max_s": 0.2}
    return build_llm({**base, **cfg}).bind(seed=11, recorder=CallRecorder())


def test_weighted_score_stays_on_the_scale_despite_float_rounding():
    # a tester's logprobs: the plain weighted mean computes 9.000000000000002, off the 0-9 scale
    probs = {9: 0.9945942581811194, 8: 1.6000109378278628e-16, 7: 9.184189676972723e-20}
    with FakeOpenAI(digit_probs=probs) as srv:
        r = make(srv).chat(MSG, purpose="judge", protocol="score", score_digits=True)
    assert r.digit_probs is not None and set(r.digit_probs) == {7, 8, 9}
    assert 7 <= r.score <= 9 and r.score == pytest.approx(9.0)


def test_normal_call_sends_parameters_and_reuses_one_connection():
    with FakeOpenAI() as srv:
        llm = make(srv, temperature=0.3, max_tokens=50)
        for i in range(5):
            r = llm.chat(MSG, seed=i, stop=["\n\n"])
            assert r.text == "echo: Hello there" and r.usage.tokens_in > 0 and r.usage.tokens_out > 0
        body = srv.bodies[0]
        assert (body["model"], body["temperature"], body["max_tokens"], body["stop"]) == ("fake-model", 0.3, 50, ["\n\n"])
        assert len({b["seed"] for b in srv.bodies}) == 5  # per-call seeds reach the endpoint
        assert srv.requests == 5 and srv.connections == 1
        assert srv.auth_headers[0] == f"Bearer {SECRET}"


def test_judge_call_asks_logprobs_and_weights_the_digits():
    with FakeOpenAI(digit_probs={7: 0.5, 9: 0.5}) as srv:
        r = make(srv).chat(MSG, purpose="judge", protocol="score", score_digits=True)
        assert srv.bodies[0]["logprobs"] is True and srv.bodies[0]["top_logprobs"] == 10
        assert r.text.startswith("Score: 7") and r.score == pytest.approx(8.0)
        assert make(srv).chat(MSG).score is None  # no logprobs asked -> no score


def test_schema_call_uses_json_schema_response_format():
    schema = {"title": "Answer", "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    with FakeOpenAI() as srv:
        r = make(srv).chat(MSG, purpose="extract", schema=schema)
        assert r.data == {"answer": "ok"}
        rf = srv.bodies[0]["response_format"]
        assert rf["type"] == "json_schema" and rf["json_schema"]["schema"] == schema
        srv.reply = lambda body: 'Here you go: {"answer": "fine",}'
        assert make(srv, json_schema=False).chat(MSG, purpose="extract", schema=schema).data == {"answer": "fine"}
        assert "response_format" not in srv.bodies[1] and "JSON schema" in srv.bodies[1]["messages"][-1]["content"]


def test_429_with_retry_after_then_success_is_counted_as_retries():
    with FakeOpenAI(retry_after=0.3) as srv:
        srv.queue("429", "500")
        llm = make(srv)
        t0 = time.perf_counter()
        r = llm.chat(MSG)
        assert r.usage.retries == 2 and srv.requests == 3
        assert time.perf_counter() - t0 >= 0.2  # waited for Retry-After (capped by retry_max_s)
        assert llm.recorder.rows[-1]["retries"] == 2


def test_persistent_500_exhausts_retries_with_the_typed_cause():
    with FakeOpenAI(mode="500") as srv:
        with pytest.raises(RetriesExhausted, match="HTTP 500") as ei:
            make(srv, max_retries=3).chat(MSG)
        assert ei.value.attempts == 4 and srv.requests == 4 and isinstance(ei.value.last, TransientLLMError)
    with FakeOpenAI(mode="429") as srv:
        with pytest.raises(RetriesExhausted) as ei:
            make(srv, max_retries=0).chat(MSG)
        assert isinstance(ei.value.last, RateLimited) and ei.value.last.retry_after == pytest.approx(0.05)


def test_hang_and_slow_time_out_as_llm_timeout():
    with FakeOpenAI(mode="hang") as srv:
        t0 = time.perf_counter()
        with pytest.raises(RetriesExhausted) as ei:
            make(srv, timeout=0.3, max_retries=1).chat(MSG)
        assert isinstance(ei.value.last, LLMTimeout) and srv.requests == 2
        assert time.perf_counter() - t0 < 3
    with FakeOpenAI(mode="slow", slow_s=1.0) as srv:
        with pytest.raises(RetriesExhausted) as ei:
            make(srv, timeout=0.2, max_retries=0).chat(MSG)
        assert isinstance(ei.value.last, LLMTimeout)


@pytest.mark.parametrize("fault", ["malformed", "no_choices"])
def test_malformed_200_is_retried_like_a_5xx(fault):
    """Issue #11 input 5: an invalid JSON body or a completion with no choices is transient."""
    with FakeOpenAI() as srv:
        srv.queue(fault, fault)
        rec = CallRecorder()
        reply = make(srv, max_retries=3).bind(recorder=rec).chat(MSG)
        assert reply.text.startswith("echo:") and srv.requests == 3
        assert rec.rows[-1]["retries"] == 2 and rec.rows[-1]["error"] == ""
    with FakeOpenAI(mode=fault) as srv:
        with pytest.raises(RetriesExhausted) as ei:
            make(srv, max_retries=2).chat(MSG)
        assert isinstance(ei.value.last, MalformedResponse) and "malformed" in str(ei.value.last)
        assert srv.requests == 3


def test_auth_errors_are_permanent_and_not_retried():
    with FakeOpenAI(mode="401") as srv:
        with pytest.raises(PermanentLLMError, match="HTTP 401"):
            make(srv).chat(MSG)
        assert srv.requests == 1


def test_concurrency_limit_per_endpoint():
    with FakeOpenAI(latency=0.1) as srv:
        llm = make(srv, max_concurrency=2)
        threads = [threading.Thread(target=llm.chat, args=(MSG,), kwargs={"seed": i}) for i in range(8)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert srv.requests == 8 and srv.max_in_flight == 2


def test_missing_key_is_an_error_for_remote_urls_but_fine_for_local(monkeypatch):
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(LLMConfigError, match="MY_KEY is not set"):
        build_llm({"backend": "openai", "model": "gpt-4o-mini", "api_key_env": "MY_KEY"})
    with FakeOpenAI() as srv:
        assert make(srv, api_key_env="MY_KEY").chat(MSG).text.startswith("echo")


def test_azure_routes_to_the_deployment(monkeypatch):
    monkeypatch.setenv("AZURE_KEY", SECRET)
    with FakeOpenAI() as srv:
        llm = build_llm({"backend": "openai", "model": "my-deploy", "api_key_env": "AZURE_KEY",
                         "base_url": srv.base_url.removesuffix("/v1"), "api_version": "2024-10-21"})
        assert llm.chat(MSG).text.startswith("echo")
        assert srv.paths[0].startswith("/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21")


def test_api_key_never_reaches_cache_logs_or_errors(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "cache.sqlite"
    texts = []
    with FakeOpenAI() as srv:
        llm = build_llm({"backend": "openai", "base_url": srv.base_url, "model": "fake-model", "timeout": 0.3,
                         "max_retries": 1, "retry_base_s": 0.01}, cache={"path": str(db), "mode": "read_write"})
        llm.chat(MSG)
        llm.chat(MSG, purpose="judge", score_digits=True)
        for mode in ("401", "500", "malformed", "hang", "429"):
            srv.mode = mode
            with pytest.raises(Exception) as ei:
                llm.chat(MSG, seed=hash(mode) % 1000)
            err = ei.value
            texts += [str(err), repr(err), "".join(traceback.format_exception(err))]
            if getattr(err, "last", None) is not None:
                texts += [str(err.last), repr(err.last), "".join(traceback.format_exception(err.last))]
        assert any(SECRET in h for h in srv.auth_headers)  # the key really was in use
        assert any("Incorrect API key provided" in t for t in texts)  # the 401 echo was seen ...
    texts.append(caplog.text)
    texts.append(llm.recorder.to_frame().to_csv())
    for t in texts:
        assert SECRET not in t and "SECRET-4f9a" not in t  # ... but redacted
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert len(raw) > 0 and SECRET.encode() not in raw and b"SECRET" not in raw


def test_azure_sends_the_key_in_api_key_and_no_bearer_token(monkeypatch):
    monkeypatch.setenv("AZURE_KEY", SECRET)
    with FakeOpenAI() as srv:
        llm = build_llm({"backend": "openai", "model": "my deploy/1", "api_key_env": "AZURE_KEY",
                         "base_url": srv.base_url.removesuffix("/v1") + "/", "api_version": "2024-10-21"})
        assert llm.chat(MSG).text.startswith("echo")
        assert srv.paths == ["/openai/deployments/my%20deploy%2F1/chat/completions?api-version=2024-10-21"]
        headers = srv.headers[0]
        assert headers["api-key"] == SECRET and "authorization" not in headers
        assert headers["content-type"] == "application/json"
        assert srv.bodies[0]["model"] == "my deploy/1"


def test_openai_headers_and_base_url_from_the_environment(monkeypatch):
    with FakeOpenAI() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_ORG_ID", "org-123")
        monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-9")
        llm = build_llm({"backend": "openai", "model": "fake-model"})  # no llm.base_url: $OPENAI_BASE_URL
        assert llm.chat(MSG).text.startswith("echo")
        h = srv.headers[0]
        assert srv.paths == ["/v1/chat/completions"]
        assert h["authorization"] == f"Bearer {SECRET}" and "api-key" not in h
        assert (h["openai-organization"], h["openai-project"]) == ("org-123", "proj-9")


def test_proxy_from_the_environment_is_used(monkeypatch):
    """HTTP(S)_PROXY is honoured as the SDK (httpx) did: the request reaches the proxy (here the
    fake server) with the absolute URL of the endpoint, which is never contacted itself."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "no_proxy", "all_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FakeOpenAI() as proxy:
        monkeypatch.setenv("http_proxy", proxy.base_url.removesuffix("/v1"))
        llm = build_llm({"backend": "openai", "model": "fake-model", "base_url": "http://api.example.invalid/v1",
                         "timeout": 2, "max_retries": 0})
        assert llm.chat(MSG).text.startswith("echo")
        assert proxy.paths == ["http://api.example.invalid/v1/chat/completions"]
        assert proxy.headers[0]["authorization"] == f"Bearer {SECRET}"


def test_connection_refused_is_transient_and_never_shows_the_key():
    with FakeOpenAI() as srv:
        url = srv.base_url
    llm = build_llm({"backend": "openai", "base_url": url, "model": "m", "timeout": 1, "max_retries": 1,
                     "retry_base_s": 0.01, "retry_max_s": 0.02})  # the server is gone: nothing listens
    with pytest.raises(RetriesExhausted) as ei:
        llm.chat(MSG)
    last = ei.value.last
    assert type(last) is TransientLLMError and "connection failed" in str(last)
    assert last.__cause__ is None and last.__context__ is None  # the transport error is not chained
    for text in (str(ei.value), repr(last), "".join(traceback.format_exception(last))):
        assert SECRET not in text


def test_http_errors_map_to_typed_errors():
    from trials.llm.config import LLMConfig
    from trials.llm.openai_backend import OpenAIBackend

    backend = OpenAIBackend(LLMConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1"))

    class Resp:
        def __init__(self, status, data=b"", headers=None):
            self.status, self.data, self.headers, self.reason = status, data, headers or {}, "Reason"

    cases = {429: RateLimited, 503: RateLimited, 500: TransientLLMError, 502: TransientLLMError,
             408: TransientLLMError, 409: TransientLLMError, 401: PermanentLLMError, 403: PermanentLLMError,
             400: PermanentLLMError, 404: PermanentLLMError, 307: PermanentLLMError}
    for status, kind in cases.items():
        err = backend._status_error(Resp(status, b'{"error": {"message": "nope ' + SECRET.encode() + b'"}}'))
        assert type(err) is kind and f"HTTP {status}: nope ***" in str(err) and SECRET not in str(err)
    assert "redirect to http://x/v2" in str(backend._status_error(Resp(301, b"", {"location": "http://x/v2"})))
    assert "Bad gateway page" in str(backend._status_error(Resp(502, b"<html>Bad gateway page</html>")))
    assert str(backend._status_error(Resp(500))).endswith("HTTP 500: Reason")


def test_retry_after_parsing():
    from email.utils import format_datetime
    from datetime import datetime, timezone

    from trials.llm.openai_backend import retry_after

    now = 1_700_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 30, tz=timezone.utc), usegmt=True)
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "0.25"}) == 0.25  # not RFC 9110, but providers send it
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5  # OpenAI's header first
    assert retry_after({"retry-after": date}, now=now) == pytest.approx(30.0)
    assert retry_after({"retry-after": date}, now=now + 60) == 0.0  # a date in the past: go now
    for bad in ("soon", "-3", "nan", "inf", ""):
        assert retry_after({"retry-after": bad}) is None
    assert retry_after({}) is None
    assert retry_after({"retry-after-ms": "x", "retry-after": "3"}) == 3.0


def test_digit_probs_pool_spellings_of_a_digit():
    import math

    from trials.llm.openai_backend import digit_probs

    lp = {"content": [{"token": "Score", "logprob": -0.1, "top_logprobs": []},
                      {"token": " 7", "logprob": math.log(0.5),
                       "top_logprobs": [{"token": " 7", "logprob": math.log(0.5)},
                                        {"token": "7", "logprob": math.log(0.2)},
                                        {"token": "8", "logprob": math.log(0.1)},
                                        {"token": " the", "logprob": math.log(0.1)}]}]}
    probs = digit_probs(lp)
    assert probs == pytest.approx({7: 0.7, 8: 0.1})
    assert digit_probs({"content": [{"token": "no", "logprob": 0.0}]}) is None
    assert digit_probs(None) is None


class _NoUsage(FakeOpenAI):
    """An endpoint whose replies carry no `usage` (some OpenAI-compatible servers)."""

    def _completion(self, body):
        out = super()._completion(body)
        out.pop("usage")
        return out


def test_a_reply_without_usage_has_unknown_tokens_and_cost_not_an_estimate():
    """Was: tokens = characters / 4 and a cost computed from them, shown as if measured."""
    with _NoUsage() as srv:
        llm = make(srv, model="gpt-4o-mini")  # a priced model: its cost would be a number if tokens were known
        r = llm.chat(MSG)
        assert r.usage.tokens_in is None and r.usage.tokens_out is None and math.isnan(r.usage.cost_usd)
        row = llm.recorder.rows[-1]
        assert row["tokens_in"] is None and row["tokens_out"] is None and math.isnan(row["cost_usd"])
    with FakeOpenAI() as srv:  # with usage: counted and priced
        r = make(srv, model="gpt-4o-mini").chat(MSG)
        assert r.usage.tokens_in > 0 and r.usage.cost_usd > 0


def test_timed_out_and_malformed_attempts_are_counted_as_maybe_billed():
    with FakeOpenAI() as srv:
        srv.queue("malformed", "500", "no_choices")
        rec = CallRecorder()
        make(srv, max_retries=3).bind(recorder=rec).chat(MSG)
        assert rec.rows[-1]["unknown_billing_attempts"] == 2 and rec.rows[-1]["retries"] == 3  # the 500 was not
        make(srv).bind(recorder=rec).chat(MSG)
        assert rec.rows[-1]["unknown_billing_attempts"] == 0
    with FakeOpenAI(mode="hang") as srv:
        rec = CallRecorder()
        with pytest.raises(RetriesExhausted):
            make(srv, timeout=0.3, max_retries=1).bind(recorder=rec).chat(MSG)
        assert rec.rows[-1]["unknown_billing_attempts"] == 2 and rec.rows[-1]["error"] == "RetriesExhausted"


def test_an_agent_and_a_judge_work_with_unknown_tokens():
    """Was a TypeError (int += None) in every session once tokens could be unknown."""
    from trials.judging.judge import Proposition, judge
    from trials.persona import Persona
    from trials.session.agent import Agent

    with _NoUsage(reply=lambda body: "Score: 7\nReason: fits." if body.get("logprobs") else "TALK: a night market") as srv:
        llm = make(srv)
        agent = Agent(Persona(name="Ana Ruiz", occupation="nurse"), llm, goals=["Find a good idea."])
        agent.peers = ["Tom Berg"]
        events = agent.act(step=0)
        assert events[0].type == "TALK" and events[0].prompt_tokens is None  # unknown, not 0 or chars / 4
        r = judge(Proposition(name="fit", claim="{agent} is a nurse."), llm, events=events, agent="Ana Ruiz", k=2)
        assert r.score == 7 and r.prompt_tokens is None
