"""The Backend contract, checked the same way on every backend (local: marked local_model):
`complete(Request) -> Completion` with text, token counts, digit probabilities for score calls,
and a parseable instance for schema calls."""

from __future__ import annotations

import json

import pytest
from fake_openai import FakeOpenAI

from trials.llm import Completion, Request, ScriptedBackend
from trials.llm.base import Message
from trials.llm.config import LLMConfig
from trials.llm.openai_backend import OpenAIBackend
from trials.llm.schema_tools import validate

SCHEMA = {"title": "Answer", "type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}


@pytest.fixture(params=["scripted", "openai", pytest.param("local", marks=pytest.mark.local_model)])
def backend(request, monkeypatch):
    if request.param == "scripted":
        yield ScriptedBackend()
        return
    if request.param == "local":
        pytest.importorskip("llama_cpp")
        from trials.llm.local_backend import LocalBackend

        yield LocalBackend(LLMConfig(backend="local"))
        return
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-contract")
    with FakeOpenAI() as srv:
        yield OpenAIBackend(LLMConfig(backend="openai", model="fake", base_url=srv.base_url))


def req(max_tokens: int = 12, **kw) -> Request:
    return Request(messages=(Message("system", "You are Bo."), Message("user", "Hello")), seed=1,
                   max_tokens=max_tokens, temperature=0.0, **kw)


def test_text_call(backend):
    c = backend.complete(req())
    assert isinstance(c, Completion) and c.text and c.tokens_in > 0 and c.tokens_out > 0
    assert backend.name and backend.model


def test_score_call_returns_digit_probabilities(backend):
    c = backend.complete(req(score_digits=True, protocol="score", max_tokens=4))
    assert c.digit_probs and set(c.digit_probs) <= set(range(10))
    assert 0 < sum(c.digit_probs.values()) <= 1 + 1e-9


def test_schema_call_returns_a_valid_instance(backend):
    c = backend.complete(req(schema=SCHEMA, protocol="json", max_tokens=40))
    assert validate(c.data if c.data is not None else json.loads(c.text), SCHEMA) == []
