"""LLM.chat/bind, structured output with repair, scores, usage and cost, config errors."""

from __future__ import annotations

import math
import threading

import pytest
from pydantic import BaseModel

from trials.llm import (CallRecorder, LLMConfigError, StructuredOutputError, build_llm, resolve_judge_cfg,
                        weighted_score)
from trials.llm.client import mix_seed
from trials.llm.structured import ParseFailure, extract_json
from trials.llm.usage import cost_usd, price_for

MSG = [{"role": "user", "content": "Say something."}]


def test_bound_seed_and_call_seed_both_change_the_answer(scripted_llm):
    llm = scripted_llm(seed=0)
    a = llm.chat(MSG).text
    assert llm.chat(MSG).text == a
    assert llm.bind(seed=1).chat(MSG).text != a
    assert llm.chat(MSG, seed=1).text != a
    assert mix_seed(5, None) == 5 and mix_seed(None, 7) == 7 and mix_seed(5, 7) != mix_seed(7, 5)


def test_bind_gives_a_separate_recorder_and_keeps_the_backend(scripted_llm):
    base = scripted_llm()
    rec = CallRecorder()
    view = base.bind(seed=3, recorder=rec)
    view.chat(MSG, purpose="judge", protocol="score")
    assert len(rec.rows) == 1 and len(base.recorder.rows) == 0
    assert view.backend == base.backend == "scripted" and view.bind().seed == 3


def test_weighted_score():
    assert weighted_score(None) is None
    assert weighted_score({3: 1.0}) == 3.0
    assert weighted_score({2: 0.25, 6: 0.25}) == pytest.approx(4.0)  # normalised over the digits
    # the mean of the digits it averages never leaves their range, even by float rounding
    assert weighted_score({9: 0.9945942581811194, 8: 1.6000109378278628e-16, 7: 9.184189676972723e-20}) <= 9.0
    assert weighted_score({0: 0.5, 3: 0.0}) == 0.0  # a digit of probability 0 does not widen the range


def test_judge_reply_has_probability_weighted_score(scripted_llm):
    r = scripted_llm().chat(MSG, purpose="judge", protocol="score", score_digits=True)
    digit = int(r.text.split()[1])
    assert r.score is not None and abs(r.score - digit) < 1.5


class Vote(BaseModel):
    choice: str
    confidence: int


def test_tolerant_parse_fences_prose_and_trailing_commas():
    assert extract_json('Sure!\n```json\n{"a": [1, 2,],}\n```') == {"a": [1, 2]}
    assert extract_json('Here: {"a": "x}"} and more {"b": 1}') == {"a": "x}"}
    assert extract_json("[1, 2, 3]") == [1, 2, 3]
    with pytest.raises(ParseFailure, match="no JSON"):
        extract_json("no json here")


def test_structured_output_repairs_once(scripted_llm):
    llm = scripted_llm(rules=[{"match": "could not be used", "reply": '{"choice": "A", "confidence": 7}'},
                              {"match": "Vote", "reply": 'I vote A, confidence "high"'}])
    r = llm.chat([{"role": "user", "content": "Vote now"}], purpose="extract", schema=Vote)
    assert r.data == Vote(choice="A", confidence=7)
    assert len(llm.recorder.rows) == 2  # the first request and the repair request


def test_structured_output_error_after_failed_repair_shows_the_reply(scripted_llm):
    llm = scripted_llm(rules=[{"match": ".", "reply": '{"choice": "A", "confidence": "high"}'}])
    with pytest.raises(StructuredOutputError, match="confidence") as ei:
        llm.chat(MSG, purpose="extract", schema=Vote)
    assert '"high"' in str(ei.value)


def test_dict_schema_is_validated(scripted_llm):
    schema = {"type": "object", "required": ["ideas"], "properties": {"ideas": {"type": "array", "items": {"type": "string"}}}}
    r = scripted_llm().chat(MSG, purpose="extract", schema=schema)
    assert isinstance(r.data["ideas"], list) and all(isinstance(i, str) for i in r.data["ideas"])


