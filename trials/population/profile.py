"""The profile of a population (realised vs target distribution of each attribute) and the
near-duplicate report."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from scipy import sparse, stats

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
    """Pairs of personas whose token sets (attributes + narrative) have Jaccard >= threshold, sorted
    by index_a then index_b; `advance(k)`, if given, is told of each k personas checked.

    An exact set-similarity join: the same pairs and values as comparing all n(n-1)/2 pairs, found
    by prefix filtering (Chaudhuri, Ganti & Kaushik 2006, "A primitive operator for similarity joins
    in data cleaning", ICDE; Bayardo, Ma & Srikant 2007, "Scaling up all pairs similarity search",
    WWW) with a global token order, rarest first, the size filter and an overlap upper bound in the
    spirit of PPJoin's positional filter (Xiao, Wang, Lin & Yu 2008, "Efficient similarity joins for
    near duplicate detection", WWW). With o = |x & y|, J(x, y) >= t  <=>  o >= t(|x|+|y|)/(1+t),
    which implies o >= ceil(t*|x|) and min(|x|, |y|) >= ceil(t*max(|x|, |y|)); so x's prefix (its
    first |x| - ceil(t*|x|) + 1 tokens) meets y's prefix, hence y, and o <= |prefix(x) & y| +
    (|x| - len(prefix(x))). |prefix(x) & y| for every y is one sparse product (scipy.sparse);
    the pairs that pass these bounds are verified by their exact intersection counts with the
    same float test as `jaccard`. Two empty sets have Jaccard `jaccard(set(), set())` (1.0);
    threshold <= 0 keeps every pair."""
    cols = ["a", "b", "index_a", "index_b", "jaccard"]
    n = len(personas)
    if n < 2 or not threshold <= 1:  # Jaccard <= 1: nothing reaches a threshold > 1 (or NaN)
        return pd.DataFrame([], columns=cols)
    full, sizes = _incidence([tokens(p) for p in personas])
    join = None if threshold <= 0 else _PrefixJoin(full, sizes, threshold)
    found_a, found_b, found_j = [], [], []
    rows = min(2048, max(64, -(-n // 50)))  # ~50 steps of progress
    bounds = [*range(0, n, rows), n] if join is None else join.blocks(rows)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        a, b = _all_pairs(start, stop, n) if join is None else join.candidates(start, stop)
        inter = np.asarray(full[a].multiply(full[b]).sum(axis=1)).ravel() if len(a) else np.zeros(0)
        union = sizes[a] + sizes[b] - inter
        with np.errstate(invalid="ignore", divide="ignore"):  # inter / union: the float of len(a & b) / len(a | b)
            jac = np.where(union == 0, jaccard(set(), set()), inter / union)
        keep = jac >= threshold
        for found, x in ((found_a, a), (found_b, b), (found_j, jac)):
            found.append(x[keep])
        if advance is not None:
            advance(stop - start)
    a, b, jac = (np.concatenate(x) for x in (found_a, found_b, found_j))
    if not len(a):
        return pd.DataFrame([], columns=cols)
    order = np.lexsort((b, a))
    a, b, jac = a[order], b[order], jac[order]
    return pd.DataFrame({"a": [personas[i].get("name") for i in a], "b": [personas[j].get("name") for j in b],
                         "index_a": a.astype(np.int64), "index_b": b.astype(np.int64),
                         "jaccard": [round(float(x), 4) for x in jac]}, columns=cols)


def _incidence(sets: list[set[str]]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Persona x token 0/1 matrix whose columns run rarest token first (ties: first seen), each
    row's indices sorted: a row's first k indices are its k rarest tokens. And the set sizes."""
    sizes = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
    codes, uniques = pd.factorize(pd.Series([t for s in sets for t in s], dtype=object))
    freq = np.bincount(codes, minlength=len(uniques))
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[np.argsort(freq, kind="stable")] = np.arange(len(uniques))
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    m = sparse.csr_matrix((np.ones(len(codes), dtype=np.int32), rank[codes], indptr),
                          shape=(len(sets), len(uniques)))
    m.sort_indices()
    return m, sizes


