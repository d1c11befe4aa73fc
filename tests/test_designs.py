"""Issue #13: experiments as designs -- arms that vary any key, factorial designs, your own
experiment folder and propositions, and an estimate that prices the judge separately."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from runner_support import config, run

from trials.cli import main

PITCH_A = "A desk lamp with a warm light, 45 dollars."
PITCH_B = "A desk lamp that dims itself at bedtime to help you sleep, 45 dollars."

MINE = f"""\
# @package experiment
defaults: [market_research]
name: lamp_ab
control: pitch_a
arms:
  control: null
  treatment: null
  pitch_a: {{products: ["{PITCH_A}"]}}
  pitch_b: {{products: ["{PITCH_B}"]}}
propositions:
  wants_to_buy:
    claim: "{{agent}} clearly wants to buy the product."
    rubric: "0 = refuses outright, 5 = undecided, 9 = eager to buy now."
    level: agent
    scale: 0-9
    higher_is_better: true
metrics: [vote, wants_to_buy]
tradeoff: [vote, wants_to_buy]   # the inherited pair names persona_adherence, which metrics leaves out
"""


def _events(run_dir: Path) -> pd.DataFrame:
    return pd.DataFrame([json.loads(line) for line in (run_dir / "transcript.jsonl").read_text().splitlines()])


def test_own_experiment_in_a_folder_two_pitches_and_an_own_proposition(tmp_path, monkeypatch, capsys):
    (tmp_path / "myconf" / "experiment").mkdir(parents=True)
    (tmp_path / "myconf" / "experiment" / "lamp_ab.yaml").write_text(MINE)
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--config-dir", "myconf", "experiment=lamp_ab", "llm=scripted", "cache.mode=off",
                 "run.n_jobs=1", "run.report=false"])
    out, err = capsys.readouterr()
    assert code == 0, err
    run_dir = Path(out.strip().splitlines()[-1].removeprefix("run directory: "))
    assert run_dir.parent.name == "lamp_ab"

    events = _events(run_dir)
    assert set(events["arm"]) == {"pitch_a", "pitch_b"}
    for arm, mine, other in (("pitch_a", PITCH_A, PITCH_B), ("pitch_b", PITCH_B, PITCH_A)):
        text = "\n".join(events.loc[events["arm"] == arm, "content"].astype(str))
        assert mine in text and other not in text  # each arm's pitch in its own transcript only

    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    own = metrics[metrics["metric"] == "wants_to_buy"]
    assert set(own.loc[own["value"].notna(), "arm"]) == {"pitch_a", "pitch_b"}  # measured in both arms
    assert (own.loc[own["value"].isna(), "missing_reason"] != "").all()  # a gap always has its reason
    assert set(own["scale"]) == {"0-9"} and set(own["level"]) == {"agent"}

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["control"] == "pitch_a"
    assert manifest["arm_configs"]["pitch_b"]["products"] == [PITCH_B]
    assert manifest["propositions"]["wants_to_buy"]["higher_is_better"] is True
    job = json.loads((run_dir / "jobs" / "pitch_b" / "0" / "job.json").read_text())
    assert job["arm_config"]["products"] == [PITCH_B] and job["material"] == PITCH_B
    # paired: replicate r of both arms has the same people and seed
    job_a = json.loads((run_dir / "jobs" / "pitch_a" / "0" / "job.json").read_text())
    assert job_a["personas"] == job["personas"] and job_a["seed"] == job["seed"]


def test_the_report_table_shows_every_differing_key(tmp_path):
    from reports.load import load
    from reports.runinfo import config_diff

    assert run(tmp_path, "experiment=market_research", "run.replicates=1", "run.report=false",
               "+experiment.arms.treatment.question=Would you pay for it?",
               "+experiment.arms.treatment.group_size=2", "+experiment.arms.treatment.llm={temperature:1.1}") == 0
    rows = {(arm, key): (a, b) for arm, key, a, b in config_diff(load(tmp_path))}
    assert rows[("treatment", "question")] == ("Would you buy this product?", "Would you pay for it?")
    assert rows[("treatment", "group_size")] == ("4", "2")
    assert rows[("treatment", "llm.temperature")] == ("0.7", "1.1")
    assert ("treatment", "correction.threshold") in rows


def test_an_arm_overrides_population_steps_and_judge(tmp_path):
    from trials.run.plan import build_plan

    plan = build_plan(config("experiment=brainstorm_variety", "run.replicates=2",
                             "+experiment.arms.treatment.population={path:'library:general'}",
                             "+experiment.arms.treatment.steps=2",
                             "+experiment.arms.treatment.judge={temperature:0.0}"), tmp_path)
    by = {(j.arm, j.replicate): j for j in plan.jobs}
    general = {p.stem for p in (Path(__file__).parents[1] / "trials/persona/library/general").glob("*.json")}
    for r in range(2):
        control, treat = by[("control", r)], by[("treatment", r)]
        assert control.seed == treat.seed and treat.experiment["steps"] == 2 and control.experiment["steps"] == 4
        assert {p["name"] for p in treat.personas} != {p["name"] for p in control.personas}
        assert treat.judge["temperature"] == 0.0 and control.judge["temperature"] != 0.0
    assert all(p["name"] for p in by[("treatment", 0)].personas) and general


def test_arm_key_that_is_fixed_for_the_experiment_is_refused(tmp_path):
    from trials.run.plan import ConfigError, build_plan

    with pytest.raises(ConfigError, match="experiment.arms.treatment.scenario: it is fixed"):
        build_plan(config("experiment=market_research", "+experiment.arms.treatment.scenario=debate"), tmp_path)


def test_factorial_cells_give_factor_columns_and_manifest_factors(tmp_path):
    assert run(tmp_path, "experiment=brainstorm_factorial", "run.replicates=1", "experiment.steps=1",
               "run.report=false", "run.analyze=false") == 0
    metrics = pd.read_parquet(tmp_path / "metrics.parquet")
    cells = metrics.drop_duplicates("arm").set_index("arm")[["factor_correction", "factor_variety"]]
    assert cells.loc["correction=on,variety=off"].tolist() == ["on", "off"]
    assert cells.loc["correction=off,variety=on"].tolist() == ["off", "on"]
    assert len(cells) == 4
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["factors"] == {"correction": ["off", "on"], "variety": ["off", "on"]}
    assert manifest["control"] == "correction=off,variety=off"


def test_factors_that_set_the_same_key_are_refused(tmp_path):
    from trials.run.plan import ConfigError, build_plan

    cfg = config("experiment=brainstorm_factorial")
    cfg["experiment"]["factors"]["variety"]["on"] = {"correction": {"threshold": 3}}
    with pytest.raises(ConfigError, match="both set 'correction'"):
        build_plan(cfg, tmp_path)


def test_own_proposition_as_correction_check_and_intervention_precondition(tmp_path):
    own = "{stale:{claim:'{agent} repeats earlier ideas.',level:agent,scale:0-9,higher_is_better:false}}"
    assert run(tmp_path, "experiment=brainstorm_variety", "run.replicates=1", "experiment.steps=2",
               "run.report=false", "run.analyze=false", f"+experiment.propositions={own}",
               "experiment.metrics=[stale,ideas]", "experiment.tradeoff=[ideas,stale]",
               "+experiment.intervention_options.variety.precondition=stale",
               "+experiment.arms.treatment.correction={propositions:[stale],threshold:5,max_attempts:1}") == 0
    events = _events(tmp_path)
    checks = events[(events["kind"] == "correction") & (events["arm"] == "treatment")]
    assert len(checks) and checks["scores"].map(lambda s: "stale" in (s or {})).any()
    metrics = pd.read_parquet(tmp_path / "metrics.parquet")
    assert set(metrics.loc[metrics["metric"] == "stale", "arm"]) == {"control", "treatment"}
    calls = pd.read_parquet(tmp_path / "llm_calls.parquet")
    assert (calls["purpose"] == "intervention").sum() > 0  # the precondition was judged


def test_estimate_prices_the_judge_separately_and_gives_a_range(tmp_path):
    from trials.run.plan import build_plan
    from trials.run.progress import estimate

    base = ["experiment=brainstorm_correction", "llm=openai", "llm.model=gpt-4o-mini"]
    plan_same = build_plan(config(*base), tmp_path)
    plan_4o = build_plan(config(*base, "judge=openai", "judge.model=gpt-4o"), tmp_path)
    cfg = config(*base)
    same, big = estimate(plan_same, cfg["run"], cfg["prices"]), estimate(plan_4o, cfg["run"], cfg["prices"])
    assert same["calls"] == big["calls"] and big["cost_usd"] > same["cost_usd"]
    judged = [p for p in big["by_purpose"] if p != "action"]
    for p in judged:  # judge-side calls priced with gpt-4o (2.5/10 per 1M), actions with gpt-4o-mini
        assert big["by_purpose"][p]["cost_usd"] >= same["by_purpose"][p]["cost_usd"]
    assert big["by_purpose"]["action"]["cost_usd"] == pytest.approx(same["by_purpose"]["action"]["cost_usd"])
    r = big["range"]
    assert r["low"]["calls"] < r["expected"]["calls"] < r["high"]["calls"]
    assert r["low"]["cost_usd"] < r["expected"]["cost_usd"] < r["high"]["cost_usd"]
    assert big["by_purpose"]["correction"]["calls"] > 0  # correction is counted
    k3 = estimate(build_plan(config(*base, "experiment.judge_k=3"), tmp_path), cfg["run"], cfg["prices"])
    assert k3["by_purpose"]["judge"]["calls"] == pytest.approx(3 * same["by_purpose"]["judge"]["calls"], abs=1)
    assert math.isfinite(big["wall_s"]) and big["wall_s"] > 0


def test_init_writes_a_starter_that_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "myconf"]) == 0
    text = (tmp_path / "myconf" / "experiment" / "mine.yaml").read_text()
    assert "defaults:" in text and "market_research" in text and "propositions:" in text
    assert main(["init", "myconf"]) == 2  # never overwrites silently
    capsys.readouterr()
    assert main(["run", "--config-dir", "myconf", "experiment=mine", "llm=scripted", "run.dry_run=true"]) == 0
    out = capsys.readouterr().out
    assert "pitch_a" in out and "pitch_b" in out and "products=" in out
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["mine.yaml"]


def test_resume_refuses_a_changed_design_and_records_safe_changes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first = tmp_path / "r1"
    base = ["llm=scripted", "cache.mode=off", "run.report=false", "run.analyze=false"]
    assert main(["run", "experiment=hello", *base, f"hydra.run.dir={first}"]) == 0
    started = json.loads((first / "manifest.json").read_text())["started_at"]
    capsys.readouterr()
    code = main(["run", *base, f"run.resume_dir={first}", "run.seed=5", "experiment=debate"])
    err = capsys.readouterr().err
    assert code == 2 and "run.seed: 0 -> 5" in err and "experiment.name: 'hello' -> 'debate'" in err
    assert "Traceback" not in err
    assert main(["run", *base, f"run.resume_dir={first}", "run.n_jobs=2"]) == 0
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["started_at"] == started and manifest["status"] == "complete"
    assert manifest["resumes"][-1]["changed"] == {"run.n_jobs": ["auto", 2]}
    # the Python API compares the whole config
    assert run(first, "experiment=hello", "run.replicates=2", f"run.resume_dir={first}") == 2
    assert "run.replicates: 1 -> 2" in capsys.readouterr().err


@pytest.mark.parametrize("sweep, column, values, report", [
    (["llm.model=a,b"], "llm.model", ["a", "b"], True),
    (["experiment.agent.prose_as_talk=true,false"], "experiment.agent.prose_as_talk", [False, True], False),
    (["experiment.themes=[Soup],[Bikes]"], "experiment.themes", ['["Bikes"]', '["Soup"]'], False),
])
def test_sweeps_over_any_value_give_run_dirs_a_summary_and_a_report(tmp_path, monkeypatch, capsys, sweep,
                                                                   column, values, report):
    monkeypatch.chdir(tmp_path)
    code = main(["run", "-m", "experiment=brainstorm_variety", "llm=scripted", "cache.mode=off", "run.n_jobs=1",
                 "run.replicates=1", "experiment.steps=1", f"run.report={str(report).lower()}", *sweep,
                 f"hydra.sweep.dir={tmp_path / 'sw'}"])
    out, err = capsys.readouterr()
    assert code == 0 and "warning" not in err, err[-2000:]
    summary = pd.read_csv(tmp_path / "sw" / "sweep_summary.csv")
    assert sorted(summary[column].drop_duplicates().tolist()) == values
    assert summary["effect_treatment"].notna().any()
    if report:  # a categorical axis (was: "could not convert string to float: 'a'")
        assert (tmp_path / "sw" / "report.html").is_file() and (tmp_path / "sw" / "figures" / "sweep.png").is_file()


def test_export_one_row_per_action_with_persona_and_flat_values(tmp_path, capsys):
    from trials.run.rundir import load_events

    run_dir = tmp_path / "run"
    assert run(run_dir, "experiment=market_research", "run.replicates=1", "run.report=false",
               "run.analyze=false") == 0
    events = load_events(run_dir)
    n_actions = int((events["kind"] == "action").sum())
    assert n_actions > 0 and "scores" not in events.columns and "score_vote" in events.columns
    for fmt in ("csv", "parquet", "jsonl"):
        assert main(["export", str(run_dir), "--to", fmt]) == 0
        path = run_dir / "export" / f"actions.{fmt}"
        table = (pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path) if fmt == "parquet"
                 else pd.read_json(path, lines=True))
        assert len(table) == n_actions
        assert {"arm", "replicate", "session", "agent", "text", "persona_age", "persona_occupation_title",
                "metric_vote", "metric_positive_share"} <= set(table.columns)
        assert not table.map(lambda v: isinstance(v, (dict, list)) or (isinstance(v, str) and v.startswith("{"))).any().any()
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    # a measured value never carries a missing reason (positive_share used to say "no vote extracted")
    assert (metrics.loc[metrics["value"].notna(), "missing_reason"] == "").all()
    assert (metrics.loc[metrics["value"].isna(), "missing_reason"] != "").all()
    row = table.iloc[0]
    vote = metrics[(metrics["metric"] == "vote") & (metrics["agent"] == row["agent"]) & (metrics["session"] == row["session"])]
    assert row["metric_vote"] == pytest.approx(vote["value"].iloc[0], nan_ok=True)
    assert main(["export", str(tmp_path / "nope"), "--to", "csv"]) == 2
    assert "no transcript.jsonl" in capsys.readouterr().err


def test_an_arm_with_another_group_size_keeps_the_replicates_material(tmp_path):
    from trials.run.plan import build_plan

    plan = build_plan(config("experiment=market_research", "run.replicates=6",
                             "+experiment.arms.treatment.group_size=2"), tmp_path)
    by = {(j.arm, j.replicate): j for j in plan.jobs}
    assert all(by[("control", r)].material == by[("treatment", r)].material for r in range(6))
    assert len({by[("control", r)].material for r in range(6)}) > 1
    assert all(len(by[("treatment", r)].personas) == 2 for r in range(6))


def test_an_arm_with_a_story_gets_story_beats_and_a_bad_story_is_refused(tmp_path):
    from trials.run.plan import ConfigError, build_plan

    assert run(tmp_path, "experiment=brainstorm_variety", "run.replicates=1", "experiment.steps=3",
               "run.report=false", "run.analyze=false",
               "+experiment.arms.treatment.story={every:1,requirements:'It starts to rain.'}") == 0
    events = _events(tmp_path)
    beats = events[events["kind"] == "story"]
    assert set(beats["arm"]) == {"treatment"} and len(beats) == 2  # before steps 1 and 2
    calls = pd.read_parquet(tmp_path / "llm_calls.parquet")
    assert (calls["purpose"] == "story").sum() == 2
    with pytest.raises(ConfigError, match="experiment.arms.treatment.story.every=0"):
        build_plan(config("experiment=brainstorm_variety", "+experiment.arms.treatment.story={every:0}"), tmp_path)


@pytest.mark.parametrize("spec, needle", [
    ("{vote:{claim:'x'}}", "experiment.propositions.vote: scenario 'market_research' already measures"),
    ("{suitability:{claim:'x'}}", "'suitability' is a standard proposition"),
    ("{mine:{level:agent}}", "experiment.propositions.mine.claim is missing"),
    ("{mine:{claim:'x',level:crowd}}", "experiment.propositions.mine.level='crowd': use agent or session"),
    ("{mine:{claim:'x',scale:'1-5'}}", "experiment.propositions.mine.scale='1-5'"),
    ("{mine:{claim:'x',higher_is_better:maybe}}", "experiment.propositions.mine.higher_is_better='maybe'"),
])
def test_bad_own_propositions_are_refused(tmp_path, capsys, spec, needle):
    assert run(tmp_path, "experiment=market_research", f"+experiment.propositions={spec}") == 2
    assert needle in capsys.readouterr().err


def test_init_into_an_unwritable_place_is_exit_2_naming_the_folder(tmp_path, capsys):
    from trials.cli import main as cli_main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli_main(["init", str(blocker / "conf")]) == 2
    err = capsys.readouterr().err
    assert f"{blocker / 'conf'}: cannot write there" in err and "fix:" in err
