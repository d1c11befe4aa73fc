"""Shared fixtures (kept small)."""

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


@pytest.fixture(autouse=True)
def _root_log_handlers_restored():
    """A CLI entry point called in a test (`trials report` runs logging.basicConfig) leaves a root
    handler bound to that test's captured stderr; pytest closes it, and a later test's log record
    then prints "--- Logging error ---" with a traceback. Each test starts with the root handlers
    it found."""
    import logging

    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)
