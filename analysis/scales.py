"""The one parser of a metric table's `scale` column: named scales and 'low-high' integer ranges.

Every part of `analysis` that reads a scale (table checks, ordinal model, count model) uses the
canonical form returned here, so 'Likert', ' likert ' and 'likert' are one scale everywhere, and
'-3 to 3', '-3-3' and '-3 - 3' one bipolar range.
"""

from __future__ import annotations

import re

#: scales with a name (besides any 'low-high' integer range such as 0-9, 1-5, -3-3, 0-100)
NAMED = ("real", "count", "ordinal", "likert")
#: rating scales analysed as ordered categories (proportional odds), in canonical form
ORDINAL_SCALES = ("0-9", "1-5", "1-7", "0-10", "ordinal", "likert")
#: the scales a message lists as examples
SCALES = tuple(dict.fromkeys((*NAMED, *ORDINAL_SCALES)))

# low and high are integers, either may be negative: "-3-3", "-5--1", "-3 to 3", "1 - 5"
_RANGE = re.compile(r"([+-]?\d+)\s*(?:-|–|—|to)\s*([+-]?\d+)")


class ScaleError(ValueError):
    """A scale text that is not a scale: `what` it is and the `fix` (the caller names file and rows)."""

    def __init__(self, what: str, fix: str):
        super().__init__(f"{what}. Fix: {fix}.")
        self.what, self.fix = what, fix


def canonical_scale(text: str) -> str:
    """The canonical form of a scale text: '' for none, a lower-case name of NAMED, or 'low-high'
    with integer bounds (low < high). Case and spaces do not matter. Raises ScaleError naming the
    fix for a reversed or one-point range and for an unknown text."""
    s = str(text).strip().casefold()
    if s == "" or s in NAMED:
        return s
    m = _RANGE.fullmatch(s)
    if not m:
        raise ScaleError(f"unknown scale {text!r}", "use a range 'low-high' of integers (0-9, 1-5, -3-3, "
                         f"'-3 to 3'), one of {', '.join(SCALES)} (any case), "
                         "or leave it empty")
    low, high = int(m.group(1)), int(m.group(2))
    if low > high:
        raise ScaleError(f"reversed range {text!r}", f"write {high}-{low}")
    if low == high:
        raise ScaleError(f"one-point range {text!r}", "a range needs low < high")
    return f"{low}-{high}"


def scale_range(scale: str) -> tuple[float, float] | None:
    """(low, high) of a 'low-high' scale such as 0-9 or -3-3; None for a named scale, '' and any
    text that is not a valid range."""
    try:
        canon = canonical_scale(scale)
    except ScaleError:
        return None
    m = _RANGE.fullmatch(canon)
    return (float(m.group(1)), float(m.group(2))) if m else None
