"""The profile of a population (realised vs target distribution of each attribute) and the
near-duplicate report."""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from scipy import stats

from trials.similarity import jaccard

PROFILE_COLUMNS = ["attribute", "value", "target_prop", "target_count", "realised_count", "realised_prop",
                   "deviation", "chi2", "p_value", "max_abs_deviation"]


def profile_table(table: pd.DataFrame, targets: Iterable[Any], binners: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per attribute x value: target_prop/target_count (the planned exact count) vs
    realised_count/realised_prop, deviation = realised_prop - target_prop; per attribute, a
    chi-square goodness-of-fit against n * target_prop (chi2, p_value; NaN with a single value;
    inf when a value with target 0 appears) and the max absolute deviation."""
    binners = binners or {}
    n = len(table)
    rows = []
    by_attr: dict[str, list[Any]] = {}
    for t in targets:
        by_attr.setdefault(t.attribute, []).append(t)
    for attribute, ts in by_attr.items():
        column = table[attribute].map(binners[attribute]) if attribute in binners else table[attribute].astype(str)
        counts = column.value_counts()
        values = [t.value for t in ts] + [v for v in counts.index if v not in {t.value for t in ts}]
        target = {t.value: t for t in ts}
        block = []
        for v in values:
            t = target.get(v)
            realised = int(counts.get(v, 0))
            tp = t.target_prop if t else 0.0
            block.append({"attribute": attribute, "value": v, "target_prop": tp,
                          "target_count": t.target_count if t else 0, "realised_count": realised,
                          "realised_prop": realised / n if n else np.nan,
                          "deviation": (realised / n if n else np.nan) - tp})
        chi2, p = _chi_square([b["realised_count"] for b in block], [b["target_prop"] for b in block], n)
        max_dev = max(abs(b["deviation"]) for b in block)
        for b in block:
            b.update(chi2=chi2, p_value=p, max_abs_deviation=max_dev)
        rows += block
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def _chi_square(observed: list[int], props: list[float], n: int) -> tuple[float, float]:
    total = sum(props)
    if n == 0 or len(observed) < 2 or total <= 0:
        return float("nan"), float("nan")
    expected = np.array(props) / total * n
    obs = np.array(observed, dtype=float)
    if np.any((expected == 0) & (obs > 0)):
        return float("inf"), 0.0
    keep = expected > 0
    if keep.sum() < 2:
        return float("nan"), float("nan")
    res = stats.chisquare(obs[keep], expected[keep])
    return float(res.statistic), float(res.pvalue)


_WORD = re.compile(r"[a-z0-9]+")


def tokens(persona_data: dict[str, Any]) -> set[str]:
    """Lower-case word tokens of every value in a persona (name excluded: it is forced unique)."""
    out: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                if k not in ("name", "tags"):
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif v is not None:
            out.update(_WORD.findall(str(v).lower()))

    walk(persona_data)
    return out


def near_duplicates(personas: list[dict[str, Any]], threshold: float = 0.8,
                    advance: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Pairs of personas whose token sets (attributes + narrative) have Jaccard >= threshold.
    Compares every pair (n(n-1)/2); `advance(k)`, if given, is told of each k pairs done."""

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
