"""A resume may change where and how fast the model calls go (trials.run.resume.TRANSPORT_KEYS),
so a run started with a mistyped URL or port can be finished; the model stays the design."""

from __future__ import annotations

import json

import yaml

from trials.cli import main


def test_resume_takes_new_transport_settings_and_records_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first = tmp_path / "r1"
    base = ["llm=scripted", "cache.mode=off", "run.report=false", "run.analyze=false"]
    assert main(["run", "experiment=hello", *base, "llm.base_url=http://127.0.0.1:1/v1",
                 f"hydra.run.dir={first}"]) == 0
    capsys.readouterr()
    # the model is the design: still refused
    assert main(["run", *base, f"run.resume_dir={first}", "llm.temperature=0.1"]) == 2
    assert "llm.temperature: 0.7 -> 0.1" in capsys.readouterr().err
    # transport: taken, including keys the default llm group lacks (rpm) and the empty judge=same
    code = main(["run", *base, f"run.resume_dir={first}", "llm.base_url=http://127.0.0.1:8000/v1",
                 "llm.timeout=5", "llm.max_retries=1", "llm.max_concurrency=3", "llm.rpm=60", "llm.tpm=1000",
                 "llm.api_key_env=MY_KEY", "judge.base_url=http://127.0.0.1:8001/v1", "judge.timeout=7"])
    err = capsys.readouterr().err
    assert code == 0, err
    changed = json.loads((first / "manifest.json").read_text())["resumes"][-1]["changed"]
    assert changed["llm.base_url"] == ["http://127.0.0.1:1/v1", "http://127.0.0.1:8000/v1"]
    assert changed["llm.rpm"] == [None, 60] and changed["judge.timeout"] == [None, 7]
    assert {"llm.timeout", "llm.max_retries", "llm.max_concurrency", "llm.tpm", "llm.api_key_env",
            "judge.base_url"} <= set(changed)
    saved = yaml.safe_load((first / "config.yaml").read_text())
    assert saved["llm"]["base_url"] == "http://127.0.0.1:8000/v1" and saved["llm"]["rpm"] == 60
    assert saved["llm"]["temperature"] == 0.7 and saved["judge"]["timeout"] == 7


def test_transport_keys_set_inside_an_arm_are_transport_too(tmp_path, monkeypatch, capsys):
    """An arm's own `llm.base_url` (a model comparison against another endpoint) may be fixed on
    resume like the top-level one; the arm's temperature stays the design."""
    monkeypatch.chdir(tmp_path)
    first = tmp_path / "r1"
    base = ["llm=scripted", "cache.mode=off", "run.report=false", "run.analyze=false"]
    arm = "+experiment.arms.big={llm:{base_url:'http://127.0.0.1:1/v1',timeout:5,temperature:0.5}}"
    assert main(["run", "experiment=hello", *base, arm, f"hydra.run.dir={first}"]) == 0
    capsys.readouterr()
    assert main(["run", *base, f"run.resume_dir={first}", "+experiment.arms.big.llm.temperature=0.9"]) == 2
    assert "experiment.arms.big.llm.temperature: 0.5 -> 0.9" in capsys.readouterr().err
    code = main(["run", *base, f"run.resume_dir={first}", "experiment.arms.big.llm.base_url=http://127.0.0.1:2/v1",
                 "experiment.arms.big.llm.timeout=9", "experiment.arms.big.llm.rpm=30"])
    assert code == 0, capsys.readouterr().err
    changed = json.loads((first / "manifest.json").read_text())["resumes"][-1]["changed"]
    assert changed == {"experiment.arms.big.llm.base_url": ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"],
                       "experiment.arms.big.llm.timeout": [5, 9], "experiment.arms.big.llm.rpm": [None, 30]}
    saved = yaml.safe_load((first / "config.yaml").read_text())["experiment"]["arms"]["big"]["llm"]
    assert saved == {"base_url": "http://127.0.0.1:2/v1", "timeout": 9, "rpm": 30, "temperature": 0.5}


def test_apply_transport_finds_an_arm_whose_name_holds_dots():
    from trials.run.resume import apply_transport, is_transport

    old = {"experiment": {"arms": {"v1.2": {"llm": {"model": "m", "timeout": 5}}}}, "llm": {"timeout": 1}}
    apply_transport(old, {"experiment.arms.v1.2.llm.timeout": [5, 9], "llm.rpm": [None, 3],
                          "experiment.arms.v1.2.llm.model": ["m", "x"]})  # not transport: not applied
    assert old == {"experiment": {"arms": {"v1.2": {"llm": {"model": "m", "timeout": 9}}}},
                   "llm": {"timeout": 1, "rpm": 3}}
    assert is_transport("experiment.factors.model.big.judge.base_url") and not is_transport("llm.temperature")
