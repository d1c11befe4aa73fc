"""Time of the near-duplicate check of `trials population` (trials/population/profile.py
near_duplicates, an exact prefix-filtering Jaccard join) vs the former all-pairs comparison.

Personas are synthetic: attributes drawn from small value sets and a 60-word narrative drawn from a
Zipf-like 5,000-word vocabulary; one persona in ten is a near-copy of an earlier one (a few words
changed), so the check has pairs to find. The all-pairs comparison (n(n-1)/2 Jaccards) is timed at
--old's n only (default 2000; 0: never), and the two outputs are compared there.

    python benchmarks/near_duplicates.py [--n 2000 20000] [--threshold 0.8] [--old 2000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trials.population.profile import near_duplicates, tokens  # noqa: E402
from trials.similarity import jaccard  # noqa: E402


def personas(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    vocab = [f"word{k}" for k in range(5000)]
    weights = [1 / (k + 1) for k in range(len(vocab))]
    out: list[dict] = []
    for i in range(n):
        if out and rng.random() < 0.1:
            base = dict(rng.choice(out))
            story = base["narrative"].split()
            for _ in range(rng.randint(1, 4)):
                story[rng.randrange(len(story))] = rng.choice(vocab)
            out.append({**base, "name": f"P{i}", "narrative": " ".join(story)})
            continue
        out.append({"name": f"P{i}", "gender": rng.choice(["Female", "Male"]),
                    "age_range": rng.choice(["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]),
                    "region": rng.choice(["Northeast", "Midwest", "South", "West"]),
                    "narrative": " ".join(rng.choices(vocab, weights, k=60))})
    return out


def all_pairs(people: list[dict], threshold: float) -> list[tuple[int, int, float]]:
    """The former check: every pair's Jaccard."""
    sets = [tokens(p) for p in people]
    return [(i, j, round(jac, 4)) for i in range(len(sets)) for j in range(i + 1, len(sets))
            if (jac := jaccard(sets[i], sets[j])) >= threshold]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[2000, 20000])
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--old", type=int, default=2000, help="time the all-pairs comparison at this n")
    a = p.parse_args()
    for n in a.n:
        people = personas(n)
        t0 = time.perf_counter()
        got = near_duplicates(people, a.threshold)
        wall = time.perf_counter() - t0
        line = f"n={n:,}: exact join {wall:.2f} s, {len(got):,} pairs >= {a.threshold}"
        if n == a.old:
            t0 = time.perf_counter()
            old = all_pairs(people, a.threshold)
            line += f"; all pairs {time.perf_counter() - t0:.1f} s"
            same = old == list(zip(got.index_a, got.index_b, got.jaccard))
            line += ", same pairs and values" if same else ", DIFFERENT from all pairs"
            if not same:
                print(line)
                return 1
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
