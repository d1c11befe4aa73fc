"""A run stopped midway (Ctrl-C = KeyboardInterrupt in the driver, or SIGTERM) records every LLM
call it made, including those of the sessions it stopped (job_status "interrupted"), and a resume
keeps them."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pandas as pd
import pytest
from runner_support import run

from trials.llm.scripted import ScriptedBackend
from trials.run.rundir import RunDir


@pytest.fixture(autouse=True)
def python_ctrl_c():
    """These tests simulate Ctrl-C with Python's own SIGINT handler (KeyboardInterrupt in the main
    thread); a library an earlier test loaded may have left another handler (the whole suite once
    ran this file with SIGINT not raising), so set it for each test and put the old one back."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)

BRAIN = ["experiment=brainstorm_correction", "experiment.arms.treatment.interventions=[]",
         "run.replicates=2", "experiment.steps=2", "experiment.group_size=3"]


class Counting:
    """Wraps ScriptedBackend.complete: counts the calls the backend saw; `on(n)` runs at call n."""

    def __init__(self, monkeypatch, on=None, delay_s: float = 0.0):
        self.n, self.on, self.delay_s = 0, on or (lambda n: None), delay_s
        self.lock = threading.Lock()
        real = ScriptedBackend.complete

        def complete(backend, request):
            with self.lock:
                self.n += 1
                n = self.n
            self.on(n)
            time.sleep(self.delay_s)
            return real(backend, request)
        monkeypatch.setattr(ScriptedBackend, "complete", complete)


def _calls(root) -> pd.DataFrame:
    return pd.read_parquet(root / "llm_calls.parquet")


def test_ctrl_c_in_a_sequential_session_keeps_its_calls_and_resume_counts_them(tmp_path, monkeypatch, capsys):
    def ctrl_c(n):
        if n == 8:
            raise KeyboardInterrupt  # Ctrl-C while the 8th call runs (sequential: in the driver)
    backend = Counting(monkeypatch, ctrl_c)
    root = tmp_path / "r"
    assert run(root, *BRAIN) == 130
    out = capsys.readouterr().out
    calls = _calls(root)
    # every call the backend saw (the session's other agents finish the step's calls), the one
    # cut short included: its error says so
    n = backend.n
    assert len(calls) == n >= 8
    assert set(calls["job_status"]) == {"interrupted"} and (calls["error"] == "KeyboardInterrupt").sum() == 1
    cut = calls.loc[calls["error"] == "KeyboardInterrupt"]  # its tokens are unknown, not 0
    assert cut["tokens_in"].isna().all() and cut["tokens_out"].isna().all()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["totals"]["calls"] == n and manifest["totals"]["calls_interrupted_jobs"] == n
    assert manifest["n_interrupted"] == 1 and manifest["status"] == "partial"
    assert [j["status"] for j in manifest["jobs"]].count("interrupted") == 1
    assert "1 interrupted" in out and f"{n} LLM calls" in out
    assert not list(root.glob("jobs/*/inflight/*"))
    assert list(root.glob("jobs/*/failed-calls/*.parquet"))  # counted in RunDir.attempt_costs on resume

    first = backend.n
    monkeypatch.undo()
    backend = Counting(monkeypatch)
    assert run(root, *BRAIN, f"run.resume_dir={root}") == 0
    calls = _calls(root)
    assert len(calls) == first + backend.n  # every call of both runs
    assert (calls["job_status"] == "interrupted").sum() == first
    assert json.loads((root / "manifest.json").read_text())["status"] == "complete"


def test_sigterm_stops_threaded_sessions_and_records_every_call(tmp_path, monkeypatch, capsys):
    def term(n):
        if n == 12:
            os.kill(os.getpid(), signal.SIGTERM)
    backend = Counting(monkeypatch, term, delay_s=0.02)
    root = tmp_path / "r"
    code = run(root, *BRAIN, "run.n_jobs=4", "run.backend=threading")
    seen = backend.n
    time.sleep(0.3)
    assert backend.n == seen  # no session calls on after the run returned
    assert code == 128 + signal.SIGTERM
    calls = _calls(root)
    assert len(calls) == seen  # every call the backend saw is a row
    statuses = {j["status"] for j in json.loads((root / "manifest.json").read_text())["jobs"]}
    assert "interrupted" in statuses and "interrupted" in set(calls["job_status"])
    assert "stopping the running sessions" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the run's handler is gone


