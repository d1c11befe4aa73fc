"""Bad input found by a user-tester: exit 2 with one line naming the key or folder and why,
never a traceback; settings that would be silently ignored are refused."""

from __future__ import annotations

import json

import pytest

from trials.cli import main
from trials.folders import folder_problem

BASE = ["experiment=hello", "llm=scripted", "cache.mode=off", "run.analyze=false", "run.report=false"]


@pytest.fixture
def afile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path / "afile"


def _no_traceback(code: int, err: str, *words: str) -> None:
    assert code == 2 and "Traceback" not in err, err[-2000:]
    for w in words:
        assert w in err, err[-2000:]


def test_folder_problem_names_the_real_obstacle_and_leaves_nothing(tmp_path, afile):
    assert folder_problem(afile / "x") == f"{afile} is a file, so no folder can be made inside it"
    assert folder_problem(afile) == f"{afile} is a file, not a folder"
    assert folder_problem(tmp_path / "new" / "a" / "b") is None and not (tmp_path / "new").exists()
    assert folder_problem(tmp_path) is None
    assert "does not accept new folders" in folder_problem("/proc/x/y")


@pytest.mark.parametrize("cmd", [["analyze", "RUN", "--out", "afile/x"], ["report", "RUN", "--out=afile/x"],
                                 ["validate", "RUN", "--human", "h.csv", "--column", "a", "--metric", "m",
                                  "--out", "afile/x"]])
def test_out_folder_that_cannot_be_made_is_exit_2(afile, capsys, cmd):
    code = main(cmd)
    err = capsys.readouterr().err
    assert code == 2 and "is a file, so no folder can be made" in err
    _no_traceback(code, err, "--out afile/x")
    assert sorted(p.name for p in afile.parent.iterdir()) == ["afile"]  # nothing written


def test_validate_out_under_proc_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["validate", "RUN", "--human", "h.csv", "--column", "a", "--metric", "m", "--out", "/proc/x"])
    err = capsys.readouterr().err
    assert code == 2 and "/proc does not accept new folders" in err
    _no_traceback(code, err, "--out /proc/x")


def test_hydra_run_dir_that_cannot_be_made_is_exit_2_and_writes_nothing(afile, capsys):
    _no_traceback(main(["run", *BASE, "hydra.run.dir=afile/x"]), capsys.readouterr().err,
                  "hydra.run.dir=afile/x", "is a file")
    assert sorted(p.name for p in afile.parent.iterdir()) == ["afile"]


@pytest.mark.parametrize("over, words", [
    (["run.cluster=local"], ["run.cluster=local is only used with run.backend=dask"]),
    (["run.backend=dask", "run.cluster=lokal"], ["run.cluster='lokal'", "scheme://host:port"]),
    (["run.backend=dask", "run.cluster=tcp://host:notaport"], ["run.cluster='tcp://host:notaport'"]),
])
def test_run_cluster_checked_before_the_run(tmp_path, monkeypatch, capsys, over, words):
    monkeypatch.chdir(tmp_path)
    _no_traceback(main(["run", *BASE, *over]), capsys.readouterr().err, *words)
    assert list(tmp_path.iterdir()) == []  # before Hydra made its folder


