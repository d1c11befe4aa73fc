"""Population factory on the scripted backend: personas, narratives, names, profile, output."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from trials.population.factory import sample_population, write_population
from trials.persona import load_folder
from trials.population.names import NameRegistry, plausible_name
from trials.population.narrative import parse_lines
from trials.population.profile import near_duplicates, profile_table
from trials.population.quotas import Target

SPEC = {"name": "mini", "n": 6, "fixed": {"nationality": "American"}, "attributes": {
    "gender": {"values": {"Female": 0.5, "Male": 0.5}},
    "political_affiliation": {"values": {"Democrat": 0.5, "Republican": 0.5}},
    "age_range": {"values": {"35-44": 1.0}},
    "age": {"type": "numeric", "band_of": "age_range"},
    "openness": {"values": {"High": 0.5, "Low": 0.5}, "field": "personality.big_five.openness"}}}

LINES = """NAME: Dana Whitfield
JOB: school librarian
JOB DETAILS: Runs the library of a middle school.
HOME: Dayton, Ohio
EDUCATION: Master's in library science
TRAITS: patient; curious; dry humour
BELIEFS: Reading matters; Schools need funding
LIKES: crosswords; hiking; jazz
DISLIKES: noise; rudeness
STYLE: Quiet and precise."""


def test_parse_lines_tolerates_markup_and_lists():
    got = parse_lines("Sure!\n**NAME:** Dana Whitfield\n- TRAITS: a, b, c\njob details - teaches math\nSTYLE: calm")
    assert got == {"name": "Dana Whitfield", "traits": ["a", "b", "c"], "occupation_description": "teaches math",
                   "style": "calm"}


def test_prose_reply_keeps_only_the_leading_name():
    from trials.population.narrative import salvage_name

    assert salvage_name("Jennifer Ellis, a 25-year-old woman from Ohio") == {"name": "Jennifer Ellis"}
    assert salvage_name("The most popular job is Mentor") == {}


def test_text_mode_narrative_and_exact_attribute_fields(scripted_llm):
    llm = scripted_llm(rules=[{"match": "Invent one person", "reply": LINES}])
    pop = sample_population({**SPEC, "narrative": {"mode": "text"}}, 6, seed=0, llm=llm)
    p = pop.personas[0]
    assert p.occupation.title == "school librarian" and p.preferences.likes == ["crosswords", "hiking", "jazz"]
    assert p.style == "Quiet and precise." and p.residence == "Dayton, Ohio"
    for persona, (_, row) in zip(pop.personas, pop.table.iterrows()):
        assert persona.gender == row["gender"] and persona.age == row["age"] and 35 <= persona.age <= 44
        assert persona.political_affiliation == row["political_affiliation"]
        assert persona.age_range == "35-44" and persona.nationality == "American"
        assert persona.personality.big_five["openness"] == row["openness"]
    # the LLM repeated one name: the first keeps it, the others are renamed, all unique
    names = [p.name for p in pop.personas]
    assert names[0] == "Dana Whitfield" and len(set(names)) == 6 and all(plausible_name(n) for n in names)
    assert sum("renamed" in w for w in pop.warnings) == 5
    assert set(pop.table.narrative_source) == {"llm-text"}


def test_prompt_carries_the_sampled_attributes(scripted_llm):
    seen = []

    def reply(request):
        seen.append(request.messages[-1].content)
        return LINES

    llm = scripted_llm(rules=[{"match": "Invent one person", "reply": reply}])
    pop = sample_population({**SPEC, "narrative": {"mode": "text"}}, 4, seed=1, llm=llm)
    for prompt, (_, row) in zip(seen, pop.table.iterrows()):
        assert f"- gender: {row['gender']}" in prompt and f"- political affiliation: {row['political_affiliation']}" in prompt
        assert f"- openness: {row['openness']}" in prompt and "- nationality: American" in prompt


def test_llm_failure_falls_back_to_template_with_warning(scripted_llm):
    llm = scripted_llm(rules=[{"match": ".", "error": "permanent"}])
    pop = sample_population(SPEC, 4, seed=0, llm=llm)
    assert set(pop.table.narrative_source) == {"template"}
    assert all(p.occupation.title and p.personality.traits for p in pop.personas)
    assert sum("failed" in w for w in pop.warnings) >= 4
    assert len({p.name for p in pop.personas}) == 4


def test_partial_text_reply_is_completed_from_template(scripted_llm):
    llm = scripted_llm(rules=[{"match": "Invent one person", "reply": "NAME: Ivo Pratt\nJOB: baker"}])
    pop = sample_population({**SPEC, "narrative": {"mode": "text"}}, 2, seed=0, llm=llm)
    assert pop.table.narrative_source.tolist() == ["llm+template", "llm+template"]
    assert pop.personas[0].occupation.title == "baker" and pop.personas[0].beliefs
    assert any("filled from the template" in w for w in pop.warnings)


def test_json_mode_on_scripted_backend_validates_and_renames_junk_names(scripted_llm):
    pop = sample_population(SPEC, 6, seed=0, llm=scripted_llm())
    assert set(pop.table.narrative_source) == {"llm-json"}
    assert len({p.name.lower() for p in pop.personas}) == 6
    assert all(plausible_name(p.name) and len(p.name.split()) >= 2 for p in pop.personas)


def test_determinism_by_seed(scripted_llm):
    a = sample_population(SPEC, 6, seed=3, llm=scripted_llm())
    b = sample_population(SPEC, 6, seed=3, llm=scripted_llm())
    c = sample_population(SPEC, 6, seed=4, llm=scripted_llm())
    assert a.table.equals(b.table)
    assert [p.to_dict() for p in a.personas] == [p.to_dict() for p in b.personas]
    cols = ["gender", "political_affiliation", "openness"]
    assert not a.table[cols].equals(c.table[cols])
    assert a.profile.equals(b.profile)


def test_name_registry_unique_and_seeded():
    reg = NameRegistry(seed=1)
    names = [reg.claim("Ann Lee", i, country="us", gender="Female") for i in range(200)]
    assert len({n.lower() for n in names}) == 200 and names[0] == "Ann Lee"
    again = NameRegistry(seed=1)
    assert [again.claim("Ann Lee", i, country="us", gender="Female") for i in range(200)] == names
    assert reg.claim("x7", 0, country="br", gender="Male").split()[-1] in {
        "Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Ferreira", "Almeida", "Ribeiro"}


def test_profile_table_values():
    table = pd.DataFrame({"g": ["a"] * 6 + ["b"] * 4})
    targets = [Target("g", "a", 0.5, 5), Target("g", "b", 0.5, 5)]
    prof = profile_table(table, targets)
    a = prof[prof.value == "a"].iloc[0]
    assert (a.target_count, a.realised_count, a.realised_prop) == (5, 6, 0.6)
    assert a.deviation == pytest.approx(0.1) and a.max_abs_deviation == pytest.approx(0.1)
    assert a.chi2 == pytest.approx(0.4)  # (6-5)^2/5 + (4-5)^2/5
    assert a.p_value == pytest.approx(0.5270892568655381)
    odd = profile_table(pd.DataFrame({"g": ["a", "c"]}), [Target("g", "a", 1.0, 2)])
    assert odd.value.tolist() == ["a", "c"] and math.isinf(odd.chi2.iloc[0]) and odd.p_value.iloc[0] == 0


def test_exact_quotas_show_in_profile(scripted_llm):
    pop = sample_population("usa_adults", 30, seed=2, llm=scripted_llm())
    cat = pop.profile[pop.profile.attribute.isin(["gender", "region", "political_leaning", "age_range", "employment"])]
    assert (cat.realised_count == cat.target_count).all()
    assert pop.profile.groupby("attribute").realised_count.sum().eq(30).all()
    assert not ((pop.table.age_range == "18-24") & (pop.table.education == "Graduate degree")).any()
    assert {p.personality.big_five["openness"] for p in pop.personas} <= set(range(20, 81))


def test_near_duplicates_reported():
    base = {"name": "A", "gender": "F", "beliefs": ["x y z"], "style": "calm quiet"}
    other = {**base, "name": "B"}
    far = {"name": "C", "gender": "M", "beliefs": ["p q"], "style": "loud"}
    dups = near_duplicates([base, other, far], threshold=0.8)
    assert dups[["a", "b", "jaccard"]].values.tolist() == [["A", "B", 1.0]]


def test_write_population_folder_loads(scripted_llm, tmp_path):
    llm = scripted_llm(rules=[{"match": "Invent one person", "reply": LINES}])
    pop = sample_population({**SPEC, "narrative": {"mode": "text"}}, 6, seed=0, llm=llm)
    out = write_population(pop, tmp_path / "pop", llm.recorder)
    loaded = load_folder(out / "personas")
    assert sorted(p.name for p in loaded) == sorted(p.name for p in pop.personas)
    assert len(pd.read_csv(out / "population.csv")) == 6
    prof = pd.read_csv(out / "profile.csv")
    assert list(prof.columns[:7]) == ["attribute", "value", "target_prop", "target_count", "realised_count",
                                      "realised_prop", "deviation"]
    assert (pd.read_csv(out / "llm_calls.csv").purpose == "factory").all()
    meta = json.loads((out / "population.json").read_text())
    assert meta["n"] == 6 and meta["narrative_sources"] == {"llm-text": 6}
    assert (out / "warnings.txt").read_text().count("renamed") == 5