def test_journal_left_by_a_killed_session_is_recorded_on_resume(tmp_path, monkeypatch):
    """A session killed outright (SIGKILL, a dead worker) leaves its calls journal; the next run
    records its rows as interrupted calls before running anything."""
    root = tmp_path / "r"
    assert run(root, *BRAIN, "run.replicates=1") == 0
    rd = RunDir(root)
    before = len(_calls(root))
    journal = rd.calls_journal("control", 0, "999-1")
    for i in range(3):
        from trials.run.rundir import append_line
        append_line(journal, {"arm": "control", "replicate": 0, "session": "control-0", "purpose": "action",
                              "backend": "scripted", "model": "scripted", "tokens_in": 5, "tokens_out": 2,
                              "cost_usd": 0.0, "cached": False, "retries": 0, "error": ""})
    with open(journal, "a") as fh:
        fh.write('{"arm": "contr')  # a line cut by the kill
    assert run(root, *BRAIN, "run.replicates=1", f"run.resume_dir={root}") == 0
    calls = _calls(root)
    assert len(calls) == before + 3 and (calls["job_status"] == "interrupted").sum() == 3
    assert not journal.exists()


def test_sigterm_on_the_openai_backend_requests_seen_equal_rows_recorded(tmp_path, monkeypatch):
    """The tester's case: a threaded run on an OpenAI-compatible endpoint stopped midway; every
    request the server saw is a row of llm_calls.parquet, priced, and counted as spent on resume."""
    from fake_openai import FakeOpenAI

    from trials.run.experiment import run_experiment
    from runner_support import config

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    price = "+llm.price={input_per_1m:1000,output_per_1m:1000}"
    hello = ["experiment=hello", "llm=openai", "llm.model=fake", "llm.max_retries=0", "judge=same", price,
             "run.replicates=12", "run.backend=threading", "run.n_jobs=4"]
    root = tmp_path / "r"
    with FakeOpenAI(latency=0.05) as srv:
        def watch():
            while srv.requests < 10:
                time.sleep(0.005)
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=watch, daemon=True).start()
        code = run_experiment(config(*hello, f"llm.base_url={srv.base_url}"), root)
        time.sleep(0.3)
        seen = srv.requests
    assert code == 128 + signal.SIGTERM
    calls = _calls(root)
    assert len(calls) == seen and calls["cost_usd"].notna().all()
    assert (calls["job_status"] == "interrupted").any()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["totals"]["calls"] == seen
    assert abs(manifest["totals"]["cost_usd"] - calls["cost_usd"].sum()) < 1e-12
    attempts = RunDir(root).attempt_costs()  # a resume's budget counts them (trials.run.budget)
    assert abs(sum(k for k, _ in attempts) - calls["cost_usd"].sum()) < 1e-12 and not any(u for _, u in attempts)


def test_export_of_a_run_with_no_finished_job_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from trials.cli import main

    def ctrl_c(n):
        if n == 2:
            raise KeyboardInterrupt
    Counting(monkeypatch, ctrl_c)
    root = tmp_path / "r"
    assert run(root, "experiment=hello") == 130
    capsys.readouterr()
    assert main(["export", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"trials export: no finished job to export in {root}; finish it with "
                   f"trials run run.resume_dir={root}")


def _openai_run(srv, *more):
    from runner_support import config

    return config("experiment=hello", "llm=openai", "llm.model=fake", "llm.max_retries=0", "judge=same",
                  "+llm.price={input_per_1m:1000,output_per_1m:1000}", f"llm.base_url={srv.base_url}", *more)


def test_second_ctrl_c_stops_waiting_but_records_every_call_and_no_session_calls_on(tmp_path, monkeypatch, capsys):
    """The tester's case: Ctrl-C, then Ctrl-C again 0.3 s later while the sessions' calls (1 s each)
    run. Before the fix the abandoned sessions kept calling (the stop flag was cleared) and their
    calls were never recorded."""
    from fake_openai import FakeOpenAI

    from trials.run.experiment import run_experiment

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    root = tmp_path / "r"
    with FakeOpenAI(latency=1.0) as srv:
        def ctrl_c_twice():
            while srv.requests < 2:
                time.sleep(0.005)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=ctrl_c_twice, daemon=True).start()
        code = run_experiment(_openai_run(srv, "run.replicates=4", "run.backend=threading", "run.n_jobs=2"), root)
        time.sleep(1.5)  # calls in flight end; an abandoned session must not start another
        seen = srv.requests
    assert code == 130
    calls = _calls(root)
    assert len(calls) == seen  # every request the server saw is a row
    cut = calls.loc[calls["error"] == "interrupted mid-call"]
    assert len(cut) and cut["cost_usd"].isna().all()  # sent, tokens unknown: cost unknown, not 0
    statuses = [j["status"] for j in json.loads((root / "manifest.json").read_text())["jobs"]]
    assert statuses.count("interrupted") == 2 and "done" not in statuses
    assert "kept " in capsys.readouterr().err
    assert not list(root.glob("jobs/*/inflight/*"))
    # the abandoned sessions wrote nothing after the run recorded them (their calls would count twice)
    assert not list(root.glob("jobs/*/*/job.json")) and len(list(root.glob("jobs/*/failed-calls/*.parquet"))) == 2


