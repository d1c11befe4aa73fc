"""Which two metrics the trade-off chart plots: the pair the user named in config.yaml
(`experiment.tradeoff: [ideas, persona_adherence]`), else the paper's headline pair when both
metrics exist (ideas vs persona adherence, e.g. for a TinyTroupe result file), else the two
largest opposite effects, chosen automatically and said so in the caption."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from reports.figures import pick_tradeoff
from reports.fmt import metric, metric_key

#: The TinyTroupe paper's headline trade-off (+5.33 ideas vs -0.60 persona adherence).
PAPER_PAIR = ("ideas", "persona_adherence")


def tradeoff_pair(config: dict[str, Any] | None, effects: pd.DataFrame) -> tuple[tuple[str, str] | None, str]:
    """((x metric, y metric) as named in effects.csv, how it was chosen) or (None, why not)."""
    names = [str(m) for m in dict.fromkeys(effects["metric"])] if "metric" in effects else []
    by_key = {metric_key(m): m for m in names}
    named = ((config or {}).get("experiment") or {}).get("tradeoff")
    if named is not None:
        if not (isinstance(named, (list, tuple)) and len(named) == 2):
            return None, (f"experiment.tradeoff={named!r} in config.yaml is not a pair of metric names; "
                          "use e.g. experiment.tradeoff=[ideas,persona_adherence]")
        absent = [str(m) for m in named if metric_key(m) not in by_key]
        if absent:
            return None, (f"experiment.tradeoff names {absent}, which the analysis has no effects for "
                          f"(metrics: {names})")
        return (by_key[metric_key(named[0])], by_key[metric_key(named[1])]), "named in experiment.tradeoff"
    if all(k in by_key for k in PAPER_PAIR):
        return (by_key[PAPER_PAIR[0]], by_key[PAPER_PAIR[1]]), "default: the paper's headline pair"
    pair = pick_tradeoff(effects)
    if pair is None:
        return None, _why_no_pick(effects, names, has_config=config is not None)
    return pair, "chosen automatically: the largest standardized effects of opposite sign (set experiment.tradeoff to choose)"


def _why_no_pick(effects: pd.DataFrame, names: list[str], has_config: bool) -> str:
    """Why no pair could be chosen automatically: too few metrics, or too few with a Hedges' g (the
    choice is by standardized effect), naming the metrics without one and the analysis' reason."""
    if len(names) < 2:
        return "fewer than two metrics with effects"
    g = pd.to_numeric(effects["hedges_g"], errors="coerce") if "hedges_g" in effects else pd.Series(
        float("nan"), index=effects.index)
    reasons: dict[str, list[str]] = {}
    for name, rows in effects[g.isna()].groupby("metric", sort=False):
        if pd.to_numeric(g[effects["metric"] == name], errors="coerce").notna().any():
            continue
        why = [m for note in rows.get("notes", pd.Series(dtype=object)).dropna().astype(str)
               for m in re.findall(r"g undefined: ([^;]+)", note)]
        reasons.setdefault(", ".join(dict.fromkeys(why)) or "not computed", []).append(metric(name))
    detail = "; ".join(f"{', '.join(ms)}: {why}" for why, ms in reasons.items())
    return ("the pair is chosen by standardized effect, and fewer than two metrics have one (no Hedges' g for "
            f"{detail})" + ("; name the pair with experiment.tradeoff=[x,y]" if has_config else ""))
