"""Shared fixtures (kept small; owned by the LLM-layer helper — ask to add one)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def scripted_llm():
    """A factory for scripted-backend LLMs: scripted_llm(rules=[...], seed=0, **cfg)."""
    from trials.llm import CallRecorder, build_llm

    def make(rules=(), seed: int | None = 0, **cfg):
        llm = build_llm({"backend": "scripted", "rules": list(rules), **cfg})
        return llm.bind(seed=seed, recorder=CallRecorder())

    return make


@pytest.fixture
def fake_openai():
    """A running fake OpenAI-compatible server (tests/fake_openai.py); stopped after the test."""
    from fake_openai import FakeOpenAI

    with FakeOpenAI() as srv:
        yield srv