def test_costs_local_free_unknown_nan_prefix_match():
    prices = {"gpt-4o-mini": {"input_per_1m": 0.15, "output_per_1m": 0.6}}
    assert cost_usd("scripted", "x", 10, 10, prices) == 0.0
    assert cost_usd("local", "x", 10, 10, prices) == 0.0
    assert math.isnan(cost_usd("openai", "mystery-model", 10, 10, prices))
    assert price_for("gpt-4o-mini-2024-07-18", prices) == prices["gpt-4o-mini"]
    assert cost_usd("openai", "gpt-4o-mini", 1_000_000, 1_000_000, prices) == pytest.approx(0.75)


def test_recorder_summary_per_purpose_is_thread_safe(scripted_llm):
    llm = scripted_llm()

    def work(i):
        llm.chat(MSG, purpose="action" if i % 2 else "judge", seed=i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(40)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    s = llm.recorder.summary()
    assert s.loc["action", "calls"] == 20 and s.loc["judge", "calls"] == 20
    assert set(s.columns) == {"calls", "tokens_in", "tokens_out", "cost_usd", "cached", "retries"}
    assert s["tokens_out"].sum() == llm.recorder.to_frame()["tokens_out"].sum() > 0


def test_bad_config_names_the_field_and_fix():
    with pytest.raises(LLMConfigError, match=r"llm\.temperature.*conf/llm/"):
        build_llm({"backend": "scripted", "temperature": -1})
    with pytest.raises(LLMConfigError, match=r"llm\.temprature"):
        build_llm({"backend": "scripted", "temprature": 0.5})
    with pytest.raises(LLMConfigError, match=r"llm\.backend"):
        build_llm({"backend": "gpt"})
    with pytest.raises(ValueError, match="purpose"):
        build_llm({"backend": "scripted"}).chat(MSG, purpose="chitchat")


def test_resolve_judge_cfg_inherits_and_overrides():
    llm = {"backend": "openai", "model": "gpt-4o", "base_url": "http://x/v1", "temperature": 0.7}
    assert resolve_judge_cfg(llm, {}) == llm
    assert resolve_judge_cfg(llm, {"temperature": 0.0})["model"] == "gpt-4o"
    j = resolve_judge_cfg(llm, {"backend": "scripted"})
    assert j["backend"] == "scripted" and "base_url" not in j and j["temperature"] == 0.7
    build_llm(j)  # a valid config


def test_default_price_table_loads_and_prices_gpt4o_mini():
    llm = build_llm({"backend": "scripted"})
    assert llm._core.prices["gpt-4o-mini"]["input_per_1m"] > 0


def test_llm_pickles_as_a_recipe_for_worker_processes(tmp_path):
    import pickle

    llm = build_llm({"backend": "scripted", "rules": [{"match": "ping", "reply": "pong"}]},
                    cache={"path": str(tmp_path / "c.sqlite"), "mode": "read_write"})
    view = llm.bind(seed=4, recorder=CallRecorder())
    first = view.chat(MSG)
    clone = pickle.loads(pickle.dumps(view))
    assert clone.seed == 4 and len(clone.recorder.rows) == 1
    again = clone.chat(MSG)
    assert again.text == first.text and again.usage.cached  # same cache file, rebuilt connection
    assert clone.chat([{"role": "user", "content": "ping"}]).text == "pong"


def test_unknown_model_cost_is_nan_in_the_summary_not_zero():
    llm = build_llm({"backend": "scripted", "model": "x"})
    rec = CallRecorder()
    from trials.llm.base import Usage

    rec.record(Usage("judge", "openai", "mystery", 10, 5, 0.1, False, 0, math.nan))
    rec.record(Usage("judge", "openai", "gpt-4o-mini", 10, 5, 0.1, False, 0, 0.001))
    assert math.isnan(rec.summary().loc["judge", "cost_usd"])
    assert llm.chat(MSG).usage.cost_usd == 0.0
