"""Issue #13 item 6: what would certainly fail is refused before any job starts or any file is
written -- exit status 2, one message naming the key or file and the fix, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from runner_support import ROOT

from trials.cli import main

PERSONA = {"name": "Ana Souza", "age": 34, "occupation": {"title": "Nurse"}}


def _trials_run(tmp_path: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(tmp_path)
    base = [] if any(a.startswith("cache.mode=") for a in args) else ["cache.mode=off"]  # a key given once
    code = main(["run", *base, *args])
    out, err = capsys.readouterr()
    return code, out, err


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _persona_folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "people"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("args, needle", [
    (["llm=openai", "llm.api_key_env=TRIALS_TEST_NO_SUCH_KEY"],
     "environment variable TRIALS_TEST_NO_SUCH_KEY is not set"),
    (["llm.model=gpt-4o-mini"], "llm.model='gpt-4o-mini' has no effect with llm=local"),
    (["llm=ollama", "llm.base_url=localhost:11434/v1"], "llm.base_url='localhost:11434/v1' is not an http(s) URL"),
    (["llm=scripted", "judge=openai", "judge.api_key_env=TRIALS_TEST_NO_SUCH_KEY"],
     "environment variable TRIALS_TEST_NO_SUCH_KEY is not set"),
    (["llm=scripted", "run.seed=abc"], "run.seed='abc': need a whole number >= 0"),
    (["llm=scripted", "run.budget_usd=abc"], "run.budget_usd='abc': need a number >= 0"),
    (["llm=scripted", "experiment.steps=-1"], "experiment.steps=-1: need a whole number >= 1"),
    (["llm=scripted", "experiment.size=big"], "experiment.size='big': use one of ['small', 'paper']"),
    (["llm=scripted", "experiment.population.path=library:nope"],
     "experiment.population.path='library:nope': no shipped persona set 'nope'"),
    (["llm=scripted", "experiment.population.path=library:genral"], "(did you mean 'general'?)"),
    (["llm=scripted", "+experiment.stpes=3"], "unknown key experiment.stpes (did you mean 'experiment.steps'?)"),
    (["llm=scripted", "run.threads_per_session=many"], "run.threads_per_session='many': need a whole number"),
    (["llm=scripted", "run.paired=maybe"], "run.paired='maybe': use true or false"),
    (["llm=scripted", "experiment=hello", "experiment.max_tokens=lots"], "experiment.max_tokens='lots'"),
    (["llm=scripted", "cache.mode=replya"], "cache.mode='replya' (did you mean 'replay'?)"),
    (["llm=scripted", "run.sed=3"], "unknown key run.sed (did you mean 'run.seed'?)"),
    (["llm=scripted", "-m", "experiment.stpes=1,2"], "unknown key experiment.stpes (did you mean 'experiment.steps'?)"),
    (["llm=scripted", "experiment=helo"], "experiment=helo: no experiment/helo.yaml (did you mean 'hello'?)"),
    (["llm=scripted", "experiment=market_research", "+experiment.arms.treatment.prodcts=[x]"],
     "unknown key experiment.arms.treatment.prodcts (did you mean 'experiment.arms.treatment.products'?)"),
    # was: exit 1 after every job failed at its first call
    (["llm=scripted", "+prices.fake.input_per_1m=1"], "config error: prices: entry 'fake' has no output_per_1m"),
])
def test_refused_with_exit_2_naming_the_key_and_nothing_written(tmp_path, monkeypatch, capsys, args, needle):
    monkeypatch.delenv("TRIALS_TEST_NO_SUCH_KEY", raising=False)
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, *args)
    assert code == 2, err
    assert needle in err and "Traceback" not in err + out
    assert err.count("config error:") == 1  # one message, not one per job
    assert _files(tmp_path) == []  # not even Hydra's .hydra/ or a log


def test_a_key_passed_as_the_env_var_name_is_refused_and_never_written(tmp_path, monkeypatch, capsys):
    secret = "sk-" + "t3st" * 8
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "llm=openai", f"llm.api_key_env={secret}")
    assert code == 2 and "llm.api_key_env=<hidden>" in err and "NAME of an environment variable" in err
    assert secret not in out + err and _files(tmp_path) == []
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "llm=scripted", f"+llm.api_key={secret}")
    assert code == 2 and "looks like an API key" in err and secret not in out + err and _files(tmp_path) == []
    assert main(["population", "llm=openai", f"llm.api_key_env={secret}"]) == 2
    out, err = capsys.readouterr()
    assert "llm.api_key_env=<hidden>" in err and secret not in out + err and _files(tmp_path) == []


SECRET = "sk-test-SECRET123456789"


@pytest.mark.parametrize("file, text, override, named", [
    ("llm/mykey.yaml", f"backend: scripted\nmodel: scripted\napi_key: {SECRET}\n", "llm=mykey", "llm.api_key"),
    ("experiment/mine.yaml", f"# @package experiment\ndefaults:\n  - hello\n  - _self_\nname: mine\n"
     f"description: token {SECRET}\n", "experiment=mine", "experiment.description"),
])
def test_a_key_in_a_config_file_is_refused_naming_the_file_and_never_written(tmp_path, monkeypatch, capsys, file,
                                                                            text, override, named):
    # was: "Extra inputs are not permitted (got 'sk-test-...')" on the console, and a key-like
    # value in an experiment file copied into config.yaml, manifest.json, .hydra/ and report.html
    (tmp_path / "yc" / file).parent.mkdir(parents=True)
    (tmp_path / "yc" / file).write_text(text)
    args = ["--config-dir", "yc", *(["experiment=hello", override] if override.startswith("llm=")
                                    else [override, "llm=scripted"])]
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, *args)
    assert code == 2 and "Traceback" not in out + err
    assert f"{Path('yc') / file}: {named}=<hidden>" in err and "llm.api_key_env" in err
    assert SECRET not in out + err
    leaked = [p for p in _files(tmp_path) if SECRET in p.read_text(errors="replace")]
    assert leaked == [tmp_path / "yc" / file]  # only the user's own file: no run dir, no .hydra/
    assert main(["run", "--config-dir", "yc", *args[2:], "--cfg", "job"]) == 2  # nor printed
    out, err = capsys.readouterr()
    assert SECRET not in out + err


def test_a_key_from_a_command_line_interpolation_names_the_override_not_a_file(tmp_path, monkeypatch, capsys):
    # was: "trials/conf/experiment/hello.yaml: ... remove it from" the shipped file (and, with
    # --config-dir, any file of that folder holding `questions:`, used by the run or not)
    monkeypatch.setenv("TRIALS_TEST_KEY", SECRET)
    (tmp_path / "yc" / "experiment").mkdir(parents=True)
    (tmp_path / "yc" / "experiment" / "unused.yaml").write_text("questions: [x]\nnotes: ${oc.env:TRIALS_TEST_KEY}\n")
    for extra in ([], ["--config-dir", "yc"]):
        code, out, err = _trials_run(tmp_path, monkeypatch, capsys, *extra, "llm=scripted", "experiment=hello",
                                     "experiment.questions=[${oc.env:TRIALS_TEST_KEY}]")
        assert code == 2 and err.startswith("config error: command line override experiment.questions=<hidden>: ")
        assert "remove it from the command line" in err and "hello.yaml" not in err and "unused" not in err
        assert SECRET not in out + err


def test_a_key_in_a_file_names_the_file_the_run_used(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TRIALS_TEST_KEY", SECRET)
    folder = tmp_path / "yc" / "experiment"
    folder.mkdir(parents=True)
    (folder / "a_unused.yaml").write_text("notes: ${oc.env:TRIALS_TEST_KEY}\n")  # found first by a folder search
    (folder / "mine.yaml").write_text("# @package experiment\ndefaults:\n  - hello\n  - _self_\nname: mine\n"
                                      "description: ${oc.env:TRIALS_TEST_KEY}\nnotes: x\n")
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "--config-dir", "yc", "llm=scripted", "experiment=mine")
    assert code == 2 and f"{Path('yc') / 'experiment' / 'mine.yaml'}: experiment.description=<hidden>" in err, err
    assert "a_unused" not in err and SECRET not in out + err


def test_llm_config_errors_never_echo_a_key_like_value():
    from trials.llm.config import LLMConfigError, parse_llm_config

    for bad in ({"api_key": SECRET}, {"temperature": SECRET}, {"model": ["x", SECRET]}):
        with pytest.raises(LLMConfigError) as info:
            parse_llm_config({"backend": "scripted", **bad})
        assert SECRET not in str(info.value)
        assert "<hidden>" in str(info.value) or "unknown key llm.api_key" in str(info.value)
    with pytest.raises(LLMConfigError, match=r"got 'hot'"):  # an ordinary bad value is still shown
        parse_llm_config({"backend": "scripted", "temperature": "hot"})


def test_the_python_api_refuses_a_key_in_the_config_before_writing(tmp_path):
    from trials.run.errors import ConfigError
    from trials.run.preflight import check_config_secrets

    with pytest.raises(ConfigError, match=r"experiment.notes=<hidden>") as info:
        check_config_secrets({"experiment": {"notes": f"Bearer {SECRET}"}, "hydra": {}})
    assert SECRET not in str(info.value)
    check_config_secrets({"experiment": {"notes": "sk-short", "tokens": 3}})  # not a key: accepted


@pytest.mark.parametrize("command", [["judge-check"], ["validate-persona", "p.json", "--expectations", "kind"]])
@pytest.mark.parametrize("override", ["llm.api_key={secret}", "+llm.api_key={secret}", "llm.model={secret}"])
def test_check_commands_refuse_a_key_without_echoing_or_writing_it(tmp_path, monkeypatch, capsys, command, override):
    secret = "sk-" + "t3st" * 8
    monkeypatch.chdir(tmp_path)
    assert main([*command, "llm=scripted", override.format(secret=secret), "--out", str(tmp_path / "o")]) == 2
    out, err = capsys.readouterr()
    assert "looks like an API key" in err and secret not in out + err and _files(tmp_path) == []


def test_unwritable_cache_path_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "llm=scripted", "cache.mode=read_write",
                                 f"cache.path={tmp_path / 'a_file' / 'llm.sqlite'}")
    assert code == 2 and "cache.path=" in err and "cannot write there" in err and "Traceback" not in err
    assert "a_file is a file, not a folder" in err  # the real obstacle, not the cwd
    assert _files(tmp_path) == [tmp_path / "a_file"]


def test_cache_path_naming_a_folder_says_it_must_name_a_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "cachedir").mkdir()
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "llm=scripted", "cache.mode=read_write",
                                 f"cache.path={tmp_path / 'cachedir'}")
    assert code == 2 and "cachedir is a folder" in err and "llm_cache.sqlite" in err


def test_duplicate_persona_names_name_both_files(tmp_path, monkeypatch, capsys):
    data = json.dumps(PERSONA).encode()
    folder = _persona_folder(tmp_path, {"ana.json": data, "ana_copy.json": data})
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "llm=scripted", "experiment=hello",
                                 f"experiment.population.path={folder}")
    assert code == 2 and "persona name 'Ana Souza' appears in ana.json and ana_copy.json" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()


def test_hundred_thousand_deep_json_names_the_file(tmp_path, monkeypatch, capsys):
    folder = _persona_folder(tmp_path, {"deep.json": b"[" * 100_000 + b"]" * 100_000,
                                        "ana.json": json.dumps(PERSONA).encode()})
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "llm=scripted", "experiment=hello",
                                 f"experiment.population.path={folder}")
    assert code == 2 and f"{folder / 'deep.json'}: JSON nested too deeply" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()


def test_persona_file_with_a_utf8_bom_is_accepted(tmp_path, monkeypatch, capsys):
    folder = _persona_folder(tmp_path, {"ana.json": b"\xef\xbb\xbf" + json.dumps(PERSONA).encode()})
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "llm=scripted", "experiment=hello",
                                 f"experiment.population.path={folder}", "run.analyze=false",
                                 "run.report=false", "run.n_jobs=1")
    assert code == 0, err
    run_dir = Path(out.strip().splitlines()[-1].removeprefix("run directory: "))
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
    assert "Ana Souza" in (run_dir / "transcript.jsonl").read_text()


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch, capsys):
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "llm=scripted", "run.dry_run=true",
                                 "experiment=brainstorm_factorial")
    assert code == 0 and "dry run: nothing was called" in out
    assert "correction=on,variety=on" in out  # the plan table lists the arms
    assert _files(tmp_path) == []


def test_from_a_shell_exit_2_and_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRIALS_TEST_NO_SUCH_KEY", None)
    proc = subprocess.run([sys.executable, "-m", "trials.cli", "run", "llm=openai",
                           "llm.api_key_env=TRIALS_TEST_NO_SUCH_KEY", "experiment.size=paper"],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("TRIALS_TEST_NO_SUCH_KEY is not set") == 1  # once, not per job
    assert _files(tmp_path) == []


def test_sweep_dry_run_prints_every_point_and_a_bad_point_stops_the_sweep(tmp_path, monkeypatch, capsys):
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "-m", "llm=scripted", "experiment=hello",
                                 "llm.model=a,b", "run.dry_run=true")
    assert code == 0 and out.count("dry run: nothing was called") == 2 and "sweep point 2/2" in out
    code, out, err = _trials_run(tmp_path, monkeypatch, capsys, "-m", "llm=scripted",
                                 "experiment.size=small,big")
    assert code == 2 and "experiment.size='big'" in err and "Traceback" not in err
    assert _files(tmp_path) == []
