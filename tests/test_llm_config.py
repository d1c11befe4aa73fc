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


@pytest.mark.parametrize("key,value", [("timeout", "inf"), ("timeout", "1e20"), ("timeout", "nan"), ("timeout", "0"),
                                       ("retry_base_s", "inf"), ("retry_max_s", "1e300"), ("rpm", "inf"),
                                       ("tpm", "nan"), ("temperature", "nan"), ("max_tokens", "10000000000000"),
                                       ("max_concurrency", "1000000000000"), ("max_retries", "1000000000")])
@pytest.mark.parametrize("where", ["llm", "judge"])
def test_non_finite_or_absurd_numbers_are_exit_2_naming_the_key(tmp_path, monkeypatch, capsys, key, value, where):
    # a tester's llm.timeout=inf / 1e20 passed here and failed every job (OverflowError)
    from trials.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["run", "experiment=hello", "llm=scripted", "judge=scripted", "cache.mode=off",
                 f"++{where}.{key}={value}"])
    err = capsys.readouterr().err
    assert code == 2 and f"{where}.{key}:" in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.parquet"))


def test_the_bounds_themselves_are_accepted():
    from trials.llm.config import MAX_PER_MIN, MAX_WAIT_S

    cfg = parse_llm_config({"backend": "scripted", "timeout": MAX_WAIT_S, "retry_max_s": MAX_WAIT_S,
                            "rpm": MAX_PER_MIN, "max_tokens": 1_000_000, "max_concurrency": 100_000})
    assert cfg.timeout == 86_400 and cfg.rpm == 1e12
