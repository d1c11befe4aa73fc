"""The phased route (description -> dimensions -> plan -> personas) and the `trials population` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from trials.cli import main as cli_main
from trials.population.factory import sample_population
from trials.persona import load_folder
from trials.population.description import dimensions_from_data, parse_dimension_lines, parse_plan_lines
from trials.population.phased import fix_sum
from trials.population.spec import SpecError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DIMS = json.dumps({"dimensions": [
    {"name": "Age group", "values": ["18-34", "35-64", "65+"], "percentages": [30, 50, 20]},
    {"name": "Gender", "values": ["Female", "Male"], "percentages": [50, 50]}]})


def plan_reply(groups):
    return json.dumps({"groups": [{"values": v, "quantity": q} for v, q in groups]})


def description_spec(tmp_path, **over):
    desc = tmp_path / "town.json"
    desc.write_text(json.dumps({"title": "A small town", "Age Distribution": {"18-34": "30%", "35-64": "50%", "65+": "20%"}}))
    return {"name": "town", "route": "description", "description": str(desc), "n": 10, **over}


def test_plan_sum_fix_is_largest_remainder_and_recorded():
    plan = fix_sum({"warnings": [], "groups": [{"attributes": {}, "quantity": q} for q in (3, 3, 1)]}, 10)
    assert [g["quantity"] for g in plan["groups"]] == [4, 4, 2]
    assert plan["fix"]["original_total"] == 7 and plan["fix"]["target_total"] == 10
    assert plan["fix"]["changes"] == [{"group": 0, "from": 3, "to": 4}, {"group": 1, "from": 3, "to": 4},
                                      {"group": 2, "from": 1, "to": 2}]
    assert fix_sum({"warnings": [], "groups": [{"attributes": {}, "quantity": 10}]}, 10)["fix"] is None


def test_phased_route_llm_plan_wrong_total_is_fixed(scripted_llm, tmp_path):
    llm = scripted_llm(rules=[
        {"match": "List up to", "reply": DIMS},
        {"match": "sampling plan", "reply": plan_reply([(["18-34", "Female"], 2), (["35-64", "male"], 3),
                                                        (["65+", "Female"], 1), (["99+", "Female"], 4)])}])
    out = tmp_path / "out"
    pop = sample_population(description_spec(tmp_path), 12, seed=0, llm=llm, out=out)
    assert len(pop.personas) == 12
    plan = json.loads((out / "plan.json").read_text())
    assert [g["quantity"] for g in plan["groups"]] == [4, 6, 2] and plan["fix"]["original_total"] == 6
    assert plan["groups"][1]["attributes"] == {"age_group": "35-64", "gender": "Male"}
    assert any("dropped group 3" in w for w in pop.warnings)
    dims = json.loads((out / "dimensions.json").read_text())
    assert dims["source"] == "llm" and dims["dimensions"][0]["proportions"] == [0.3, 0.5, 0.2]
    assert pop.table.age_group.value_counts().to_dict() == {"35-64": 6, "18-34": 4, "65+": 2}
    assert all(p.age_group in ("18-34", "35-64", "65+") and p.gender in ("Female", "Male") for p in pop.personas)
    prof = pop.profile.set_index(["attribute", "value"])
    assert prof.loc[("age_group", "18-34"), "target_count"] == 4 and prof.loc[("age_group", "65+"), "realised_count"] == 2


def test_unusable_llm_falls_back_to_description_tables_and_quotas(scripted_llm, tmp_path):
    llm = scripted_llm(rules=[{"match": ".", "reply": "I cannot help with that."}])
    out = tmp_path / "out"
    pop = sample_population(description_spec(tmp_path), 10, seed=0, llm=llm, out=out)
    dims = json.loads((out / "dimensions.json").read_text())
    assert dims["source"] == "description" and dims["dimensions"][0]["name"] == "age"
    plan = json.loads((out / "plan.json").read_text())
    assert plan["source"] == "quotas" and plan["fix"] is None
    assert pop.table.age_range.value_counts().to_dict() == {"35-64": 5, "18-34": 3, "65+": 2}
    assert set(pop.profile.attribute) == {"age_range"}
    # "age" is the persona's integer field: the band goes to age_range, a whole-year age inside it
    for p in pop.personas:
        lo, hi = {"18-34": (18, 34), "35-64": (35, 64), "65+": (65, 90)}[p.age_range]
        assert isinstance(p.age, int) and lo <= p.age <= hi
    assert any("percentage tables" in w for w in pop.warnings)


def test_rerun_from_an_edited_plan(scripted_llm, tmp_path):
    llm = scripted_llm(rules=[{"match": "List up to", "reply": DIMS},
                              {"match": "sampling plan", "reply": plan_reply([(["18-34", "Female"], 10)])}])
    out = tmp_path / "out"
    sample_population(description_spec(tmp_path), 10, seed=0, llm=llm, out=out)
    plan = json.loads((out / "plan.json").read_text())
    plan["groups"] = [{"attributes": {"age_group": "65+", "gender": "Male"}, "quantity": 3}]
    (out / "plan.json").write_text(json.dumps(plan))
    strict = scripted_llm(rules=[{"match": "List up to|sampling plan", "error": "permanent"}])
    pop = sample_population({"name": "town", "route": "description", "plan": str(out / "plan.json")}, None,
                            seed=0, llm=strict, out=tmp_path / "out2")
    assert [(p.age_group, p.gender) for p in pop.personas] == [("65+", "Male")] * 3
    assert len(strict.recorder.rows) == 3 and not any("failed" in w for w in pop.warnings)  # narratives only
    assert json.loads((tmp_path / "out2" / "plan.json").read_text())["dimensions"][0]["name"] == "age_group"


def test_rerun_from_edited_dimensions(scripted_llm, tmp_path):
    dims = {"dimensions": [{"name": "diet", "values": ["vegan", "omnivore"], "proportions": [0.25, 0.75]}]}
    path = tmp_path / "dimensions.json"
    path.write_text(json.dumps(dims))
    llm = scripted_llm(rules=[{"match": "List up to", "error": "permanent"},
                              {"match": "sampling plan", "reply": "no plan today"}])
    pop = sample_population({"name": "d", "route": "description", "dimensions": str(path)}, 8, seed=0, llm=llm,
                            out=tmp_path / "out")
    assert pop.table.diet.value_counts().to_dict() == {"omnivore": 6, "vegan": 2}
    assert json.loads((tmp_path / "out" / "plan.json").read_text())["source"] == "quotas"


def test_dimension_lines_and_usa_description_tables():
    dims = parse_dimension_lines("Here you go:\n- age group: 18-34 (30%), 35+ (70%)\ngender: f, m")
    assert dims[0] == {"name": "age group", "values": ["18-34", "35+"], "proportions": [30.0, 70.0]}
    assert dims[1]["values"] == ["f", "m"]
    usa = SHARED / "tinytroupe-data/population_descriptions/usa.json"
    if usa.is_file():
        found = dimensions_from_data(json.loads(usa.read_text()), 4)
        assert [d["name"] for d in found][:2] == ["age", "gender"]
        assert found[1]["values"] == ["Male", "Female"] and sum(found[1]["proportions"]) == pytest.approx(1)


def test_plan_lines_parser():
    got = parse_plan_lines("Plan:\n1. 3: 18-34 | Female\n- 2: 65+ | Male\nnonsense")
    assert got == [{"values": ["18-34", "Female"], "quantity": 3}, {"values": ["65+", "Male"], "quantity": 2}]


def test_missing_description_file_is_a_clear_error(tmp_path):
    with pytest.raises(SpecError, match=r"field 'description': file not found"):
        sample_population({"name": "x", "route": "description", "description": str(tmp_path / "no.json")}, 3)
    with pytest.raises(SpecError, match=r"field 'description'"):
        sample_population({"name": "x", "route": "description"}, 3)


def test_cli_writes_the_folder(tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(["population", "llm=scripted", "population=usa_adults", "n=8", "run.seed=3", f"out={out}",
                     "cache.mode=off", f"hydra.run.dir={tmp_path / 'hydra'}"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"population folder: {out}" in printed
    assert len(load_folder(out / "personas")) == 8
    table = pd.read_csv(out / "population.csv")
    assert len(table) == 8 and {"gender", "region", "age_range"} <= set(table.columns)
    assert set(pd.read_csv(out / "profile.csv").attribute) >= {"gender", "region", "openness"}


def test_cli_bad_spec_returns_an_error(tmp_path, capsys):
    code = cli_main(["population", "llm=scripted", "population=usa_adults", "population.attributes.gender.values.Male=0.9",
                     f"out={tmp_path / 'x'}", "cache.mode=off", f"hydra.run.dir={tmp_path / 'hydra'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "conf/population/usa_adults.yaml: field 'attributes.gender.values'" in err and "sum to 1.4100" in err
