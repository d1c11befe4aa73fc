"""User-tester defects of the openai backend and its preflight (fake server on 127.0.0.1, no network):
keys with control characters, long Retry-After, $OPENAI_BASE_URL, key-like variable names,
credentials in base_url, the Azure placeholder, malformed logprobs."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from trials.cli import main
from trials.llm import CallRecorder, LLMConfigError, PermanentLLMError, RetriesExhausted, build_llm
from trials.llm.openai_backend import OpenAIBackend, digit_probs
from trials.llm.config import parse_llm_config
from trials.llm.scheduler import Scheduler

CORE = "CRSECRET987654321abc"
MSG = [{"role": "user", "content": "Hello there"}]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _run(tmp_path: Path, monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    code = main(["run", "cache.mode=off", *args])
    out, err = capsys.readouterr()
    return code, out + err


# ----------------------------------------------------------------------------- 1. keys with \r \n spaces
@pytest.mark.parametrize("secret", ["sk-" + CORE + "\r", "sk-" + CORE + "\n", " sk-" + CORE, "sk-" + CORE[:10] + " " + CORE[10:]])
def test_a_key_with_control_or_whitespace_characters_is_refused_without_echo(tmp_path, monkeypatch, capsys, secret):
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with FakeOpenAI() as srv:
        code, text = _run(tmp_path, monkeypatch, capsys, "experiment=hello", "llm=openai", "llm.model=fake",
                          f"llm.base_url={srv.base_url}")
        assert srv.requests == 0
    assert code == 2, text
    assert "OPENAI_API_KEY contains a newline or carriage return (or other control/whitespace characters)" in text
    assert CORE[:10] not in text and CORE[10:] not in text and "Traceback" not in text
    assert _files(tmp_path) == []  # nothing written, so no file can hold the key
    with pytest.raises(LLMConfigError, match="contains a newline") as info:  # the Python API too
        build_llm({"backend": "openai", "model": "fake", "base_url": srv.base_url})
    assert CORE[:10] not in str(info.value) and CORE[10:] not in str(info.value)


@pytest.mark.parametrize("env,llm", [("OPENAI_API_KEY", "openai"), ("OPENAI_ORG_ID", "openai"),
                                     ("OPENAI_PROJECT_ID", "openai"), ("AZURE_OPENAI_API_KEY", "azure")])
def test_a_non_ascii_key_or_id_is_refused_at_preflight_without_echo(tmp_path, monkeypatch, capsys, env, llm):
    # a tester's key: it passed preflight, then every request failed with UnicodeEncodeError
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + CORE)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv(env, "sk-ключ-ü€" + CORE)
    with FakeOpenAI() as srv:
        url = f"llm.base_url={srv.base_url}" if llm == "openai" else "llm.base_url=https://myres.openai.azure.com"
        code, text = _run(tmp_path, monkeypatch, capsys, "experiment=hello", f"llm={llm}", "llm.model=fake", url)
        assert srv.requests == 0
    assert code == 2, text
    assert f"{env} contains non-ASCII characters" in text and f"llm={llm}" in text
    assert "ключ" not in text and CORE not in text and "Traceback" not in text
    assert _files(tmp_path) == []
    with pytest.raises(LLMConfigError, match=f"{env} contains non-ASCII") as info:  # the Python API too
        build_llm({"backend": "openai", "model": "fake", "base_url": srv.base_url,
                   **({"api_version": "2024-10-21", "api_key_env": env} if llm == "azure" else {})})
    assert "ключ" not in str(info.value) and CORE not in str(info.value)


def test_any_transport_exception_is_redacted(monkeypatch):
    secret = "sk-" + CORE
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with FakeOpenAI() as srv:
        backend = OpenAIBackend(parse_llm_config({"backend": "openai", "model": "fake", "base_url": srv.base_url}))

        def broken(payload, headers):  # what http.client says of a header value it refuses
            raise ValueError(f"Invalid header value {(headers['Authorization'] + chr(13)).encode()!r}")

        backend._send = broken
        llm = build_llm({"backend": "openai", "model": "fake", "base_url": srv.base_url, "max_retries": 0},
                        backend=backend)
        with pytest.raises(PermanentLLMError) as info:
            llm.chat(MSG)
    text = str(info.value) + repr(info.value.__context__) + repr(info.value.__cause__)
    assert "ValueError" in text and CORE not in text and CORE[:8] not in text


# ----------------------------------------------------------------------------- 2. long Retry-After
def _openai(srv: FakeOpenAI, **over):
    return build_llm({"backend": "openai", "base_url": srv.base_url, "model": f"fake-{id(srv)}-{time.time_ns()}",
                      "max_retries": 2, "retry_base_s": 0.001, "retry_max_s": 0.02, **over}).bind(recorder=CallRecorder())


@pytest.mark.parametrize("retry_after", [3600, 99999999])
def test_a_retry_after_beyond_the_cap_fails_after_max_retries_with_a_clear_message(retry_after, caplog):
    with FakeOpenAI(mode="429", retry_after=retry_after) as srv:
        llm = _openai(srv)
        with caplog.at_level(logging.WARNING, logger="trials"):
            with pytest.raises(RetriesExhausted, match=f"the endpoint asks to wait {retry_after} s \\(Retry-After\\)"):
                llm.chat(MSG)
            assert srv.requests == 3  # llm.max_retries=2: 1 + 2 retries, each waited at most retry_max_s
            sched = llm._core.limit
            assert sched._pause_until - sched._clock() <= 0.02  # the endpoint pause is capped too
    assert any("Retry-After" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_max_retries_bounds_429s_without_a_valid_retry_after(caplog):
    with FakeOpenAI(mode="429", retry_after="soon") as srv:  # type: ignore[arg-type] - an unreadable header
        llm = _openai(srv)
        with caplog.at_level(logging.WARNING, logger="trials"):
            with pytest.raises(RetriesExhausted, match="after 3 attempts"):
                llm.chat(MSG)
        assert srv.requests == 3  # not OVERLOAD_ATTEMPTS (20)
    assert sum("retry" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records) == 2


def test_the_scheduler_caps_its_pause_and_warns(caplog):
    now = [100.0]
    s = Scheduler(max_concurrency=4, clock=lambda: now[0], max_pause_s=7.0)
    with caplog.at_level(logging.WARNING, logger="trials"):
        for _ in range(2):  # the second overload after a cut that did not help pauses the endpoint
            with s.slot() as slot:
                slot.overload(99999999.0)
            now[0] += 0.001
    assert 0 < s._pause_until - now[0] <= 7.0
    assert any("99999999" in r.getMessage() and "paused for 7 s" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- 3-6. preflight of the endpoint
def test_openai_base_url_env_without_scheme_is_refused_at_preflight(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + CORE)
    code, text = _run(tmp_path, monkeypatch, capsys, "experiment=hello", "llm=openai", "llm.model=fake")
    assert code == 2 and "$OPENAI_BASE_URL='localhost:8000/v1' is not an http(s) URL" in text
    assert "Traceback" not in text and _files(tmp_path) == []


def test_a_local_openai_base_url_env_needs_no_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAI() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        code, text = _run(tmp_path, monkeypatch, capsys, "experiment=hello", "llm=openai", "llm.model=fake",
                          "run.dry_run=true")
    assert code == 0 and "OPENAI_API_KEY is not set" not in text, text
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.example.com/v1")  # a remote one still needs it
    code, text = _run(tmp_path, monkeypatch, capsys, "experiment=hello", "llm=openai", "llm.model=fake",
                      "run.dry_run=true")
    assert code == 2 and "OPENAI_API_KEY is not set" in text


@pytest.mark.parametrize("name", ["a1b2c3d4e5f60718293a4b5c6d7e8f90", "Xk9Lm2Pq8Rs7Tu6Vw5Yz4Ab3"])
def test_an_unset_api_key_env_that_looks_like_a_key_is_hidden(tmp_path, monkeypatch, capsys, name):
    monkeypatch.delenv(name, raising=False)
    code, text = _run(tmp_path, monkeypatch, capsys, "experiment=hello", "llm=azure",
                      "llm.base_url=https://myres.openai.azure.com", f"llm.api_key_env={name}")
    assert code == 2 and "<hidden>" in text and "looks like an API key" in text
    assert name not in text and name[:12] not in text and _files(tmp_path) == []


def test_a_missing_azure_key_names_llm_azure(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    code, text = _run(tmp_path, monkeypatch, capsys, "experiment=hello", "llm=azure",
                      "llm.base_url=https://myres.openai.azure.com")
    assert code == 2 and "AZURE_OPENAI_API_KEY is not set, and llm=azure" in text and "llm=openai" not in text


@pytest.mark.parametrize("where", ["llm", "judge", "experiment.arms.treatment.judge"])
def test_credentials_in_base_url_are_refused_and_never_written(tmp_path, monkeypatch, capsys, where):
    """Was: judge.base_url=http://u:p@host/v1 advised putting the key where llm.api_key_env names
    (the judge's key is judge.api_key_env; an arm's own judge has its own path)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + CORE)
    with FakeOpenAI() as srv:
        url = srv.base_url.replace("http://", "http://bob:hunter2pass@")
        over = {"llm": [f"llm.base_url={url}"],
                "judge": [f"llm.base_url={srv.base_url}", "judge=openai", "judge.model=fake", f"judge.base_url={url}"],
                "experiment.arms.treatment.judge": [
                    f"llm.base_url={srv.base_url}", "judge=openai", "judge.model=fake", f"judge.base_url={srv.base_url}",
                    f"+experiment.arms.treatment.judge={{base_url: '{url}', api_key_env: OPENAI_API_KEY}}"]}[where]
        code, text = _run(tmp_path, monkeypatch, capsys, "experiment=hello", "llm=openai", "llm.model=fake", *over)
        assert srv.requests == 0
    assert code == 2 and f"{where}.base_url contains credentials (user:password@)" in text
    assert f"the environment variable {where}.api_key_env names" in text
    assert "hunter2pass" not in text and _files(tmp_path) == []