def test_unreachable_dask_cluster_is_exit_2_and_the_run_stays_resumable(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    import trials.run.engines as engines

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(engines, "CONNECT_TIMEOUT_S", 1)
    root = tmp_path / "r"
    code = main(["run", *BASE, "run.backend=dask", "run.cluster=tcp://127.0.0.1:1", f"hydra.run.dir={root}"])
    _no_traceback(code, capsys.readouterr().err, "run.cluster=tcp://127.0.0.1:1", "could not connect",
                  f"run.resume_dir={root}")
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["n_not_run"] == 1
    # the record is resumable with a working engine (a resume keeps the saved one unless given)
    assert main(["run", *BASE, f"run.resume_dir={root}", "run.backend=threading", "run.cluster=null"]) == 0
    assert json.loads((root / "manifest.json").read_text())["status"] == "complete"


def test_population_path_naming_a_file_says_a_folder_is_expected(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.json").write_text('{"name": "Ann"}')
    _no_traceback(main(["run", *BASE, "experiment.population.path=p.json"]), capsys.readouterr().err,
                  "p.json is a file, but a folder of persona .json files is expected")


def test_validate_persona_on_a_folder_says_it_is_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pers" / "one").mkdir(parents=True)
    code = main(["validate-persona", "pers/one", "--expectations", "x", "llm=scripted"])
    err = capsys.readouterr().err
    _no_traceback(code, err, "pers/one: is a folder, not a persona file")
    assert "UTF-8" not in err


@pytest.mark.parametrize("over, words", [(["n=abc"], ["n='abc'", "whole number"]),
                                         (["run.seed=x"], ["run.seed='x'", "whole number"])])
def test_population_number_keys_name_key_and_type(tmp_path, monkeypatch, capsys, over, words):
    monkeypatch.chdir(tmp_path)
    code = main(["population", "llm=scripted", *over])
    err = capsys.readouterr().err
    assert code == 2 and all(w in err for w in words), err[-2000:]
    _no_traceback(code, err)


def _outcome(tmp_path, capsys, argv: list[str]) -> tuple[int, str, list]:
    """(exit status, stderr, what the command left in the working folder)."""
    code = main(argv)
    return code, capsys.readouterr().err, list(tmp_path.iterdir())


def _refused(tmp_path, capsys, argv: list[str], *words: str) -> str:
    """exit 2, one line holding `words`, no traceback, nothing written in the working folder."""
    code, err, written = _outcome(tmp_path, capsys, argv)
    _no_traceback(code, err, *words)
    assert len(err.strip().splitlines()) == 1, err
    assert written == [], written
    return err


POP = ["population", "llm=scripted", "cache.mode=off"]
CHECK = ["judge-check", "llm=scripted", "cache.mode=off"]


@pytest.mark.parametrize("argv, words", [
    (["run", *BASE, "+foo=bar"], ["unknown key foo: not a setting", "experiment.propositions.<name>"]),
    (["run", *BASE, "+run.foo=1"], ["unknown key run.foo: not a setting", "the settings of run:"]),
    (["run", *BASE, "+llm.tempreature=0.3"], ["unknown key llm.tempreature (did you mean 'llm.temperature'?)"]),
    (["run", *BASE, "+judge.tempreature=0.3"], ["(did you mean 'judge.temperature'?)"]),
    (["run", *BASE, "+run.estimate.reask_rat=0.3"], ["(did you mean 'run.estimate.reask_rate'?)"]),
    (["run", *BASE, "+run.estimate.latency_s.opnai=3"], ["(did you mean 'run.estimate.latency_s.openai'?)"]),
    (["run", *BASE, "+prices.gpt-4o.inptu_per_1m=1"], ["(did you mean 'prices.gpt-4o.input_per_1m'?)"]),
    (["run", *BASE, "+experiment.questoins=[a]"], ["(did you mean 'experiment.questions'?)", "not a setting"]),
    (["run", *BASE, "+experiment.arms.control.llm.tempreature=1"], ["(did you mean 'llm.temperature'?)"]),
    (["run", *BASE, "run.estimate.reask_rate=0.3"], ["run.estimate.reask_rate is a setting", "+run.estimate.reask_rate="]),
    ([*POP, "+foo=bar"], ["unknown key foo: not a setting"]),
    ([*POP, "+run.foo=1"], ["unknown key run.foo: not a setting", "the settings of run: seed"]),
    ([*POP, "+llm.tempreature=0.3"], ["(did you mean 'llm.temperature'?)"]),
    ([*CHECK, "+foo=bar"], ["unknown key foo: not a setting"]),
    ([*CHECK, "experiment=hello"], ["experiment: not a setting of this command"]),
    ([*CHECK, "run.replicates=3"], ["run.replicates: not a setting of this command"]),
])
def test_a_key_nobody_reads_is_refused_naming_the_closest(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    code, err, written = _outcome(tmp_path, capsys, argv)
    assert code == 2 and "Traceback" not in err, err[-2000:]
    assert [w for w in words if w not in err] == [], err  # every expected phrase is in the message
    assert len(err.strip().splitlines()) == 1, err        # one line
    assert written == [], written                          # nothing left in the working folder


@pytest.mark.parametrize("extra", [
    ["+prices.my-model={input_per_1m:1,output_per_1m:2}"],  # open: model names are yours
    ["+experiment.propositions.calm={claim:'{agent} is calm.',rubric:'0 = no, 9 = yes',level:agent,"
     "scale:0-9,higher_is_better:true}", "experiment.metrics=[calm]"],
    ["+run.estimate.latency_s.openai=3", "+run.estimate.reask_rate=0.2"],  # documented, not in config.yaml
    ["++judge.temperature=0"],
])
def test_open_sections_and_documented_additions_keep_working(tmp_path, monkeypatch, capsys, extra):
    monkeypatch.chdir(tmp_path)
    code = main(["run", *BASE, "run.dry_run=true", *extra])
    assert code == 0, capsys.readouterr().err[-2000:]


def test_an_arm_may_still_set_a_scenario_key_the_experiment_lacks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["run", "experiment=market_research", "llm=scripted", "cache.mode=off", "run.dry_run=true",
                 "+experiment.arms.treatment.instruction=Answer in one word."])
    assert code == 0, capsys.readouterr().err[-2000:]


@pytest.mark.parametrize("argv, words", [
    (["run", "experiment=hello", "cache.mode=off", "llm=scripted", "llm=local"],
     ["llm is given twice", "llm=scripted and llm=local"]),
    (["run", *BASE, "run.seed=1", "run.seed=2"], ["run.seed is given twice", "run.seed=1 and run.seed=2"]),
    (["run", *BASE, "run.seed=1", "+run.seed=2"], ["run.seed is given twice"]),
    (["run", *BASE, "-m", "run.seed=1", "run.seed=2,3"], ["run.seed is given twice"]),
    ([*POP, "population=usa_adults", "population=gazpacho_respondents"], ["population is given twice"]),
    ([*CHECK, "judge=scripted", "judge=local"], ["judge is given twice", "judge=scripted and judge=local"]),
])
def test_a_key_or_group_given_twice_is_refused_naming_both(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    code, err, written = _outcome(tmp_path, capsys, argv)
    assert code == 2 and "Traceback" not in err, err[-2000:]
    assert [w for w in words if w not in err] == [], err  # every expected phrase is in the message
    assert len(err.strip().splitlines()) == 1, err        # one line
    assert written == [], written                          # nothing left in the working folder


@pytest.mark.parametrize("over, words", [
    (["n=abc"], ["n='abc'"]), (["run.seed=x"], ["run.seed='x'"]), (["llm.temperature=hot"], ["llm.temperature"]),
    (["out="], ["out='' is empty"]), (["population.n=-1"], ["population"]),
    (["llm=openai", "llm.api_key_env=TRIALS_TEST_NO_SUCH_KEY"], ["TRIALS_TEST_NO_SUCH_KEY is not set"]),
])
def test_population_bad_override_leaves_no_outputs_folder(tmp_path, monkeypatch, capsys, over, words):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIALS_TEST_NO_SUCH_KEY", raising=False)
    argv = ["population", "cache.mode=off", *([] if "llm=openai" in over else ["llm=scripted"]), *over]
    code, err, written = _outcome(tmp_path, capsys, argv)
    assert code == 2 and "Traceback" not in err, err[-2000:]
    assert [w for w in words if w not in err] == [], err  # every expected phrase is in the message
    assert len(err.strip().splitlines()) == 1, err        # one line
    assert written == [], written                          # nothing left in the working folder


@pytest.mark.parametrize("env, value", [("OPENAI_ORG_ID", "org-abc\r"), ("OPENAI_PROJECT_ID", "proj abc"),
                                        ("OPENAI_ORG_ID", "org-abc\nX-Injected: 1")])
def test_header_variables_with_whitespace_are_refused_before_anything_runs(tmp_path, monkeypatch, capsys, env, value):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghij")
    monkeypatch.setenv(env, value)
    for argv in (["run", "experiment=hello", "llm=openai", "cache.mode=off"],
                 ["population", "llm=openai", "cache.mode=off"],
                 ["judge-check", "llm=openai", "cache.mode=off"]):
        err = _refused(tmp_path, capsys, argv, env)
        assert value.strip() not in err and "abc" not in err  # never echoed
    from trials.llm import LLMConfigError, build_llm

    with pytest.raises(LLMConfigError, match=env):  # the Python API refuses it before the first call too
        build_llm({"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"})


@pytest.mark.parametrize("over, words", [
    (["+run.estimate.reask_rate=abc"], ["run.estimate.reask_rate='abc': need a number >= 0"]),
    (["run.estimate=5"], ["run.estimate=5: give a mapping"]),
    (["+run.estimate.latency_s=3"], ["run.estimate.latency_s=3"]),
    (["++prices.gpt-4o.input_per_1m=abc"], ["prices.gpt-4o.input_per_1m='abc'"]),
    (["experiment.population.n=12"], ["experiment.population.n=12 is only read with experiment.population.source=factory"]),
    (["+experiment.population.pth=x"], ["(did you mean 'experiment.population.path'?)"]),
])
def test_malformed_run_values_are_one_line(tmp_path, monkeypatch, capsys, over, words):
    monkeypatch.chdir(tmp_path)
    argv = ["run", *BASE, "run.dry_run=true", *over]
    code, err, written = _outcome(tmp_path, capsys, argv)
    assert code == 2 and "Traceback" not in err, err[-2000:]
    assert [w for w in words if w not in err] == [], err  # every expected phrase is in the message
    assert len(err.strip().splitlines()) == 1, err        # one line
    assert written == [], written                          # nothing left in the working folder



def _own_primary(tmp_path, how: str, body: str) -> list[str]:
    """A primary config of one's own, ./yc/mine.yaml, built on the shipped config.yaml plus `body`;
    the `trials run` flags that select it: `--config-dir yc --config-name mine`, or (`how` "path")
    `--config-path <abs yc> --config-name mine` (then yc is the primary folder and the shipped
    one is reached through hydra.searchpath)."""
    import trials

    folder = tmp_path / "yc"
    folder.mkdir()
    head = "defaults:\n  - config\n  - _self_\n"
    if how == "path":
        head += f"hydra:\n  searchpath: [file://{trials.CONF_DIR}]\n"
    (folder / "mine.yaml").write_text(head + body)
    return ["--config-path" if how == "path" else "--config-dir", str(folder), "--config-name", "mine"]


@pytest.mark.parametrize("body, words", [
    ("run:\n  sede: 3\n", ["unknown key run.sede", "(did you mean 'run.seed'?)"]),
    ("llm:\n  api_key: sk-abcdefghijklmnopqrstuvwxyz123456\n", ["llm.api_key", "mine.yaml"]),
    ("experiment:\n  questoins: [a]\n", ["(did you mean 'experiment.questions'?)"]),
])
@pytest.mark.parametrize("how", ["name", "path"])
def test_another_primary_config_gets_the_same_checks_before_hydra(tmp_path, monkeypatch, capsys, body, words, how):
    """`--config-name X` (with --config-dir) and `--config-path P --config-name X` went straight to
    Hydra: runs/<date>/.hydra/ (a copy of the config, a key in it too) was written before the run
    refused, or the run went on."""
    monkeypatch.chdir(tmp_path)
    flags = _own_primary(tmp_path, how, body)
    code, err, written = _outcome(tmp_path, capsys, ["run", *flags, *BASE])
    _no_traceback(code, err, *words)
    assert len(err.strip().splitlines()) == 1, err
    assert [p.name for p in written] == ["yc"], written  # no runs/ (.hydra/) made
    assert "abcdefghijklmnop" not in err


@pytest.mark.parametrize("how", ["name", "path"])
def test_another_primary_config_that_passes_is_what_the_run_uses(tmp_path, monkeypatch, capsys, how):
    monkeypatch.chdir(tmp_path)
    flags = _own_primary(tmp_path, how, "run:\n  replicates: 3\n")
    code = main(["run", *flags, *BASE, "run.dry_run=true"])
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert "over 3 jobs" in out, out[-2000:]  # the replicates of mine.yaml
    assert [p.name for p in tmp_path.iterdir()] == ["yc"]  # a dry run writes nothing


@pytest.mark.parametrize("argv, words", [
    (["run", "--config-name", "nosuch", *BASE], ["--config-name nosuch", "no nosuch.yaml"]),
    (["run", "--config-path", "yc", "--config-name", "config", *BASE],
     ["--config-path yc", "trials package folder", "--config-dir yc"]),
])
def test_a_primary_config_that_is_not_there_is_one_line(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yc").mkdir()
    (tmp_path / "yc" / "config.yaml").write_text("run: {}\n")
    code, err, written = _outcome(tmp_path, capsys, argv)
    _no_traceback(code, err, *words)
    assert len(err.strip().splitlines()) == 1, err
    assert [p.name for p in written] == ["yc"], written


@pytest.mark.parametrize("choice, code, words", [
    # Hydra's documented precedence: the command line overrides a file's `override` (like any value)
    ("override /llm@_global_.llm: openai", 0, ["scripted backend"]),
    # a plain second choice of a group the primary config chose: Hydra refuses it; one line
    ("/llm@_global_.llm: openai", 2, ["llm appears more than once"]),
])
def test_a_group_chosen_in_a_file_and_on_the_command_line(tmp_path, monkeypatch, capsys, choice, code, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yc" / "experiment").mkdir(parents=True)
    (tmp_path / "yc" / "experiment" / "mine.yaml").write_text(f"defaults:\n  - hello\n  - {choice}\n  - _self_\n")
    got = main(["run", "--config-dir", "yc", "experiment=mine", "llm=scripted", "cache.mode=off", "run.dry_run=true"])
    out, err = capsys.readouterr()
    assert got == code and "Traceback" not in err, err[-2000:]
    assert [w for w in words if w not in out + err] == [], out + err
    assert len(err.strip().splitlines()) == (1 if code else 0), err
