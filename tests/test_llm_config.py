"""Every shipped conf/llm and conf/judge option composes with Hydra and validates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from trials.llm import resolve_judge_cfg
from trials.llm.config import parse_llm_config
from trials.llm.usage import load_prices

CONF = Path(__file__).resolve().parents[1] / "trials" / "conf"
LLMS = sorted(p.stem for p in (CONF / "llm").glob("*.yaml"))
JUDGES = sorted(p.stem for p in (CONF / "judge").glob("*.yaml"))


@pytest.fixture(scope="module")
def conf_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("conf")
    for group in ("llm", "judge"):
        shutil.copytree(CONF / group, root / group)
    (root / "config.yaml").write_text("defaults:\n  - llm: local\n  - judge: same\n  - _self_\n")
    return root


def test_all_options_are_shipped():
    assert set(LLMS) == {"local", "openai", "azure", "ollama", "scripted"}
    assert "same" in JUDGES and set(LLMS) <= set(JUDGES)


@pytest.mark.parametrize("llm", LLMS)
@pytest.mark.parametrize("judge", JUDGES)
def test_llm_and_judge_options_compose_and_validate(conf_dir, llm, judge):
    with initialize_config_dir(str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=[f"llm={llm}", f"judge={judge}", "++judge.max_tokens=64"])
    agent = parse_llm_config(cfg.llm)
    judged = parse_llm_config(resolve_judge_cfg(cfg.llm, cfg.judge), "judge")
    assert judged.max_tokens == 64
    if judge == "same":
        assert (judged.backend, judged.model) == (agent.backend, agent.model)
    else:
        assert judged.backend == parse_llm_config(cfg.judge, "judge").backend and judged.temperature == 0.0


def test_price_table_is_valid():
    prices = load_prices()
    assert prices and all(v["input_per_1m"] >= 0 and v["output_per_1m"] >= 0 for v in prices.values())
