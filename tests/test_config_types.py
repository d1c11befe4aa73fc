"""Experiment keys have types (one schema per scenario, trials.scenarios.fields) and templates
have known placeholders: a wrong form is exit 2 before anything runs, naming the key, the file it
was set in and the right form -- never a run on letters of a string or a literal "{agnt}"."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from runner_support import config, run

from trials.cli import main
from trials.run.errors import ConfigError
from trials.run.plan import EXPERIMENT_KEYS, build_plan, check_types, load_scenario, origin
from trials.scenarios.fields import ArmFields, ExperimentFields

SCENARIOS = ["hello", "brainstorm", "debate", "market_research"]


def _cli(tmp_path: Path, monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    code = main(["run", "llm=scripted", "cache.mode=off", *args])
    err = capsys.readouterr().err
    return code, err


def _yaml_experiment(tmp_path: Path, body: str, name: str = "mine") -> None:
    folder = tmp_path / "myconf" / "experiment"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text("# @package experiment\ndefaults:\n  - market_research\n  - _self_\n"
                                         f"name: {name}\n{body}")


@pytest.mark.parametrize("args, message", [
    # the user tester's inputs (before: stimulus "u" / "a", "Theme: e", exit 0)
    (["experiment=hello", "experiment.questions=What do you eat?", "run.replicates=2"],
     "config error: experiment.questions='What do you eat?' must be a list, "
     "e.g. experiment.questions='[What do you eat?]'"),
    (["experiment=brainstorm_variety", "experiment.themes=Soup"],
     "config error: experiment.themes='Soup' must be a list, e.g. experiment.themes='[Soup]'"),
    (["experiment=market_research", "+experiment.arms.treatment.products=A lamp"],
     "config error: experiment.arms.treatment.products='A lamp' must be a list"),
    (["experiment=brainstorm_variety", "experiment.arms.treatment.interventions=variety"],
     "config error: experiment.arms.treatment.interventions='variety' must be a list"),
    (["experiment=brainstorm_correction", "experiment.arms.treatment.correction.propositions=persona_adherence"],
     "propositions='persona_adherence' must be a list, e.g. propositions: [persona_adherence]"),
    (["experiment=brainstorm_variety", "experiment.tradeoff=ideas"], "experiment.tradeoff='ideas' must be a list"),
    (["experiment=brainstorm_variety", "experiment.themes=[]"], "experiment.themes is empty: list at least one"),
    (["experiment=market_research", "experiment.question=[Would you buy it?,Why?]"],
     "experiment.question=['Would you buy it?', 'Why?'] must be one text, not a list"),
    (["experiment=brainstorm_variety", "experiment.steps=2.5"], "experiment.steps=2.5: need a whole number >= 1"),
    (["experiment=brainstorm_variety", "+experiment.arms.treatment.story={every:2,requirements:[a,b]}"],
     "story.requirements=['a', 'b'] must be one text"),
    # before: [] measured every metric
    (["experiment=hello", "experiment.metrics=[]"],
     "config error: experiment.metrics is empty: list at least one of ['answer_chars', 'persona_adherence']"),
    # before: judged twice, then the analysis failed on rows sharing one (arm, session, agent, metric) key
    (["experiment=hello", "run.replicates=2", "experiment.metrics=[persona_adherence,persona_adherence]"],
     "config error: experiment.metrics: 'persona_adherence' listed more than once; list each name once"),
    (["experiment=brainstorm_variety", "experiment.tradeoff=[ideas,ideas]"],
     "config error: experiment.tradeoff: 'ideas' listed more than once"),
    (["experiment=brainstorm_variety", "experiment.arms.treatment.interventions=[variety,variety]"],
     "config error: experiment.arms.treatment.interventions: 'variety' listed more than once"),
])
def test_a_wrong_form_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys, args, message):
    code, err = _cli(tmp_path, monkeypatch, capsys, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_a_yaml_text_where_a_list_belongs_names_the_file_and_the_yaml_form(tmp_path, monkeypatch, capsys):
    # before: the pitch was "Here is a new product.\nt\n..." (one letter of the string)
    _yaml_experiment(tmp_path, 'products: "just a string"\n')
    code, err = _cli(tmp_path, monkeypatch, capsys, "--config-dir", "myconf", "experiment=mine")
    assert code == 2
    assert err.strip() == ("config error: experiment.products='just a string' must be a list, e.g. "
                           'products: ["just a string"] (set in myconf/experiment/mine.yaml or a parent '
                           "experiment it inherits)")
    # the same in a dry run
    code, err = _cli(tmp_path, monkeypatch, capsys, "--config-dir", "myconf", "experiment=mine", "run.dry_run=true")
    assert code == 2 and "(set in myconf/experiment/mine.yaml" in err
    assert not (tmp_path / "runs").exists()


def test_a_placeholder_typo_in_a_claim_is_refused_naming_it_the_proposition_and_the_file(tmp_path, monkeypatch,
                                                                                        capsys):
    # before: exit 0 and the judge read "{agnt} clearly wants to buy"
    _yaml_experiment(tmp_path, "propositions:\n  wants_to_buy:\n    claim: \"{agnt} clearly wants to buy.\"\n"
                               "metrics: [vote, wants_to_buy]\ntradeoff: null\n")
    code, err = _cli(tmp_path, monkeypatch, capsys, "--config-dir", "myconf", "experiment=mine")
    assert code == 2
    assert err.strip() == ("config error: experiment.propositions.wants_to_buy.claim: unknown placeholder {agnt} "
                           "(did you mean {agent}?); known placeholders here: {agent}, {task}, {material} "
                           "(set in myconf/experiment/mine.yaml or a parent experiment it inherits)")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["experiment=market_research", "+experiment.propositions={p:{claim:'{agent} likes it',level:session}}"],
     "experiment.propositions.p.claim: unknown placeholder {agent}; known placeholders here: {task}, {material} "
     "({agent} only at level: agent)"),
    (["experiment=market_research", "+experiment.propositions={p:{claim:'{agent} buys',rubric:'0 = {agent} no'}}"],
     "experiment.propositions.p.rubric: unknown placeholder {agent}"),
    (["experiment=brainstorm_variety", "+experiment.task='Ideas for {material}'"],
     "experiment.task: {material} is not filled in here"),
    (["experiment=market_research", "experiment.products=['A {produkt}']"],
     "experiment.products[0]: {produkt} is not filled in here"),
    (["experiment=brainstorm_variety", "+experiment.intervention_options.variety.text='Hi {agnt}'"],
     "text: unknown placeholder {agnt} (did you mean {agent}?); known placeholders here: {agent}"),
    (["experiment=brainstorm_variety", "+experiment.arms.treatment.story={every:2,requirements:'a {twist}'}"],
     "experiment.arms.treatment.story.requirements: unknown placeholder {twist}"),
])
def test_other_templates_refuse_unknown_placeholders(tmp_path, monkeypatch, capsys, args, message):
    code, err = _cli(tmp_path, monkeypatch, capsys, *args)
    assert code == 2 and message in err, err


def test_claims_get_task_and_material_wherever_they_are_judged(tmp_path, monkeypatch):
    """{task} and {material} are filled in by every scenario and in correction / preconditions
    (before: left literal there, and hello had no {task})."""
    from trials.scenarios.steer import correction_config

    own = {"fits": {"claim": "{agent} answers {task} about {material}."}}
    conf = correction_config({"correction": {"propositions": ["fits"]}}, own, {"task": "T", "material": "M"})
    assert conf.propositions[0].text("Ana") == "Ana answers T about M."

    import importlib

    judge_module = importlib.import_module("trials.judging.judge")  # the package exports the function too
    seen: list[str] = []
    real = judge_module.judge
    monkeypatch.setattr(judge_module, "judge", lambda prop, *a, **kw: (seen.append(prop.text(kw.get("agent"))),
                                                                        real(prop, *a, **kw))[1])
    assert run(tmp_path, "experiment=hello", "run.replicates=1", "experiment.questions=[Soup or salad?]",
               "+experiment.propositions={fits:{claim:'{agent} answers {task} about {material}.'}}",
               "experiment.metrics=[fits]") == 0
    assert len(seen) == 1 and seen[0].endswith(" answers Soup or salad? about Soup or salad?.")
    assert "{" not in seen[0]


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_list_key_of_every_scenario_refuses_a_text(name):
    """Generic over the schema: any list-typed key (material, metrics, tradeoff, interventions,
    ...) given one text is refused, at the experiment level and in an arm."""
    scenario = load_scenario(name)
    fields = scenario.Fields
    assert set(fields.model_fields) == EXPERIMENT_KEYS | set(scenario.OPTIONS) | {scenario.MATERIAL_KEY}
    arm_model = {**fields.model_fields, **ArmFields.model_fields}
    lists = [k for k, f in arm_model.items() if "list[" in str(f.annotation)]
    assert {"metrics", "tradeoff", "interventions", scenario.MATERIAL_KEY} <= set(lists)
    where = origin(None)
    for key in lists:
        for exp in ({key: "one text"}, {"arms": {"b": {key: "one text"}}}):
            if key in ArmFields.model_fields and "arms" not in exp:
                continue  # an arm-only key
            with pytest.raises(ConfigError, match=rf"{key}='one text' must be a list"):
                check_types(exp, scenario, where)


def test_the_schema_types_every_key_the_runner_reads():
    assert set(ExperimentFields.model_fields) == EXPERIMENT_KEYS
    for name in SCENARIOS:
        fields = load_scenario(name).Fields
        for key, field in fields.model_fields.items():
            assert typing.get_args(field.annotation) or field.annotation is typing.Any, key


def test_shipped_experiments_pass_the_schema(tmp_path):
    for name in ["hello", "brainstorm_variety", "brainstorm_correction", "brainstorm_factorial", "debate",
                 "market_research"]:
        assert build_plan(config(f"experiment={name}"), tmp_path).jobs


def test_two_arms_with_one_folder_name_are_refused(tmp_path, monkeypatch, capsys):
    # before: arm `1` silently replaced arm "1" (both become folder "1")
    _yaml_experiment(tmp_path, "arms:\n  1: {}\n  '1': {}\n")
    code, err = _cli(tmp_path, monkeypatch, capsys, "--config-dir", "myconf", "experiment=mine")
    assert code == 2 and "two arms are named '1'; give each arm its own name" in err, err
    assert not (tmp_path / "runs").exists()
