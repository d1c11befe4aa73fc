"""The local backend (llama-cpp-python + the embedded SmolLM2 GGUF). Tests that run the model are
marked local_model and kept short (few tokens)."""

from __future__ import annotations

import re
import threading

import pytest
from pydantic import BaseModel

from trials.llm import CallRecorder, LLMConfigError, build_llm

PERSONA = [{"role": "system", "content": "You are Maria Lopes, a 45-year-old nurse from Lisbon. "
                                         "Answer as Maria, in the first person, in one or two sentences."},
           {"role": "user", "content": "What do you think about night shifts?"}]
JUDGE = [{"role": "system", "content": "You are a strict judge. Reply exactly: Score: <0-9>\nReason: <one sentence>"},
         {"role": "user", "content": "Claim: the text is about nursing work.\nText: I am a nurse and night "
                                     "shifts at the hospital are tiring.\nHow true is the claim, 0 to 9?"}]


def test_missing_model_path_is_a_clear_config_error(tmp_path):
    with pytest.raises(LLMConfigError, match=r"llm\.model_path: no GGUF file"):
        build_llm({"backend": "local", "model_path": str(tmp_path / "nope.gguf")})


@pytest.fixture(scope="module")
def local_llm():
    pytest.importorskip("llama_cpp")
    return build_llm({"backend": "local", "max_tokens": 16, "temperature": 0.7})


@pytest.mark.local_model
def test_local_model_answers_in_persona_and_judges_0_to_9(local_llm):
    llm = local_llm.bind(seed=3, recorder=CallRecorder())
    answer = llm.chat(PERSONA, purpose="action")
    assert answer.text.strip() and answer.usage.tokens_out > 0 and answer.usage.cost_usd == 0.0
    verdict = llm.chat(JUDGE, purpose="judge", protocol="score", score_digits=True, temperature=0.0, max_tokens=8)
    m = re.match(r"Score:\s*(\d)", verdict.text)
    assert m and 0 <= int(m.group(1)) <= 9, verdict.text
    assert verdict.digit_probs is not None and sum(verdict.digit_probs.values()) > 0.5  # mass on digits
    assert 0.0 <= verdict.score <= 9.0
    assert llm.bind(seed=3, recorder=CallRecorder()).chat(PERSONA, purpose="action").text == answer.text


class Vote(BaseModel):
    choice: str
    confidence: int


@pytest.mark.local_model
def test_local_schema_call_is_grammar_constrained_and_threads_are_serialised(local_llm):
    llm = local_llm.bind(seed=1, recorder=CallRecorder())
    out: list = []
    threads = [threading.Thread(target=lambda i=i: out.append(llm.chat(
        [{"role": "user", "content": "Vote A or B."}], purpose="extract", schema=Vote, seed=i, max_tokens=24)))
        for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(out) == 2 and all(isinstance(r.data, Vote) for r in out)


@pytest.mark.local_model
def test_judge_reuses_the_cached_prompt_prefix_without_changing_the_score(local_llm):
    """Judge prompts differing only in the claim reuse the KV cache (prefix), and the digit
    probabilities equal those of a fresh evaluation."""
    llm = local_llm.bind(seed=2, recorder=CallRecorder())
    other = [JUDGE[0], {"role": "user", "content": JUDGE[1]["content"].replace("nursing work", "cooking")}]
    ask = lambda msgs: llm.chat(msgs, purpose="judge", protocol="score", score_digits=True,  # noqa: E731
                                temperature=0.0, max_tokens=4)
    backend = local_llm._core.backend
    with backend._lock:
        backend._llama.reset()
    fresh = ask(JUDGE)
    ask(other)
    reused = ask(JUDGE)  # only the claim's tokens differ from the previous prompt
    assert reused.digit_probs == pytest.approx(fresh.digit_probs, abs=1e-3)
    assert reused.text == fresh.text
