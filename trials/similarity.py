"""Text similarity without an LLM: normalised content words, Jaccard overlap, character 3-gram
cosine, and "is this text new?" flags. Shared by the stagnation detector (steering), idea
de-duplication (judging) and near-duplicate personas (population).

`jaccard`: Jaccard overlap of normalised content-word sets (lower case, words of letters/digits, a
small stop-word list removed, a plural "s" stripped). `char3`: cosine similarity of character
3-gram counts of the normalised text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Callable, Literal, Sequence

STOPWORDS = frozenset("""a an the and or but if then so to of in on at by for with from as is are was were be
been being it its this that these those i you he she we they me my your our their his her them us do does
did have has had will would could should can may might must not no yes just also very really too about
what which who how why when where there here than more most some any all each let lets maybe think idea
ideas how could would i'm it's we're that's""".split())
Method = Literal["jaccard", "char3"]


def _tokens(text: str) -> list[str]:
    """Lower-case runs of letters/digits: the one tokeniser behind `words` and `char_ngrams`."""
    return re.findall(r"[a-z0-9]+", text.lower())


def words(text: str) -> set[str]:
    out = set()
    for w in _tokens(text):
        if w in STOPWORDS or len(w) < 2:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def char_ngrams(text: str, n: int = 3) -> Counter[str]:
    norm = " ".join(_tokens(text))
    return Counter(norm[i:i + n] for i in range(max(0, len(norm) - n + 1)))


def cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 1.0 if a == b else 0.0
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    return dot / (math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values())))


#: method -> (features of one text, similarity of two feature values)
_METHODS: dict[str, tuple[Callable[[str], Any], Callable[[Any, Any], float]]] = {
    "jaccard": (words, jaccard), "char3": (char_ngrams, cosine)}


def _method(method: str) -> tuple[Callable[[str], Any], Callable[[Any, Any], float]]:
    try:
        return _METHODS[method]
    except KeyError:
        raise ValueError(f"similarity method must be 'jaccard' or 'char3', got {method!r}") from None


def similarity(a: str, b: str, method: Method = "jaccard") -> float:
    """Similarity in [0, 1] of two texts (see the module docstring)."""
    features, sim = _method(method)
    return sim(features(a), features(b))


def novel_flags(texts: Sequence[str], threshold: float, method: Method = "jaccard",
                last: int | None = None) -> list[bool]:
    """For each text (only the `last` ones, when given): is it below `threshold` similarity to
    every text before it? Each text is tokenised once."""
    features, sim = _method(method)
    feats = [features(t) for t in texts]
    start = 0 if last is None else max(0, len(feats) - last)
    return [all(sim(feats[i], prev) < threshold for prev in feats[:i]) for i in range(start, len(feats))]