def test_an_arm_url_with_credentials_names_the_key_setting_in_effect(tmp_path, monkeypatch, capsys):
    """An arm that sets its judge's base_url but not its api_key_env: the key is still judge.api_key_env's."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + CORE)
    with FakeOpenAI() as srv:
        url = srv.base_url.replace("http://", "http://bob:hunter2pass@")
        code, text = _run(tmp_path, monkeypatch, capsys, "experiment=hello", "llm=openai", "llm.model=fake",
                          f"llm.base_url={srv.base_url}", "judge=openai", "judge.model=fake",
                          f"judge.base_url={srv.base_url}", f"+experiment.arms.treatment.judge={{base_url: '{url}'}}")
    assert code == 2 and "experiment.arms.treatment.judge.base_url contains credentials" in text
    assert "the environment variable judge.api_key_env names" in text and "hunter2pass" not in text


def test_url_problem_names_the_key_setting_beside_the_url():
    from trials.llm.openai_backend import url_problem

    assert "judge.api_key_env names" in url_problem("http://u:p@h/v1", "judge.base_url")
    assert "llm.api_key_env names" in url_problem("http://u:p@h/v1", "$OPENAI_BASE_URL")


def test_the_azure_placeholder_url_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "x")
    code, text = _run(tmp_path, monkeypatch, capsys, "experiment=hello", "llm=azure")
    assert code == 2 and "llm.base_url='https://YOUR-RESOURCE.openai.azure.com' is the placeholder" in text
    assert "llm.base_url=https://<your resource name>.openai.azure.com" in text and _files(tmp_path) == []


# ----------------------------------------------------------------------------- 7. malformed logprobs
def _lp(top: list[tuple[str, float]], token: str = "7", logprob: float = -0.1) -> dict:
    return {"content": [{"token": "Score", "logprob": -0.01, "top_logprobs": []},
                        {"token": token, "logprob": logprob,
                         "top_logprobs": [{"token": t, "logprob": v} for t, v in top]}]}


@pytest.mark.parametrize("top", [[("5", 0.5), ("7", -1.0)], [("5", math.nan), ("7", -0.5)],
                                 [("5", math.log(0.7)), ("7", math.log(0.7))], [("5", "x")]])
def test_digit_probs_rejects_invalid_distributions(top):
    assert digit_probs(_lp(top)) is None
    assert digit_probs(_lp([], logprob=0.4)) is None and digit_probs(_lp([], logprob=math.nan)) is None


def test_digit_probs_accepts_a_valid_distribution():
    probs = digit_probs(_lp([("7", math.log(0.6)), (" 7", math.log(0.1)), ("6", math.log(0.2)), ("the", -9.0)]))
    assert probs == pytest.approx({7: 0.7, 6: 0.2})
    assert digit_probs(_lp([], logprob=math.log(0.9))) == pytest.approx({7: 0.9})


@pytest.mark.parametrize("bad", [1.5, math.nan])
def test_malformed_logprobs_fall_back_to_the_reply_text(monkeypatch, bad):
    """Logprobs saying P(5) = 1.5 (or NaN) turned "Score: 7" into 4.999; now the text decides."""
    from trials.judging.judge import _one

    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + CORE)
    with FakeOpenAI(digit_probs={3: 0.2, 5: bad}) as srv:  # the reply text says "Score: 7"
        llm = _openai(srv)
        reply = llm.chat(MSG, purpose="judge", protocol="score", score_digits=True)
        answer, weighted, _ = _one(llm, MSG, purpose="judge", seed=1, max_tokens=20, on_error="raise")
    assert reply.text.startswith("Score: 7") and reply.digit_probs is None and reply.score is None
    assert answer.value == 7 and weighted is None
    with FakeOpenAI(digit_probs={6: 0.2, 7: 0.6, 8: 0.2}) as srv:  # a valid distribution is still used
        answer, weighted, _ = _one(_openai(srv), MSG, purpose="judge", seed=1, max_tokens=20, on_error="raise")
    assert answer.value == 7 and weighted == pytest.approx(7.0, abs=1e-3)


# ----------------------------------------------------------------------------- untrusted TLS certificate
@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A throwaway self-signed certificate for localhost/127.0.0.1 (made with the openssl tool)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr.decode()[-200:]}")
    return str(cert), str(key)


def test_an_untrusted_certificate_fails_at_the_first_attempt_with_the_fix(monkeypatch, self_signed):
    # a tester's self-signed HTTPS server: "connection failed (error: 60 ...)" retried 5 times
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + CORE)
    with FakeOpenAI(tls=self_signed) as srv:
        llm = _openai(srv, max_retries=4)
        t0 = time.perf_counter()
        with pytest.raises(PermanentLLMError) as info:
            llm.chat(MSG)
        assert time.perf_counter() - t0 < 5 and srv.requests == 0
    text = str(info.value)
    assert "the server's certificate is not trusted" in text and "set SSL_CERT_FILE to its CA bundle" in text
    assert "or use http:// for a local server" in text and CORE not in text
    assert len(llm.recorder.rows) == 1 and llm.recorder.rows[0]["retries"] == 0  # one attempt, no retry
    # the fix the message names works: the same server, its certificate trusted through SSL_CERT_FILE
    monkeypatch.setenv("SSL_CERT_FILE", self_signed[0])
    with FakeOpenAI(tls=self_signed) as srv:
        assert _openai(srv).chat(MSG).text == "echo: Hello there" and srv.requests == 1


def test_an_unreadable_ca_bundle_fails_at_once_naming_ssl_cert_file(monkeypatch, tmp_path, self_signed):
    bad = tmp_path / "not-a-bundle.pem"
    bad.write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(bad))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + CORE)
    with FakeOpenAI(tls=self_signed) as srv:
        with pytest.raises(PermanentLLMError, match=f"SSL_CERT_FILE=.*not-a-bundle.pem") as info:
            _openai(srv, max_retries=4).chat(MSG)
        assert srv.requests == 0
    assert "RetriesExhausted" not in repr(info.value)
