"""The near-duplicate check (trials/population/profile.py near_duplicates), an exact set-similarity
join, against the brute-force all-pairs comparison it replaced (kept here as the oracle)."""

from __future__ import annotations

import random
from typing import Any, Callable

import pandas as pd
import pytest

from trials.population import profile
from trials.population.profile import near_duplicates, tokens
from trials.similarity import jaccard


def all_pairs(personas: list[dict[str, Any]], threshold: float = 0.8,
              advance: Callable[[int], None] | None = None) -> pd.DataFrame:
    """The former implementation, verbatim: every pair's Jaccard (n(n-1)/2)."""
    sets = [tokens(p) for p in personas]
    rows = []
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            jac = jaccard(sets[i], sets[j])
            if jac >= threshold:
                rows.append({"a": personas[i].get("name"), "b": personas[j].get("name"), "index_a": i,
                             "index_b": j, "jaccard": round(jac, 4)})
        if advance is not None and i + 1 < len(sets):
            advance(len(sets) - i - 1)
    return pd.DataFrame(rows, columns=["a", "b", "index_a", "index_b", "jaccard"])


def population(n: int, seed: int, vocab: int = 60) -> list[dict[str, Any]]:
    """Random personas, many of them small edits of a few originals (near-duplicates at every level),
    some empty, some of one token, some names missing."""
    rng = random.Random(seed)
    words = [f"w{k}" for k in range(vocab)]
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = rng.random()
        if out and kind < 0.6:  # an edit of an earlier persona: drop and add a few words
            base = rng.choice(out)["story"].split()
            kept = [w for w in base if rng.random() > rng.choice([0.0, 0.05, 0.2, 0.5])]
            story = kept + rng.sample(words, rng.randint(0, 3))
        elif kind < 0.67:
            story = []
        elif kind < 0.72:
            story = [rng.choice(words[:3])]
        else:
            story = rng.sample(words, rng.randint(1, 25))
        person = {"name": f"P{i}", "story": " ".join(story), "tags": ["ignored"]}
        if rng.random() < 0.05:
            del person["name"]
        out.append(person)
    return out


def check(personas: list[dict[str, Any]], threshold: float) -> pd.DataFrame:
    got, want = near_duplicates(personas, threshold), all_pairs(personas, threshold)
    pd.testing.assert_frame_equal(got, want)  # same rows, order, values and dtypes
    return got


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.3, 0.5, 2 / 3, 0.7, 0.75, 0.8, 0.9, 0.95, 1.0])
def test_same_pairs_and_values_as_every_pair(seed, threshold):
    got = check(population(150, seed), threshold)
    if 0 < threshold < 1:
        assert 0 < len(got) < 150 * 149 // 2  # the population has pairs on both sides of the threshold


@pytest.mark.parametrize("threshold", [0.8, 0.75, 2 / 3, 0.6, 0.5, 0.9, 1 / 3, 0.7, 0.3, 0.1])
def test_a_pair_exactly_at_the_threshold_is_kept(threshold):
    # o/u equal to the threshold in exact arithmetic, while the float threshold (e.g. 0.8 =
    # 0.8000000000000000444...) is not: the old float test keeps such pairs, so must the join
    personas = []
    for u in range(1, 41):
        for o in range(0, u + 1):
            if o / u == threshold:
                shared = [f"s{u}y{o}z{k}" for k in range(o)]  # one token each ("_" would split it)
                rest = [f"x{u}y{o}z{k}" for k in range(u - o)]
                personas += [{"name": f"a{u}_{o}", "story": " ".join(shared + rest[: len(rest) // 2])},
                             {"name": f"b{u}_{o}", "story": " ".join(shared + rest[len(rest) // 2:])}]
    assert personas
    got = check(personas, threshold)
    assert len(got) == len(personas) // 2 and (got.index_b == got.index_a + 1).all()


def test_empty_token_sets_keep_the_jaccard_of_two_empty_sets():
    empty = [{"name": "E1"}, {"name": "E2", "story": None, "tags": ["x"]}, {"name": "E3", "story": ""}]
    people = [{"name": "F", "story": "farmer"}, *empty]
    got = check(people, 0.8)
    assert got[["a", "b", "jaccard"]].values.tolist() == [["E1", "E2", 1.0], ["E1", "E3", 1.0], ["E2", "E3", 1.0]]
    assert len(check(people, 0.0)) == 6  # threshold 0: every pair, the disjoint ones too (Jaccard 0)
    assert len(check(people, 1.0)) == 3


@pytest.mark.parametrize("threshold", [0.8, 0.0, 1.0, 1.5, -1.0, float("nan")])
@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_populations_and_extreme_thresholds(n, threshold):
    people = [{"name": "A", "story": "red fox"}, {"name": "B", "story": "red fox"}][:n]
    got = check(people, threshold)
    assert len(got) == (1 if n == 2 and threshold <= 1 else 0)


def test_progress_counts_personas():
    people = population(1300, 7)
    told: list[int] = []
    near_duplicates(people, 0.8, told.append)
    assert sum(told) == 1300 and len(told) > 1 and all(k > 0 for k in told)


def test_larger_population_against_every_pair():
    people = population(700, 11, vocab=400)
    got = near_duplicates(people, 0.8)
    pd.testing.assert_frame_equal(got, all_pairs(people, 0.8))  # same rows, order, values and dtypes
    assert 0 < len(got) < 700 * 699 // 2


@pytest.mark.parametrize("n", [64, 128, 129])
def test_block_edges(n):
    people = population(n, 3)
    for threshold in (0.0, 0.6):
        got = near_duplicates(people, threshold)
        pd.testing.assert_frame_equal(got, all_pairs(people, threshold))
    assert len(near_duplicates(people, 0.0)) == n * (n - 1) // 2  # threshold 0: every pair


def test_blocks_bounded_by_the_product_size(monkeypatch):
    # one persona per block (beyond empty ones) when the budget is tiny; blocks cover every persona once
    monkeypatch.setattr(profile._PrefixJoin.blocks, "__defaults__", (1,))
    people = population(200, 5)
    told: list[int] = []
    pd.testing.assert_frame_equal(near_duplicates(people, 0.5, told.append), all_pairs(people, 0.5))
    empty = sum(not tokens(p) for p in people)  # they cost nothing: they may share a block
    assert sum(told) == 200 and len(told) >= 200 - empty and empty < 40
