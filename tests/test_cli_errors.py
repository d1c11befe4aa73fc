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