def test_a_killed_process_leaves_its_calls_in_flight_recorded_as_interrupted_mid_call(tmp_path):
    """SIGKILL while requests are in flight: the write-ahead journal has a "started" line for each;
    the resume records them (error "interrupted mid-call", cost NaN), so requests seen == rows."""
    import subprocess
    import sys

    from fake_openai import FakeOpenAI

    root = tmp_path / "r"
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "PYTHONPATH": os.pathsep.join(sys.path)}
    with FakeOpenAI(latency=0.5) as srv:
        args = ["experiment=hello", "llm=openai", "llm.model=fake", "llm.max_retries=0", "judge=same",
                "+llm.price={input_per_1m:1000,output_per_1m:1000}", f"llm.base_url={srv.base_url}",
                "run.replicates=4", "run.backend=threading", "run.n_jobs=2", "cache.mode=off",
                "run.analyze=false", "run.report=false"]
        p = subprocess.Popen([sys.executable, "-m", "trials.cli", "run", *args, f"hydra.run.dir={root}"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while srv.requests < 3 and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(0.1)  # requests in flight (0.5 s each)
        p.kill()
        p.wait()
        seen = srv.requests
    assert seen >= 3
    recovered = RunDir(root).recover_calls()
    assert sum(recovered.values()) == seen
    calls = pd.concat([pd.read_parquet(f) for f in root.glob("jobs/*/failed-calls/*.parquet")])
    cut = calls.loc[calls["error"] == "interrupted mid-call"]
    assert len(cut) >= 1 and cut["cost_usd"].isna().all() and cut["tokens_in"].isna().all()
    assert set(cut["purpose"]) <= {"action", "judge"} and (cut["prompt_chars"] > 0).all()
    assert calls.loc[calls["error"] == "", "cost_usd"].notna().all()


def test_ctrl_c_while_analysing_is_one_line_and_a_resume_rebuilds_analysis_and_report(tmp_path, monkeypatch, capsys):
    from trials.run import experiment

    root = tmp_path / "r"
    full = [*BRAIN, "run.replicates=1", "run.analyze=true", "run.report=true"]
    for step in ("_analyze", "_report"):
        def ctrl_c(*a, **k):
            raise KeyboardInterrupt
        monkeypatch.setattr(experiment, step, ctrl_c)
        assert run(root, *full) == 130
        err = capsys.readouterr().err
        doing = "analysing" if step == "_analyze" else "rendering the report"
        assert f"interrupted while {doing}: the run data is complete; rebuild the analysis and report with: " \
               f"trials run run.resume_dir={root}" in err
        assert "Traceback" not in err
        monkeypatch.undo()
    assert run(root, *full, f"run.resume_dir={root}") == 0
    assert (root / "analysis").is_dir() and (root / "report.html").is_file()


@pytest.mark.parametrize("step", ["_analyze", "_report"])
def test_a_failed_analysis_or_report_is_exit_3_with_its_reason_and_a_resume_redoes_it(tmp_path, monkeypatch, capsys,
                                                                                      step):
    from trials.run import experiment

    root = tmp_path / "r"
    full = [*BRAIN, "run.replicates=1", "run.analyze=true", "run.report=true"]

    def broken(*a, **k):
        raise ValueError("metrics.csv: value 9.000000000000002 outside\nthe 0-9 scale")
    monkeypatch.setattr(experiment, step, broken)
    assert run(root, *full) == 3
    err = capsys.readouterr().err
    command = "analyze" if step == "_analyze" else "report"
    line = [x for x in err.splitlines() if x.startswith("error: ")]
    assert line == [f"error: {command} failed (ValueError: metrics.csv: value 9.000000000000002 outside the 0-9 "
                    f"scale); the run data is intact; redo it with `trials {command} {root}` or "
                    f"`trials run run.resume_dir={root}`"]
    assert "Traceback" not in err and (root / "metrics.parquet").is_file()
    monkeypatch.undo()
    assert run(root, *full, f"run.resume_dir={root}") == 0
    assert (root / "analysis").is_dir() and (root / "report.html").is_file()
