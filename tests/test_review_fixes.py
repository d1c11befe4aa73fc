"""Small user-facing defects from the last review (CLI, run, reports, preflight): one test each."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest

import reports
from test_reports_support import make_run_dir


def _quick_analysis(run: Path, control: str | None = "control") -> None:
    import analysis

    analysis.analyze(analysis.load_table(run), control=control, n_boot=200, n_perm=500, mixed=False).write(
        run / "analysis")


def test_sweep_report_links_are_url_escaped(tmp_path):
    """A sweep point's folder is named after its values: spaces, `?` and `#` must not break the link
    (a raw `#` starts a fragment, `?` a query, a space ends a Markdown link)."""
    import re

    run = make_run_dir(tmp_path / "src", failed=None)
    _quick_analysis(run)
    root = tmp_path / "multirun"
    names = ["llm.model=gpt 4o", "llm.model=what?#1"]
    for name, temp in zip(names, (0.3, 0.9)):
        point = root / name
        shutil.copytree(run, point)
        cfg = (point / "config.yaml").read_text().replace("temperature: 0.7", f"temperature: {temp}")
        (point / "config.yaml").write_text(cfg)
    paths = reports.render(root)
    html, md = paths.html.read_text(), paths.markdown.read_text()
    hrefs = re.findall(r'<a href="([^"]+)">report.html</a>', html)
    assert hrefs == ["llm.model=gpt%204o/report.html", "llm.model=what%3F%231/report.html"]
    assert all((root / unquote(h)).is_file() for h in hrefs)
    assert "[report.html](llm.model=gpt%204o/report.html)" in md
    assert "[report.html](llm.model=what%3F%231/report.html)" in md


def _trials(tmp_path: Path, *args: str):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "trials.cli", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env)


def test_resume_writes_no_empty_hydra_folder_beside_the_run(tmp_path):
    run = tmp_path / "runs" / "hello" / "first"
    proc = _trials(tmp_path, "run", "experiment=hello", "llm=scripted", "cache.mode=off", "run.replicates=2",
                   "run.analyze=false", "run.report=false", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    overrides = (run / ".hydra" / "overrides.yaml").read_text()
    shutil.rmtree(run / "jobs" / "control" / "1")
    proc = _trials(tmp_path, "run", f"run.resume_dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming: 1 of 2 jobs already done" in proc.stderr
    assert (run / "jobs" / "control" / "1" / "job.json").is_file()
    folders = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob(".hydra"))
    assert folders == ["runs/hello/first/.hydra"]  # nothing beside the run (was runs/brainstorm_variety/<ts>/)
    assert (run / ".hydra" / "overrides.yaml").read_text() == overrides  # the run's own record is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # the run's cache.mode=off is kept: no ./.cache
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["hello"]


def test_typo_in_an_inherited_parent_experiment_lists_the_experiments_and_suggests(tmp_path, monkeypatch, capsys):
    from trials.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["init", "myconf"]) == 0
    mine = tmp_path / "myconf" / "experiment" / "mine.yaml"
    text = mine.read_text()
    assert "  - market_research" in text
    mine.write_text(text.replace("  - market_research", "  - market_reserch", 1))
    capsys.readouterr()
    assert main(["run", "--config-dir", "myconf", "experiment=mine", "llm=scripted"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("config error: myconf/experiment/mine.yaml: ")
    assert "'market_reserch'" in err and "(did you mean 'market_research'?)" in err
    assert "available: brainstorm_correction, brainstorm_factorial, brainstorm_variety, debate, " \
           "gazpacho_validation, hello, market_research (in trials/conf/experiment/ or myconf/experiment/)" in err
    assert "none" not in err and not (tmp_path / "runs").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("args", [
    ["run", "experiment=hello", "llm=scriptd"],
    ["run", "-m", "experiment=hello", "llm=scripted,scriptd"],
    ["run", "experiment=hello", "llm=scriptd", "--cfg", "job"],
    ["judge-check", "llm=scriptd"],
    ["validate-persona", "PERSONA", "--expectations", "a grumpy teacher", "llm=scriptd"],
    ["population", "population=usa_adults", "llm=scriptd"],
])
def test_a_typo_in_a_config_group_choice_is_one_line_with_the_choices_for_every_command(tmp_path, monkeypatch,
                                                                                         capsys, args):
    import trials
    from trials.cli import main

    monkeypatch.chdir(tmp_path)
    persona = sorted((Path(trials.__file__).parent / "persona" / "library" / "difficult_people").glob("*.json"))[0]
    assert main([str(persona) if a == "PERSONA" else a for a in args]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert len(err.strip().splitlines()) == 1, err
    assert "llm=scriptd: no llm/scriptd.yaml (did you mean 'scripted'?); " \
           "available: azure, local, ollama, openai, scripted (in trials/conf/llm/)" in err
    assert "Config search path" not in err and not any(tmp_path.iterdir())  # nothing written


def _section(md: str, title: str) -> str:
    start = md.index(f"\n## {title}\n")
    end = md.find("\n## ", start + 4)
    return md[start:end if end > 0 else None]


def test_report_with_another_control_describes_the_comparison_actually_made(tmp_path):
    """`trials report --control treatment --unpaired` on a run whose treatment was not delivered: the
    report must not blame 'treatment' as an undelivered treatment (it is now the baseline), must name
    the control actually used, and must not call the analysis paired."""
    import json

    from reports.cli import main

    run = make_run_dir(tmp_path, failed=None)
    _quick_analysis(run)
    man = json.loads((run / "manifest.json").read_text())
    man["paired"] = True
    man["arms"] = {"control": {"delivered": None, "mechanisms": {}, "note": "control arm"},
                   "treatment": {"delivered": False, "mechanisms": {"variety": 0},
                                 "note": "treatment not delivered: interventions never applied"}}
    (run / "manifest.json").write_text(json.dumps(man))
    own = reports.render(run).markdown.read_text()  # the run's own comparison: unchanged wording
    assert "Treatment treatment was NOT delivered (interventions never applied)" in _section(own, "Summary")
    assert "| Replicates | 5 per arm, paired |" in own

    out = tmp_path / "other"
    assert main([str(run), "--control", "treatment", "--unpaired", "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    summary, overview = _section(md, "Summary"), _section(md, "Overview")
    assert "Treatment treatment was NOT delivered" not in md and "Treatment control" not in md
    assert ("The control of these comparisons, 'treatment', did not get its own mechanism (interventions never "
            "applied): it ran like the run's control 'control'") in summary
    assert "Every comparison here is against 'treatment' (chosen with `trials report --control`)" in summary
    assert "treats them as unpaired" in summary
    assert "(control: treatment); the run's own control is control" in overview
    assert "| Replicates | 5 per arm, analysed unpaired |" in overview
    assert ": paired" not in overview and ", paired" not in overview
    caveats = _section(md, "How far to trust this run")
    assert "Arm 'treatment', the control of these comparisons, did not get its own mechanism" in caveats
    assert "Arm 'treatment': treatment not delivered" not in caveats


def test_single_arm_run_shows_each_metrics_mean_with_a_ci_in_the_report(tmp_path):
    """`hello` has one arm: the analysis makes no comparison, and its score was in no report section."""
    import numpy as np
    from statsmodels.stats.weightstats import DescrStatsW

    from runner_support import run as run_trials

    assert run_trials(tmp_path, "experiment=hello", "run.replicates=3", "run.analyze=true", "run.report=true") == 0
    md = (tmp_path / "report.md").read_text()
    results = _section(md, "Headline results")
    metrics = pd.read_parquet(tmp_path / "metrics.parquet")
    for metric, label in (("persona_adherence", "persona adherence"), ("answer_chars", "answer chars")):
        values = metrics.loc[metrics["metric"] == metric, "value"].dropna().to_numpy(float)
        assert len(values) == 3
        lo, hi = DescrStatsW(values).tconfint_mean(alpha=0.05)  # independent computation
        row = f"| control | {label} | 3 | 3 | {np.mean(values):.2f} [{lo:.2f}, {hi:.2f}] | 3 values |"
        assert row in results, results
    assert "each arm's mean per metric with its 95% CI is under Headline results" in _section(md, "Summary")


def test_arm_means_use_session_means_for_nested_values_and_say_why_a_ci_is_missing():
    import numpy as np
    from statsmodels.stats.weightstats import DescrStatsW

    from analysis.arm_means import arm_means

    rng = np.random.default_rng(3)
    rows = [{"arm": "only", "session": f"s{s}", "replicate": s, "agent": f"a{a}", "metric": "score",
             "value": float(s + rng.normal())} for s in range(4) for a in range(3)]
    rows += [{"arm": "only", "session": "s0", "replicate": 0, "agent": "", "metric": "flat", "value": 2.0},
             {"arm": "only", "session": "s1", "replicate": 1, "agent": "", "metric": "flat", "value": 2.0}]
    df = pd.DataFrame(rows)
    out = arm_means(df).set_index("metric")
    per_session = df[df["metric"] == "score"].groupby("session")["value"].mean().to_numpy()
    lo, hi = DescrStatsW(per_session).tconfint_mean()
    score = out.loc["score"]
    assert (score["unit"], score["n_units"], score["n"], score["n_sessions"]) == ("session means", 4, 12, 4)
    assert score["mean"] == pytest.approx(per_session.mean())
    assert (score["ci_low"], score["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    naive = DescrStatsW(df.loc[df["metric"] == "score", "value"].to_numpy()).tconfint_mean()
    assert score["ci_high"] - score["ci_low"] > naive[1] - naive[0]  # 12 nested values are not 12 units
    flat = out.loc["flat"]
    assert np.isnan(flat["ci_low"]) and np.isnan(flat["ci_high"]) and "no variation" in flat["note"]


@pytest.fixture(scope="module")
def market_run(tmp_path_factory):
    from runner_support import run as run_trials

    root = tmp_path_factory.mktemp("market") / "run"
    assert run_trials(root, "experiment=market_research", "run.replicates=2") == 0
    human = root.parent / "human.csv"
    pd.DataFrame({"Vote": [1, 2, 3, 4, 5, 3, 2, 4]}).to_csv(human, index=False)
    return root, human


@pytest.mark.parametrize("margin", ["-1", "0", "nan"])
def test_trials_validate_refuses_a_margin_that_is_not_positive(market_run, capsys, margin):
    from trials.cli import main

    root, human = market_run
    args = ["validate", str(root), "--human", str(human), "--column", "Vote", "--metric", "vote", "--margin", margin]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"trials validate: --margin {margin}: the equivalence margin must be > 0")
    assert "Traceback" not in err
    assert not (root / "analysis" / "validation.csv").exists()


def test_trials_validate_does_not_overwrite_an_existing_validation_without_force(market_run, capsys, tmp_path):
    from trials.cli import main

    root, human = market_run
    args = ["validate", str(root), "--human", str(human), "--column", "Vote", "--metric", "vote"]
    target = root / "analysis" / "validation.csv"
    target.unlink(missing_ok=True)
    assert main(args) == 0 and target.is_file()
    first = target.read_text()
    assert main([*args, "--margin", "1.0"]) == 2
    err = capsys.readouterr().err
    assert f"{target} already exists" in err and "--force" in err and "--out" in err
    assert target.read_text() == first  # untouched
    assert main([*args, "--margin", "1.0", "--out", str(tmp_path / "v2")]) == 0
    assert (tmp_path / "v2" / "validation.csv").is_file() and target.read_text() == first
    assert main([*args, "--margin", "1.0", "--force"]) == 0
    assert target.read_text() != first and set(pd.read_csv(target)["margin"]) == {1.0}


def test_numpy_numbers_in_a_python_config_are_plain_numbers_in_checks_messages_and_files(tmp_path, capsys):
    """A config built in Python (e.g. replicates from np.arange) was refused as
    `run.replicates=np.int64(2): need a whole number`; messages must show plain numbers."""
    import numpy as np
    import yaml

    from runner_support import config
    from trials.run.experiment import run_experiment

    cfg = config("experiment=hello")
    cfg["run"]["replicates"] = np.int64(2)
    cfg["run"]["seed"] = np.int32(3)
    assert run_experiment(cfg, tmp_path / "ok") == 0
    saved = yaml.safe_load((tmp_path / "ok" / "config.yaml").read_text())
    assert saved["run"]["replicates"] == 2 and saved["run"]["seed"] == 3
    capsys.readouterr()
    bad = config("experiment=hello")
    bad["experiment"]["steps"] = np.int64(0)
    assert run_experiment(bad, tmp_path / "bad") == 2
    err = capsys.readouterr().err
    assert "experiment.steps=0: need a whole number >= 1" in err and "np." not in err


def test_a_sweep_console_is_as_concise_as_a_single_run(tmp_path):
    """`trials run -m`: no Hydra INFO lines (`[HYDRA] Launching 2 jobs locally`, `report written`) on
    stdout or stderr; each point says which it is; INFO still reaches each point's cli.log."""
    proc = _trials(tmp_path, "run", "-m", "experiment=hello", "llm=scripted", "cache.mode=off", "run.seed=0,1",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = proc.stdout + proc.stderr
    assert "[HYDRA]" not in console and "INFO" not in console and "Launching" not in console, console
    assert "sweep point #0: experiment=hello llm=scripted cache.mode=off run.seed=0" in proc.stdout
    assert "sweep point #1: experiment=hello llm=scripted cache.mode=off run.seed=1" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == f"run directory: {(tmp_path / 'sweep').resolve()}"
    logs = sorted((tmp_path / "sweep").glob("*/cli.log"))
    assert len(logs) == 2 and all("[INFO] - report written" in log.read_text() for log in logs)


def test_an_inherited_tradeoff_metric_left_out_of_metrics_is_refused_before_anything_runs(tmp_path, monkeypatch,
                                                                                            capsys):
    from trials.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["init", "myconf"]) == 0
    mine = tmp_path / "myconf" / "experiment" / "mine.yaml"
    text = mine.read_text()
    assert "\nmetrics: [vote, wants_to_buy, persona_adherence, positive_share]" in text
    mine.write_text(text.replace("\nmetrics: [vote, wants_to_buy, persona_adherence, positive_share]",
                                 "\nmetrics: [vote, wants_to_buy]"))
    capsys.readouterr()
    assert main(["run", "--config-dir", "myconf", "experiment=mine", "llm=scripted"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("config error: experiment.tradeoff=[vote, persona_adherence] (set in "
                          "myconf/experiment/mine.yaml")
    assert "persona_adherence is not among the experiment's metrics ['vote', 'wants_to_buy']" in err
    assert not (tmp_path / "runs").exists()
    # a shipped preset narrowed on the command line: the file named is the shipped one
    assert main(["run", "experiment=brainstorm_variety", "llm=scripted", "experiment.metrics=[ideas,fluency]"]) == 2
    err = capsys.readouterr().err
    assert "(set in trials/conf/experiment/brainstorm_variety.yaml" in err and "['ideas', 'fluency']" in err
    # the fix the message gives works
    assert main(["run", "experiment=brainstorm_variety", "llm=scripted", "experiment.metrics=[ideas,fluency]",
                 "experiment.tradeoff=[ideas,fluency]", "run.dry_run=true"]) == 0


def test_readme_lists_the_effects_columns_analysis_writes():
    """The README's run-directory contract names effects.csv's real columns, in order.

    (The contract lives in the repo: ../shared/DESIGN.md is not ours to ship, and CI's copy is pristine.)"""
    import re

    from analysis.comparison import COLUMNS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `analysis/effects.csv` |"))
    listed = re.findall(r"`([a-z_]+)`", row.split("columns in this order:", 1)[1].split("(", 1)[0])
    assert listed == [*COLUMNS, "treatment_delivered"]
    # and the table analysis writes really has them, in that order
    import numpy as np
    import pandas as pd

    from analysis import analyze
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"arm": np.repeat(["control", "treatment"], 40),
                          "replicate": 0, "session": np.tile(np.repeat(range(8), 5), 2),
                          "agent": np.tile(range(5), 16), "metric": "m", "value": rng.normal(size=80)})
    effects = analyze(table, n_boot=1000, n_perm=1000, mixed=False).effects
    assert list(effects.columns) == listed
