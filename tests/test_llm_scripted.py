"""The scripted backend's contract: deterministic, protocol-shaped, schema-aware, rule-driven."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from trials.llm import (PermanentLLMError, Request, RetriesExhausted, Rule, ScriptedBackend,
                        TransientLLMError, build_llm)
from trials.llm.base import Message
from trials.llm.schema_tools import validate

MSG = [{"role": "user", "content": "Propose a product idea."}]


def req(text="hello", seed=1, **kw):
    return Request(messages=(Message("user", text),), seed=seed, **kw)


def test_same_seed_and_messages_give_same_text_other_seeds_differ():
    b = ScriptedBackend()
    assert b.complete(req(seed=3)).text == b.complete(req(seed=3)).text
    texts = {b.complete(req(seed=s)).text for s in range(20)}
    assert len(texts) >= 15  # varied material for idea counting / dedup


def test_action_protocol_follows_the_agent_protocol():
    b = ScriptedBackend()
    kinds = set()
    for s in range(60):
        text = b.complete(req(seed=s, protocol="action")).text
        assert re.fullmatch(r"(TALK|THINK): .+|DONE", text), text
        kinds.add(text.split(":")[0])
    assert kinds == {"TALK", "THINK", "DONE"}


def test_score_protocol_has_a_digit_and_peaked_probabilities():
    b = ScriptedBackend()
    c = b.complete(req(protocol="score", score_digits=True))
    m = re.match(r"Score: (\d)\nReason: .+", c.text)
    assert m, c.text
    assert c.digit_probs is not None and abs(sum(c.digit_probs.values()) - 1) < 1e-9
    assert max(c.digit_probs, key=c.digit_probs.get) == int(m.group(1))


class Idea(BaseModel):
    title: str
    votes: int


class Ideas(BaseModel):
    ideas: list[Idea]
    summary: str | None = None


def test_schema_instances_validate_for_dict_and_pydantic_schemas():
    schema = {"type": "object", "required": ["choice", "n", "tags"],
              "properties": {"choice": {"enum": ["A", "B"]}, "n": {"type": "integer", "minimum": 3, "maximum": 5},
                             "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2}}}
    b = ScriptedBackend()
    for s in range(10):
        c = b.complete(req(seed=s, schema=schema))
        assert validate(c.data, schema) == []
        c2 = b.complete(req(seed=s, schema=Ideas.model_json_schema()))
        Ideas.model_validate(c2.data)


def test_rules_reply_then_expire_and_callables_see_the_request():
    b = ScriptedBackend(rules=[Rule(match="secret", reply="forced", times=1),
                               Rule(match="echo", reply=lambda r: r.messages[-1].content.upper())])
    assert b.complete(req("a secret")).text == "forced"
    assert b.complete(req("a secret")).text != "forced"
    assert b.complete(req("echo me")).text == "ECHO ME"


def test_rules_from_config_raise_typed_errors_and_bad_rules_are_rejected():
    llm = build_llm({"backend": "scripted", "max_retries": 1, "retry_base_s": 0,
                     "rules": [{"match": "flaky", "error": "transient", "times": 1},
                               {"match": "broken", "error": "permanent"}]})
    r = llm.chat([{"role": "user", "content": "flaky"}])  # one transient error, one retry
    assert r.usage.retries == 1
    with pytest.raises(PermanentLLMError):
        llm.chat([{"role": "user", "content": "broken"}])
    with pytest.raises(ValueError, match="exactly one of 'reply' or 'error'"):
        ScriptedBackend(rules=[{"match": "x"}])
    with pytest.raises(ValueError, match="unknown"):
        ScriptedBackend(rules=[{"match": "x", "reply": "y", "repl": 1}])


def test_transient_rule_beyond_max_retries_exhausts():
    llm = build_llm({"backend": "scripted", "max_retries": 2, "retry_base_s": 0,
                     "rules": [{"match": ".", "error": "transient"}]})
    with pytest.raises(RetriesExhausted) as ei:
        llm.chat(MSG)
    assert ei.value.attempts == 3 and isinstance(ei.value.last, TransientLLMError)
    assert llm.recorder.rows[-1]["error"] == "RetriesExhausted" and llm.recorder.rows[-1]["retries"] == 2
