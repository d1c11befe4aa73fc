"""Config errors stop before any LLM call with a message that says what to change; presets,
factorial arms, A/A announcement, the CLI entry point and `-m` sweeps."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pandas as pd
import pytest
from runner_support import CONF, ROOT, config, run

SHARED = ROOT.parent / "shared"


@pytest.mark.parametrize("overrides, needle", [
    (["run.replicates=0"], "run.replicates=0: need a whole number >= 1"),
    (["+run.replicatse=2"], "unknown key run.replicatse"),
    (["+experiment.stpes=3"], "unknown key experiment.stpes"),
    (["+experiment.arms.treatment.correctoin={threshold:5}"], "experiment.arms.treatment.correctoin"),
    (["experiment.group_size=50"], "experiment.group_size=50 but the population"),
    (["experiment.metrics=[persona_adherence,charisma]"], "['charisma'] not computed by scenario 'brainstorm'"),
    (["experiment.population.path=/nonexistent/folder"], "folder /nonexistent/folder does not exist"),
    (["experiment.control=placebo"], "experiment.control='placebo' is not an arm"),
    (["experiment.scenario=karaoke"], "experiment.scenario='karaoke' is not a scenario"),
    (["experiment.scenario=measures"], "is a helper module, not a scenario"),
    (["run.backend=spark"], "run.backend='spark': use one of"),
    (["experiment.arms.treatment.interventions=[confetti]"], "unknown ['confetti']"),
    (["+experiment.arms.treatment.correction={threshold:12}"], "experiment.arms.treatment.correction"),
    (["llm.temperature=hot"], "llm.temperature"),
    (["experiment.population.source=factory"], "experiment.population.spec is missing"),
    (["experiment.population.source=census"], "use folder or factory"),
])
def test_config_errors_name_the_key_and_call_nothing(tmp_path, capsys, overrides, needle):
    code = run(tmp_path, *overrides)
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.startswith("config error: ")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # nothing written, nothing called


def test_arm_names_must_be_safe_folder_names(tmp_path):
    from trials.run.plan import ConfigError, build_plan

    cfg = config("experiment=hello")
    cfg["experiment"]["arms"]["../escape"] = {}
    with pytest.raises(ConfigError, match="arm names become folder names"):
        build_plan(cfg, tmp_path)


@pytest.mark.parametrize("names, needle", [
    (["control", "CONTROL"], "arms 'control' and 'CONTROL' differ only in case"),  # one folder on macOS/Windows
    (["-x"], "do not start one with '-'"),  # `--control -x` is an argparse error
    (["café"], "use only ASCII letters"),  # é is a letter: "use only letters" was wrong
])
def test_arm_names_that_clash_or_mislead_are_refused(tmp_path, names, needle):
    from trials.run.plan import ConfigError, build_plan

    cfg = config("experiment=hello")
    for name in names:
        cfg["experiment"]["arms"][name] = {}
    with pytest.raises(ConfigError, match=re.escape(needle)):
        build_plan(cfg, tmp_path)


@pytest.mark.parametrize("name", [".", "..", "executions.jsonl", "a" * 201, "a\\b", "a b"])
def test_arm_names_that_are_no_folder_of_their_own_are_refused(tmp_path, capsys, name):
    """Was: an arm named '..' wrote its jobs to <run>/0, <run>/1 and <run>/inflight (outside jobs/)."""
    yaml = f"# @package experiment\ndefaults:\n  - hello\n  - _self_\narms:\n  {name!r}: {{}}\n"
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "weird.yaml").write_text(yaml.replace("'", '"'))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "trials.cli", "run", "--config-dir", str(tmp_path / "conf"),
                           "experiment=weird", "llm=scripted", "run.replicates=2", f"hydra.run.dir={out}"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"experiment.arms: arm {name!r}" in proc.stderr and "fix: rename the arm" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf"]  # nothing written, inside the run or beside it


def test_unknown_experiment_lists_the_available_ones(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trials.cli", "run", "experiment=nope", "llm=scripted",
                           f"hydra.run.dir={tmp_path}/r"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "experiment/nope" in proc.stderr and "brainstorm_variety" in proc.stderr and "hello" in proc.stderr


def test_aa_arm_is_allowed_but_announced(tmp_path, capsys):
    assert run(tmp_path, "experiment=hello", "+experiment.arms.again={}") == 0
    assert "arm 'again' is identical to control 'control': an A/A check" in capsys.readouterr().err


def test_paper_size_is_one_override_away():
    small, paper = config(), config("experiment.size=paper")
    assert (small["run"]["replicates"], small["experiment"]["group_size"], small["experiment"]["steps"]) == (2, 3, 4)
    assert (paper["run"]["replicates"], paper["experiment"]["group_size"], paper["experiment"]["steps"]) == (24, 4, 10)
    assert config("experiment.size=paper", "experiment.steps=6")["experiment"]["steps"] == 6


def test_every_experiment_config_plans(tmp_path):
    from trials.run.plan import build_plan

    for path in sorted((CONF / "experiment").glob("*.yaml")):
        cfg = config(f"experiment={path.stem}")
        plan = build_plan(cfg, tmp_path)
        assert plan.jobs and plan.control in plan.arms, path.name


def test_factorial_example_has_four_arms_and_distinct_mechanisms(tmp_path):
    from trials.run.plan import build_plan

    plan = build_plan(config("experiment=brainstorm_factorial"), tmp_path)
    control, both = "correction=off,variety=off", "correction=on,variety=on"
    assert list(plan.arms) == [control, "correction=off,variety=on", "correction=on,variety=off", both]
    assert plan.control == control and not plan.aa_arms
    assert plan.arms[both]["correction"] and plan.arms[both]["interventions"] == ["variety"]
    assert not plan.arms[control]["correction"] and not plan.arms[control]["interventions"]
    assert plan.factors == {"correction": ["off", "on"], "variety": ["off", "on"]}
    assert plan.levels["correction=on,variety=off"] == {"correction": "on", "variety": "off"}


def test_tinytroupe_folder_works_as_population(tmp_path):
    folder = SHARED / "tinytroupe-data" / "personas" / "difficult_people"
    if not folder.is_dir():
        pytest.skip("../shared/tinytroupe-data is not beside the checkout")
    assert run(tmp_path, "experiment=hello", f"experiment.population.path={folder}") == 0
    names = pd.read_parquet(tmp_path / "metrics.parquet")["agent"].unique()
    assert len(names) == 1 and (folder / f"{names[0]}.agent.json").is_file()


def test_multirun_sweep_writes_two_run_dirs_and_a_summary(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "trials.cli", "run", "-m", "experiment=hello", "llm=scripted", "cache.mode=off",
         "run.analyze=false", "run.report=false", "run.n_jobs=1", "+experiment.arms.warm={llm:{temperature:1.0}}",
         "run.seed=0,1", f"hydra.sweep.dir={tmp_path}"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p.parent for p in tmp_path.rglob("manifest.json"))
    assert len(runs) == 2 and all((r / "metrics.parquet").is_file() for r in runs)
    summary = pd.read_csv(tmp_path / "sweep_summary.csv")
    assert sorted(summary["run.seed"].unique()) == [0, 1]
    row = summary[(summary["metric"] == "persona_adherence")].iloc[0]
    assert row["effect_warm"] == pytest.approx(row["mean_warm"] - row["mean_control"])
    assert proc.stdout.strip().splitlines()[-1] == f"run directory: {tmp_path.resolve()}"

    from trials.run.sweep import main

    (tmp_path / "sweep_summary.csv").unlink()
    assert main([str(tmp_path)]) == 0 and (tmp_path / "sweep_summary.csv").is_file()


def test_factory_population_is_sampled_with_the_run_seed(tmp_path):
    from trials.run.plan import build_plan

    over = ["experiment=market_research", "experiment.population.source=factory",
            "experiment.population.spec=usa_adults", "experiment.population.n=12"]
    a, b = build_plan(config(*over), tmp_path), build_plan(config(*over), tmp_path)
    assert a.population_size == 12 and [j.personas for j in a.jobs] == [j.personas for j in b.jobs]
    other = build_plan(config(*over, "run.seed=5"), tmp_path)
    assert [j.personas for j in other.jobs] != [j.personas for j in a.jobs]


@pytest.mark.parametrize("experiment, key, value, applies", [
    ("hello", "judge_k", "3", True),           # was: "+experiment.judge_k" suggested, then refused
    ("hello", "max_actions", "3", False),      # a key of the group scenarios only
    ("hello", "arms.control.max_tokens", "30", True),
    ("market_research", "questions", "[a]", False),  # hello's material
])
def test_a_suggested_plus_key_is_then_accepted_and_no_other_is_suggested(tmp_path, monkeypatch, capsys,
                                                                         experiment, key, value, applies):
    from trials.cli import main

    monkeypatch.chdir(tmp_path)
    base = ["run", f"experiment={experiment}", "llm=scripted", "cache.mode=off", "run.dry_run=true"]
    assert main([*base, f"experiment.{key}={value}"]) == 2
    err = capsys.readouterr().err
    suggested = f"+experiment.{key}=<value>" in err
    assert suggested == applies, err
    code = main([*base, f"+experiment.{key}={value}"])
    err2 = capsys.readouterr().err
    assert (code == 0) == applies, err2  # the suggestion is never a dead end
    if not applies:
        for msg in (err, err2):
            assert f"experiment.{key} does not apply to the {experiment} scenario" in msg and "only the" in msg, msg


def test_hello_repeats_each_judgement_judge_k_times(tmp_path):
    assert run(tmp_path, "experiment=hello", "+experiment.judge_k=3") == 0
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    adherence = m[m["metric"] == "persona_adherence"]
    assert len(adherence) and (adherence["judge_k"] == 3).all() and adherence["judge_sd"].notna().all()
    assert (tmp_path / "analysis" / "judge_reliability.csv").is_file()


def test_an_unknown_scenario_lists_the_shipped_ones():
    from trials.run.plan import ConfigError, load_scenario

    with pytest.raises(ConfigError) as info:  # the list used to come from a folder that does not exist: []
        load_scenario("nope")
    assert "use one of ['brainstorm', 'debate', 'hello', 'market_research']" in str(info.value)
