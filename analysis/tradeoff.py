"""One-line trade-off summaries: what a treatment moves up and down, with CIs."""

from __future__ import annotations

import math

import pandas as pd


def signed(x: float, digits: int = 2) -> str:
    """'+5.33'; '+1.22e+160' / '+3.1e-05' where fixed point would print hundreds of digits or 0.00."""
    if math.isfinite(x) and x != 0 and not 10.0**-digits <= abs(x) < 1e6:
        return f"{x:+.3g}"
    return f"{x:+.{digits}f}"


def fmt_effect(metric: str, diff: float, lo: float, hi: float, digits: int = 2) -> str:
    """'ideas_qty +5.33 [+3.67, +7.00]'."""
    if not math.isfinite(diff):
        return f"{metric} n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{metric} {signed(diff, digits)} [CI n/a]"
    return f"{metric} {signed(diff, digits)} [{signed(lo, digits)}, {signed(hi, digits)}]"


def tradeoffs(effects: pd.DataFrame, alpha: float = 0.05) -> dict[str, list[str]]:
    """Per treatment: a line of metrics whose CI excludes 0 (up first, then down), then the unclear ones.

    '*' marks effects still significant after Holm correction over the whole family.
    """
    out: dict[str, list[str]] = {}
    for (control, treatment), rows in effects.groupby(["control", "treatment"], sort=False):
        label = treatment if (effects["control"] == control).all() else f"{treatment} vs {control}"
        clear = rows[(rows["ci_low"] > 0) | (rows["ci_high"] < 0)]
        up = clear[clear["diff"] > 0].sort_values("hedges_g", ascending=False)
        down = clear[clear["diff"] < 0].sort_values("hedges_g")
        unclear = rows.drop(clear.index)

        def items(frame: pd.DataFrame) -> list[str]:
            return [fmt_effect(r.metric, r.diff, r.ci_low, r.ci_high) + ("*" if r.p_holm < alpha else "")
                    for r in frame.itertuples()]

        moved = items(pd.concat([up, down]))
        lines = ["; ".join(moved) if moved else "no metric moved clearly (no CI excludes 0)"]
        if len(unclear):
            lines.append("unclear: " + "; ".join(items(unclear)))
        out[label] = lines
    return out
