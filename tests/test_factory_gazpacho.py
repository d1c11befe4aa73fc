"""conf/population/gazpacho_respondents.yaml reproduces the 50 real respondents' counts."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from trials.population.factory import sample_population

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CSV = SHARED / "tinytroupe-data/empirical/bottled_gazpacho_market_research_raw.csv"
COLUMNS = [("Age Range", "age_range"), ("Gender Identity", "gender"),
           ("Political Affiliation", "political_affiliation"), ("Racial Or Ethnic Identity", "ethnicity")]


@pytest.mark.skipif(not CSV.is_file(), reason="../shared/tinytroupe-data is not beside the checkout")
@pytest.mark.parametrize("seed", [0, 11])
def test_gazpacho_spec_reproduces_the_human_counts(seed, scripted_llm):
    rows = list(csv.DictReader(CSV.open(encoding="utf-8")))
    assert len(rows) == 50
    pop = sample_population("gazpacho_respondents", 50, seed=seed, llm=scripted_llm() if seed else None)
    for column, attribute in COLUMNS:
        human = Counter(r[column] for r in rows)
        assert Counter(getattr(p, attribute) for p in pop.personas) == human, attribute
        prof = pop.profile[pop.profile.attribute == attribute]
        assert dict(zip(prof.value, prof.target_count)) == dict(human)
        assert prof.max_abs_deviation.max() < 1e-9
    assert all(p.nationality == "American" and p.age >= 25 for p in pop.personas)