def _all_pairs(start: int, stop: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (a, b), a in [start, stop), b > a (threshold <= 0: disjoint sets qualify too)."""
    a = np.repeat(np.arange(start, stop), n - 1 - np.arange(start, stop))
    b = np.concatenate([np.arange(i + 1, n, dtype=np.int64) for i in range(start, stop)])
    return a, b


class _PrefixJoin:
    """Candidate pairs for a threshold in (0, 1] (the filters of `near_duplicates`).

    t is the threshold lowered by 2**-52 of itself, as an exact rational: a float quotient
    o/u >= threshold implies o/u >= t exactly, so the filters lose no pair that passes the float
    test (8/10 passes threshold 0.8 although the float 0.8 is slightly above 8/10); every bound
    below is then computed in exact integer arithmetic."""

    def __init__(self, full: sparse.csr_matrix, sizes: np.ndarray, threshold: float):
        t = Fraction(threshold) * (1 - Fraction(1, 2 ** 52))
        self.sizes = sizes
        self.partner_min = _ceil_ratio(t.numerator, t.denominator, sizes)  # ceil(t*|x|)
        # min overlap of sets of total size s: ceil(t*s/(1+t))
        self.overlap_min = _ceil_ratio(t.numerator, t.numerator + t.denominator,
                                       np.arange(2 * int(sizes.max()) + 1))
        prefix_len = np.where(sizes > 0, sizes - self.partner_min + 1, 0)
        self.rest = sizes - prefix_len  # tokens of x after its prefix
        pos = np.arange(full.nnz) - np.repeat(full.indptr[:-1], sizes)
        take = pos < np.repeat(prefix_len, sizes)
        self.prefix = sparse.csr_matrix((full.data[take], full.indices[take],
                                         np.concatenate([[0], np.cumsum(prefix_len)])), shape=full.shape)
        self.full_t = full.T.tocsr()
        # entries of one row of the product prefix @ full_t, at most: the sum of its prefix tokens' counts
        self.cost = self.prefix @ np.asarray(full.sum(axis=0)).ravel()
        self.empty = np.flatnonzero(sizes == 0)

    def blocks(self, rows: int, budget: int = 5_000_000) -> list[int]:
        """Row boundaries of blocks of at most `rows` personas whose product holds at most about
        `budget` entries (a block of one persona may exceed it): memory stays bounded even when
        prefixes hold common tokens."""
        out, total, start = [0], np.concatenate([[0], np.cumsum(self.cost)]), 0
        while start < len(self.sizes):
            stop = int(np.searchsorted(total, total[start] + budget, side="right")) - 1
            start = max(start + 1, min(stop, start + rows, len(self.sizes)))
            out.append(start)
        return out

    def candidates(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (a, b), a in [start, stop), b > a, that pass the prefix, size and overlap bounds;
        plus every pair of empty sets."""
        hits = (self.prefix[start:stop] @ self.full_t).tocoo()  # |prefix(a) & b|
        a, b, seen = hits.row.astype(np.int64) + start, hits.col.astype(np.int64), hits.data
        upper = b > a
        a, b, seen = a[upper], b[upper], seen[upper]
        la, lb = self.sizes[a], self.sizes[b]
        fit = ((np.minimum(la, lb) >= self.partner_min[np.where(la >= lb, a, b)])
               & (seen + self.rest[a] >= self.overlap_min[la + lb]))
        a, b = a[fit], b[fit]
        empty_a = self.empty[(self.empty >= start) & (self.empty < stop)]
        if len(empty_a):
            ea = np.repeat(empty_a, len(self.empty))
            eb = np.tile(self.empty, len(empty_a))
            a, b = np.concatenate([a, ea[eb > ea]]), np.concatenate([b, eb[eb > ea]])
        return a, b


def _ceil_ratio(num: int, den: int, values: np.ndarray) -> np.ndarray:
    """ceil(num * v / den) for each v, in exact integer arithmetic (once per distinct value)."""
    distinct, back = np.unique(values, return_inverse=True)
    out = np.array([-((-num * int(v)) // den) for v in distinct], dtype=np.int64)
    return out[back.reshape(-1)]
