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
