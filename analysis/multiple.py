"""Multiple-comparison adjustment of the headline p-values across a stated family."""

from __future__ import annotations

from typing import Callable

import numpy as np


def _adjust(p: np.ndarray, step: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """Apply `step(sorted finite p, m)` to the finite p-values; NaNs are left out and stay NaN."""
    p = np.asarray(p, float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    out[order] = np.minimum(step(p[order], len(ok)), 1.0)
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error)."""
    return _adjust(p, lambda s, m: np.maximum.accumulate((m - np.arange(m)) * s))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate)."""
    return _adjust(p, lambda s, m: np.minimum.accumulate((s * m / np.arange(1, m + 1))[::-1])[::-1])
