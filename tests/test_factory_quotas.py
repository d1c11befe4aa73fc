"""Distributions route: exact quotas, determinism, constraints, bad specs (no LLM needed)."""

from __future__ import annotations

import pytest

from trials.population.quotas import largest_remainder, parse_band, sample_attributes
from trials.population.spec import SpecError, load_spec, validate_spec


def spec(**over):
    data = {"name": "t", "n": 20, "attributes": {
        "gender": {"values": {"Female": 0.5, "Male": 0.3, "Non-binary": 0.2}},
        "age_range": {"values": {"18-29": 0.25, "30-49": 0.35, "50+": 0.40}},
        "age": {"type": "numeric", "band_of": "age_range", "open_max": 80},
    }}
    data.update(over)
    return validate_spec(data, "test.yaml")


def test_largest_remainder_is_exact_and_sums_to_n():
    assert largest_remainder({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 10) == {"a": 4, "b": 3, "c": 3}
    assert largest_remainder({"a": 0.18, "b": 0.38, "c": 0.44}, 50) == {"a": 9, "b": 19, "c": 22}
    assert largest_remainder({"a": 0.97, "b": 0.02, "c": 0.01}, 7) == {"a": 7, "b": 0, "c": 0}
    assert largest_remainder({"a": 0.97, "b": 0.02, "c": 0.01}, 7, min_count=1) == {"a": 5, "b": 1, "c": 1}
    for n in range(1, 40):
        assert sum(largest_remainder({"x": 0.123, "y": 0.456, "z": 0.421}, n).values()) == n


@pytest.mark.parametrize("n", [7, 20, 33])
def test_realised_counts_equal_quotas(n):
    table, targets = sample_attributes(spec(), n, seed=5)
    assert len(table) == n
    for t in targets:
        if t.attribute in ("gender", "age_range"):
            assert (table[t.attribute] == t.value).sum() == t.target_count
    assert sum(t.target_count for t in targets if t.attribute == "gender") == n


def test_same_seed_same_attributes_different_seed_different_assignment():
    a, _ = sample_attributes(spec(), 30, seed=1)
    b, _ = sample_attributes(spec(), 30, seed=1)
    c, _ = sample_attributes(spec(), 30, seed=2)
    assert a.equals(b)
    assert not a.equals(c)
    assert a["gender"].value_counts().to_dict() == c["gender"].value_counts().to_dict()


def test_numeric_age_inside_band_and_range_is_stratified():
    s = spec(attributes={
        "age_range": {"values": {"18-29": 0.5, "65+": 0.5}},
        "age": {"type": "numeric", "band_of": "age_range", "open_max": 80},
        "score": {"type": "numeric", "range": [0, 99], "bins": 4}})
    table, _ = sample_attributes(s, 40, seed=3)
    for _, row in table.iterrows():
        lo, hi = parse_band(row["age_range"], 80)
        assert lo <= row["age"] <= hi and isinstance(row["age"], int)
    quarter = (table["score"] // 25).value_counts().to_dict()
    assert quarter == {0: 10, 1: 10, 2: 10, 3: 10}  # one draw per 1/40 slice -> exactly 10 per quarter


def test_conditional_distribution_quotas_within_parent_groups():
    s = spec(attributes={
        "age_range": {"values": {"young": 0.5, "old": 0.5}},
        "job": {"given": "age_range", "table": {"young": {"student": 0.6, "worker": 0.4},
                                                "old": {"worker": 0.3, "retired": 0.7}}}})
    table, targets = sample_attributes(s, 20, seed=0)
    young = table[table.age_range == "young"]["job"].value_counts().to_dict()
    old = table[table.age_range == "old"]["job"].value_counts().to_dict()
    assert young == {"student": 6, "worker": 4} and old == {"retired": 7, "worker": 3}
    job = {t.value: (t.target_prop, t.target_count) for t in targets if t.attribute == "job"}
    assert job["worker"] == (pytest.approx(0.35), 7)


def test_joint_table_moves_cells_together():
    s = validate_spec({"name": "j", "joint": [{"attributes": ["gender", "party"], "cells": [
        {"gender": "F", "party": "D", "p": 0.5}, {"gender": "M", "party": "R", "p": 0.5}]}]}, "j.yaml")
    table, _ = sample_attributes(s, 10, seed=4)
    assert set(zip(table.gender, table.party)) == {("F", "D"), ("M", "R")}
    assert (table.gender == "F").sum() == 5


def test_forbid_rules_are_met_and_quotas_kept():
    s = spec(forbid=[{"gender": "Male", "age_range": "50+"}, {"gender": "Non-binary", "age_range": "18-29"}])
    for seed in range(5):
        table, targets = sample_attributes(s, 20, seed=seed)
        assert not ((table.gender == "Male") & (table.age_range == "50+")).any()
        assert not ((table.gender == "Non-binary") & (table.age_range == "18-29")).any()
        for t in targets:
            if t.attribute in ("gender", "age_range"):
                assert (table[t.attribute] == t.value).sum() == t.target_count


def test_impossible_forbid_is_a_clear_error():
    s = spec(attributes={"gender": {"values": {"F": 0.5, "M": 0.5}}, "party": {"values": {"D": 0.5, "R": 0.5}}},
             forbid=[{"gender": "F", "party": "D"}, {"gender": "F", "party": "R"}])
    with pytest.raises(SpecError, match=r"test.yaml: field 'forbid\[0\]'"):
        sample_attributes(s, 10, seed=0)


@pytest.mark.parametrize("change, field, words", [
    ({"attributes": {"gender": {"values": {"F": 0.5, "M": 0.4}}}}, "attributes.gender.values", "sum to 0.9000"),
    ({"attributes": {"gender": {"values": {"F": 1.2, "M": -0.2}}}}, "attributes.gender.values.M", "negative"),
    ({"attributes": {"gender": {"valeus": {"F": 1.0}}}}, "attributes.gender.valeus", "unknown key"),
    ({"atributes": {}}, "atributes", "unknown key"),
    ({"forbid": [{"colour": "red"}]}, "forbid[0].colour", "unknown attribute"),
    ({"attributes": {"job": {"given": "nope", "table": {"a": {"x": 1.0}}}}}, "attributes.job.given", "unknown attribute"),
    ({"attributes": {"age": {"type": "numeric", "band_of": "age_band"}}}, "attributes.age.band_of", "unknown attribute"),
    ({"n": 3, "attributes": {"g": {"values": {"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}, "min_count": 1}}},
     "attributes.g.min_count", "n=3 is smaller than the 4 strata"),
])
def test_bad_specs_name_file_and_field(change, field, words):
    data = {"name": "bad", "n": 10, "attributes": {"gender": {"values": {"F": 0.5, "M": 0.5}}}}
    for key, value in change.items():
        if key == "attributes":
            data["attributes"] = {**data["attributes"], **value}
        else:
            data[key] = value
    data.pop("attributes") if "atributes" in change else None
    with pytest.raises(SpecError) as err:
        validate_spec(data, "conf/population/bad.yaml")
    assert err.value.field == field
    assert str(err.value).startswith(f"conf/population/bad.yaml: field '{field}'")
    assert words in str(err.value) and "Fix:" in str(err.value)


def test_n_smaller_than_required_strata_at_sampling_time():
    s = spec(attributes={"g": {"values": {"a": 0.5, "b": 0.3, "c": 0.2}, "min_count": 1}})
    with pytest.raises(SpecError, match="n=2 is smaller than the 3 strata"):
        sample_attributes(s, 2, seed=0)
    table, _ = sample_attributes(s, 3, seed=0)
    assert sorted(table.g) == ["a", "b", "c"]


def test_load_spec_by_name_and_missing_file(tmp_path):
    assert load_spec("usa_adults").name == "usa_adults"
    with pytest.raises(SpecError, match="no such population spec"):
        load_spec("no_such_spec_here")
    bad = tmp_path / "p.yaml"
    bad.write_text("name: p\nattributes:\n  g: {values: {a: 0.7, b: 0.7}}\n")
    with pytest.raises(SpecError, match=rf"{bad}: field 'attributes.g.values'"):
        load_spec(bad)
