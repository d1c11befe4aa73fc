"""Sampling attributes with exact counts.

Method (what `sample_attributes` does, deterministic for a seed):
1. Quotas: every categorical attribute (or joint table cell) gets an exact count by the
   largest-remainder (Hamilton) method: floor(p * N), then the leftover seats go to the largest
   fractional parts (ties: larger p, then declaration order). `min_count` then lifts empty strata by
   taking seats from the value most above its exact share. A conditional attribute (`given`) gets
   quotas inside each group of its parent's value.
2. Assignment: each attribute's N labels (a multiset with exactly those counts) are put in a seeded
   random order, independently per attribute (joint tables move their cell tuples together);
   conditionals are shuffled within their parent groups.
3. Forbid rules: an individual matching a rule swaps one attribute (with its conditional children)
   with another individual that has the same parent values, such that neither then breaks any
   rule. Swaps keep every count exact. If no swap can fix it, a `SpecError` says so.
4. Numerics: uniform within the band of a categorical label ("35-44", "65+"), or stratified
   uniform over `range` (one draw in each of N equal slices, in a seeded order).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trials.population.spec import Categorical, Numeric, PopulationSpec, SpecError, value_labels


def largest_remainder(props: dict[str, float], n: int, min_count: int = 0) -> dict[str, int]:
    """Exact integer counts summing to n, as close to p * n as possible (Hamilton's method)."""
    labels = list(props)
    total = sum(props.values())
    if n < 0 or total <= 0:
        raise ValueError(f"largest_remainder needs n >= 0 and a positive total, got n={n}, total={total}")
    exact = [props[k] / total * n for k in labels]
    counts = [math.floor(x + 1e-9) for x in exact]
    order = sorted(range(len(labels)), key=lambda i: (-(exact[i] - counts[i]), -exact[i], i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    while min_count and any(c < min_count for c in counts) and n >= min_count * len(labels):
        low = next(i for i, c in enumerate(counts) if c < min_count)
        donor = max((i for i, c in enumerate(counts) if c > min_count), key=lambda i: (counts[i] - exact[i], -i))
        counts[low] += 1
        counts[donor] -= 1
    return dict(zip(labels, counts))


@dataclass
class Unit:
    """Columns assigned together (one attribute, or a joint table), with an optional parent."""

    columns: list[str]
    parent: str | None = None
    children: list["Unit"] = field(default_factory=list)

    def all_columns(self) -> list[str]:
        return self.columns + [c for child in self.children for c in child.all_columns()]


@dataclass
class Target:
    attribute: str
    value: str
    target_prop: float
    target_count: int


def _units(spec: PopulationSpec) -> list[Unit]:
    """Units in an order where every parent comes before its children."""
    units = [Unit(list(g.attributes)) for g in spec.joint]
    units += [Unit([name]) for name, a in spec.attributes.items() if isinstance(a, Categorical) and a.given is None]
    pending = {n: a for n, a in spec.attributes.items() if isinstance(a, Categorical) and a.given}
    while pending:
        placed = {c for u in units for c in u.columns}
        ready = [n for n, a in pending.items() if a.given in placed]
        if not ready:
            raise SpecError(spec.source, f"attributes.{next(iter(pending))}.given", "circular `given` chain",
                            "make sure the `given` references form a tree")
        for name in ready:
            unit = Unit([name], parent=pending.pop(name).given)
            next(u for u in units if unit.parent in u.columns).children.append(unit)
            units.append(unit)
    return units


def _shuffled(counts: dict[str, int], rng: np.random.Generator) -> list[str]:
    labels = [label for label, k in counts.items() for _ in range(k)]
    return [labels[i] for i in rng.permutation(len(labels))]


def sample_categorical(spec: PopulationSpec, n: int, rng: np.random.Generator) -> tuple[list[dict], list[Target]]:
    rows: list[dict] = [{} for _ in range(n)]
    targets: list[Target] = []
    marginal: dict[str, dict[str, float]] = {}
    units = _units(spec)
    for gi, group in enumerate(spec.joint):
        keys = [tuple(str(c[a]) for a in group.attributes) for c in group.cells]
        counts = largest_remainder({"\x1f".join(k): float(c["p"]) for k, c in zip(keys, group.cells)}, n)
        for i, cell in enumerate(_shuffled(counts, rng)):
            rows[i].update(zip(group.attributes, cell.split("\x1f")))
        for j, a in enumerate(group.attributes):
            marginal[a] = {}
            planned: dict[str, int] = {}
            for key, c in zip(keys, group.cells):
                marginal[a][key[j]] = marginal[a].get(key[j], 0.0) + float(c["p"])
                planned[key[j]] = planned.get(key[j], 0) + counts["\x1f".join(key)]
            targets += [Target(a, v, p, planned[v]) for v, p in marginal[a].items()]
    for unit in units[len(spec.joint):]:
        name = unit.columns[0]
        attr = spec.attributes[name]
        assert isinstance(attr, Categorical)
        if attr.values is not None:
            counts = largest_remainder(attr.values, n, attr.min_count)
            for i, label in enumerate(_shuffled(counts, rng)):
                rows[i][name] = label
            marginal[name] = {k: v / sum(attr.values.values()) for k, v in attr.values.items()}
            targets += [Target(name, v, marginal[name][v], counts[v]) for v in attr.values]
            continue
        parent, table = attr.given, attr.table or {}
        planned = dict.fromkeys(value_labels(spec, name), 0)
        marginal[name] = dict.fromkeys(planned, 0.0)
        for pv in value_labels(spec, parent):
            members = [i for i in range(n) if rows[i][parent] == pv]
            counts = largest_remainder(table[pv], len(members))
            for i, label in zip(members, _shuffled(counts, rng)):
                rows[i][name] = label
            for v, p in table[pv].items():
                planned[v] += counts[v]
                marginal[name][v] += marginal[parent].get(pv, 0.0) * p / sum(table[pv].values())
        targets += [Target(name, v, marginal[name][v], planned[v]) for v in planned]
    _repair(spec, rows, units, rng)
    return rows, targets


def _breaks(row: dict, rules: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rules if all(row.get(a) == str(v) for a, v in r.items())]


def _repair(spec: PopulationSpec, rows: list[dict], units: list[Unit], rng: np.random.Generator) -> None:
    rules = spec.forbid
    if not rules:
        return
    unit_of = {c: u for u in units for c in u.columns}
    for i in range(len(rows)):
        for rule in list(_breaks(rows[i], rules)):
            if not _breaks(rows[i], rules):
                break
            fixed = False
            for attribute in rule:
                unit = unit_of[attribute]
                cols = unit.all_columns()
                for j in rng.permutation(len(rows)):
                    j = int(j)
                    if j == i or (unit.parent and rows[i][unit.parent] != rows[j][unit.parent]):
                        continue
                    for c in cols:
                        rows[i][c], rows[j][c] = rows[j][c], rows[i][c]
                    if not _breaks(rows[i], rules) and not _breaks(rows[j], rules):
                        fixed = True
                        break
                    for c in cols:
                        rows[i][c], rows[j][c] = rows[j][c], rows[i][c]
                if fixed:
                    break
            if not fixed:
                ri = rules.index(rule)
                raise SpecError(spec.source, f"forbid[{ri}]", f"cannot meet the rule {rule} with these "
                                "quotas (every swap breaks a rule)", "relax the rule or change the proportions")


_BAND = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)\s*$")
_OPEN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:\+|or more|and over)\s*$", re.I)
_UNDER = re.compile(r"^\s*(?:under|<|less than)\s*(\d+(?:\.\d+)?)\s*$", re.I)


def parse_band(label: str, open_max: float) -> tuple[float, float] | None:
    if m := _BAND.match(label):
        return float(m[1]), float(m[2])
    if m := _OPEN.match(label):
        return float(m[1]), max(float(m[1]), open_max)
    if m := _UNDER.match(label):
        return 0.0, float(m[1]) - 1
    return None


def sample_numeric(spec: PopulationSpec, rows: list[dict], rng: np.random.Generator) -> list[Target]:
    n, targets = len(rows), []
    for name, attr in spec.attributes.items():
        if not isinstance(attr, Numeric):
            continue
        if attr.band_of:
            for i, row in enumerate(rows):
                band = parse_band(row[attr.band_of], attr.open_max)
                if band is None:
                    raise SpecError(spec.source, f"attributes.{name}.band_of", f"label {row[attr.band_of]!r} "
                                    f"of {attr.band_of!r} is not a band", "use labels like '35-44', '65+', 'under 18'")
                lo, hi = band
                row[name] = int(rng.integers(int(lo), int(hi) + 1)) if attr.integer else float(rng.uniform(lo, hi))
            continue
        lo, hi = attr.range  # type: ignore[misc]
        u = (rng.permutation(n) + rng.random(n)) / max(n, 1)
        for row, x in zip(rows, u):
            row[name] = min(int(hi), int(math.floor(lo + x * (hi - lo + 1)))) if attr.integer else float(lo + x * (hi - lo))
        counts = largest_remainder({bin_label(attr, b): 1.0 for b in range(attr.bins)}, n)
        targets += [Target(name, k, 1.0 / attr.bins, c) for k, c in counts.items()]
    return targets


def numeric_bins(attr: Numeric) -> list[tuple[float, float]]:
    lo, hi = attr.range  # type: ignore[misc]
    top = hi + 1 if attr.integer else hi
    w = (top - lo) / attr.bins
    return [(lo + b * w, lo + (b + 1) * w) for b in range(attr.bins)]


def bin_label(attr: Numeric, b: int) -> str:
    blo, bhi = numeric_bins(attr)[b]
    return f"[{blo:g}, {bhi:g})"


def bin_of(attr: Numeric, x: float) -> str:
    for b, (blo, bhi) in enumerate(numeric_bins(attr)):
        if x < bhi or b == attr.bins - 1:
            return bin_label(attr, b)
    raise AssertionError("unreachable")


def sample_attributes(spec: PopulationSpec, n: int, seed: int) -> tuple[pd.DataFrame, list[Target]]:
    """N individuals' attributes (one row each, columns in spec order) and the targets."""
    if n < 1:
        raise SpecError(spec.source, "n", f"n={n}", "use n >= 1")
    for name, attr in spec.attributes.items():
        if isinstance(attr, Categorical) and attr.values and attr.min_count * len(attr.values) > n:
            raise SpecError(spec.source, f"attributes.{name}.min_count", f"n={n} is smaller than the "
                            f"{len(attr.values)} strata x min_count {attr.min_count}",
                            f"use n >= {attr.min_count * len(attr.values)} or min_count: 0")
    rng = np.random.default_rng(seed)
    rows, targets = sample_categorical(spec, n, rng)
    targets += sample_numeric(spec, rows, rng)
    columns = [c for g in spec.joint for c in g.attributes] + list(spec.attributes)
    return pd.DataFrame(rows, columns=columns), targets
