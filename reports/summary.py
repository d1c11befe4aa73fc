"""The plain-language summary that opens the report: per treatment, what got better and what got
worse (raw and relative change, CI at the analysis' level, whether it survives Holm correction); treatments that were
not delivered; metrics with unequal missingness; and what this run cannot support.

Every number is read from the analysis tables (effects.csv, missing.csv) and the run's manifest;
nothing is recomputed. Effects whose CI includes 0 are not called gains or losses."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from reports import fmt
from reports.caveats import params_billions
from reports.load import RunData
from reports.metricinfo import MetricInfo, relative_change, verdict
from reports.runinfo import arm_configs, delivery, models
from reports.tradeoff import tradeoff_pair

#: the Holm threshold when summary.json does not record the analysis' alpha (the sentence states it)
ALPHA = 0.05


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def effect_phrase(rec: pd.Series, info: MetricInfo, alpha: float | None = ALPHA) -> str:
    """`+5.33 ideas per session (+138%, 95% CI +3.70 to +6.97)`; the relative change is left out
    (with its reason) when the control mean is 0."""
    diff = _num(rec.get("diff"))
    rel, reason = relative_change(diff, rec.get("mean_control"))
    parts = [fmt.signed_percent(rel) if not reason else f"relative change undefined: {reason}"]
    lo, hi = _num(rec.get("ci_low")), _num(rec.get("ci_high"))
    if math.isfinite(lo) and math.isfinite(hi):
        parts.append(f"{fmt.ci_name(alpha)} {fmt.signed(lo)} to {fmt.signed(hi)}")
    else:
        parts.append("no CI computed")
    if info.unit and info.label.split()[0] not in info.unit:  # "-0.60 persona adherence (0-9 score; -11%, ...)"
        return f"{fmt.signed(diff)} {info.label} ({info.unit}; {', '.join(parts)})"
    return f"{info.amount(diff)} ({', '.join(parts)})"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _holm(clear: pd.DataFrame, infos: dict[str, MetricInfo], alpha: float = ALPHA) -> str:
    """Whether the clear effects survive Holm correction (adjusted p < alpha), worded for how many do:
    `It survives` / `Both survive` / `All 3 survive`; `It does not survive` / `Neither survives` /
    `None of the 3 survives`; `Only ideas survives`."""
    if "p_holm" not in clear.columns or clear["p_holm"].isna().all():
        return "Holm-adjusted p-values are not available."
    survive = clear[clear["p_holm"] < alpha]
    names = [infos[str(m)].label for m in survive["metric"]]
    n, k, rule = len(clear), len(survive), f"Holm correction (adjusted p < {alpha:g})"
    if k == n:
        return ("It survives" if n == 1 else "Both survive" if n == 2 else f"All {n} survive") + f" {rule}."
    if k == 0:
        return ("It does not survive" if n == 1 else "Neither survives" if n == 2 else f"None of the {n} survives") \
            + f" {rule} across the metric family: treat as tentative."
    return f"Only {_join(names)} {'survives' if k == 1 else 'survive'} {rule}."


def treatment_sentence(treatment: str, rows: pd.DataFrame, infos: dict[str, MetricInfo],
                       alpha: float | None = ALPHA) -> str:
    """One or two sentences for one treatment (rows: its effects.csv rows); `alpha` is the analysis'
    (summary.json): the level of its CIs and the Holm threshold (0.05, said so, when not recorded)."""
    verdicts = [verdict(infos[str(r["metric"])], r.get("diff"), r.get("ci_low"), r.get("ci_high"))
                for _, r in rows.iterrows()]
    rows = rows.assign(_verdict=verdicts, _size=rows["hedges_g"].abs() if "hedges_g" in rows else 0.0)
    rows = rows.sort_values("_size", ascending=False, na_position="last")
    wins, losses = rows[rows["_verdict"] == "better"], rows[rows["_verdict"] == "worse"]
    unclear, no_ci = rows[rows["_verdict"] == "unclear"], rows[rows["_verdict"] == "no CI"]

    def phrases(frame: pd.DataFrame) -> list[str]:
        return [effect_phrase(r, infos[str(r["metric"])], alpha) for _, r in frame.iterrows()]

    if wins.empty and losses.empty:
        diffs = pd.to_numeric(rows["diff"], errors="coerce") if "diff" in rows else pd.Series(dtype=float)
        if len(diffs) and (diffs == 0).all():
            return f"{treatment}: exactly the same as control on every metric (all differences are 0)."
        text = f"{treatment}: no metric changed clearly (every {fmt.ci_name(alpha)} includes 0 or none was computed)."
        sized = rows[rows["_size"].notna() & (rows["_size"] > 0)] if "_size" in rows else rows.iloc[0:0]
        if len(sized):
            top = sized.iloc[0]
            text += (f" The largest difference in standardized terms (Hedges' g {fmt.signed(top['hedges_g'])}): "
                     f"{effect_phrase(top, infos[str(top['metric'])], alpha)}.")
        return text
    if not wins.empty:
        text = f"{treatment}: {_join(phrases(wins))}"
        text += f", at a cost of {_join(phrases(losses))}." if not losses.empty else "."
    else:
        text = f"{treatment}: worse on {_join(phrases(losses))}, with no clear gain."
    text += " " + _holm(pd.concat([wins, losses]), infos, ALPHA if alpha is None else alpha)
    if len(unclear):
        text += f" No clear change in {_join([infos[str(m)].label for m in unclear['metric']])}."
    if len(no_ci):
        text += f" No CI could be computed for {_join([infos[str(m)].label for m in no_ci['metric']])} (see Notes)."
    return text


def not_delivered(data: RunData) -> list[str]:
    """Arms whose mechanism the manipulation check (manifest `arms.<arm>.delivered`, issue #11)
    found not delivered or could not check, named by their role in the comparisons shown
    (runinfo.delivery: a treatment, or the baseline chosen with `trials report --control`)."""
    out = []
    checks = delivery(data)
    for arm, role, delivered, why in checks:
        note = f" ({why})" if why else ""
        if role == "baseline":
            if delivered is False:
                out.append(f"The control of these comparisons, {arm!r}, did not get its own mechanism{note}: it ran "
                           f"like the run's control {data.run_control!r}, so each difference is measured against "
                           "an arm without that mechanism.")
            elif delivered is None:
                out.append(f"The control of these comparisons, {arm!r}: delivery of its own mechanism could not be "
                           f"checked{note}.")
        elif delivered is False:
            out.append(f"Treatment {arm} was NOT delivered{note}: its differences are not effects of the "
                       "mechanism (see the measurement check).")
        elif delivered is None:
            out.append(f"Treatment {arm}: delivery could not be checked{note}.")
    if not out and checks and all(d is True for _, _, d, _ in checks):
        out.append("Manipulation check: every treatment was delivered (see the measurement check)."
                   if all(role == "treatment" for _, role, _, _ in checks) else
                   "Manipulation check: every arm's own mechanism was delivered (see the measurement check).")
    eff = data.tables.effects
    if not out and not checks and "treatment_delivered" in eff.columns:
        bad = eff.loc[eff["treatment_delivered"].astype(str).str.lower().isin(["false", "0"]), "treatment"]
        out += [f"Treatment {t} was NOT delivered (effects.csv treatment_delivered): its differences are "
                "not effects of the mechanism." for t in dict.fromkeys(bad.astype(str))]
    return out


def comparison_basis(data: RunData) -> list[str]:
    """When `trials report --control/--unpaired` recomputed the analysis: what is compared with
    what, and how, against the run's own design."""
    items = []
    if data.run_control and data.control and data.run_control != data.control:
        items.append(f"Every comparison here is against {data.control!r} (chosen with `trials report --control`), "
                     f"not the run's own control {data.run_control!r}.")
    design = (data.manifest or {}).get("paired")
    if design is True and data.paired is False:
        items.append("The arms were run paired (replicate r of every arm shares its seed and people) but this "
                     "analysis treats them as unpaired (`--unpaired`).")
    return items


def unequal_missingness(data: RunData, infos: dict[str, MetricInfo]) -> list[str]:
    """Metrics flagged by analysis' missing.csv as missing more in one arm than another."""
    miss = data.tables.missing
    flag = next((c for c in miss.columns if "differential" in str(c).lower()), None)
    if flag is None or "metric" not in miss.columns:
        return []
    flagged = miss[miss[flag].astype(str).str.lower().isin(["true", "1", "yes"])]
    names = [infos[str(m)].label if str(m) in infos else fmt.metric(m) for m in dict.fromkeys(flagged["metric"])]
    if not names:
        return []
    return [f"Unequal missingness between arms in {_join(names)}: the arms' values may not be comparable "
            "(see Quality of the run)."]


def limits(data: RunData) -> list[str]:
    """What the run cannot support: small n, tiny or scripted models, imported data."""
    out = []
    llm, judge = models(data)
    if "scripted" in (llm.get("backend"), judge.get("backend")):
        out.append("The scripted backend produced these numbers: they test the pipeline, not any mechanism.")
    else:
        tiny = [f"{role} ({spec.get('model')})" for role, spec in (("agents", llm), ("judge", judge))
                if (size := params_billions(str(spec.get("model", "")))) is not None and size < 1]
        if tiny:
            out.append(f"Tiny model for the {_join(tiny)}: judged scores are weak evidence; rerun with a "
                       "stronger model before acting on them.")
    reps = (data.manifest or {}).get("replicates")
    eff = data.tables.effects
    if isinstance(reps, int) and reps < 10:
        out.append(f"Only {reps} session(s) per arm: moderate effects can be missed and intervals are wide.")
    elif not isinstance(reps, int) and "n_control" in eff and len(eff) and eff["n_control"].min() < 10:
        out.append(f"As few as {int(eff['n_control'].min())} values in an arm: intervals are wide.")
    if data.kind == "tinytroupe":
        out.append("Imported TinyTroupe results: agents in one session are treated as independent, so "
                   "p-values are probably too small.")
    return out


def tradeoff_sentence(pair: tuple[str, str] | None, how: str, effects: pd.DataFrame,
                      infos: dict[str, MetricInfo]) -> str:
    """`Trade-off asked for (ideas vs persona adherence; named in experiment.tradeoff): treatment +5.33 ideas
    per session vs -0.60 persona adherence (0-9 score).`"""
    if pair is None:
        return f"No trade-off chart: {how}."
    x, y = (infos[m] for m in pair)
    per = []
    for treatment, rows in effects.groupby("treatment", sort=False):
        rx, ry = rows[rows["metric"] == pair[0]], rows[rows["metric"] == pair[1]]
        if len(rx) and len(ry):
            per.append(f"{treatment} {x.amount(_num(rx['diff'].iloc[0]))} vs {y.amount(_num(ry['diff'].iloc[0]))}")
    return f"Trade-off asked for ({x.label} vs {y.label}; {how}): " + "; ".join(per) + "."


def arm_gist(data: RunData, arm: str) -> str:
    """What an arm changes, in a few words: its `description`, else the top-level settings that differ
    from control (`correction; interventions: variety`); "" when unknown."""
    configs = arm_configs(data)
    mine, base = configs.get(arm), configs.get(data.control or "", {})
    if not mine:
        return ""
    if mine.get("description") and mine.get("description") != base.get("description"):
        return str(mine["description"])
    parts = []
    for key in mine:
        value = mine[key]
        if key == "description" or value == base.get(key):
            continue
        if isinstance(value, list):
            parts.append(f"{key}: {', '.join(map(str, value))}" if value else f"no {key}")
        elif isinstance(value, dict) or value is None:
            parts.append(key if value else f"no {key}")
        else:
            parts.append(f"{key}={value}")
    return "; ".join(parts)


def summary_items(data: RunData, infos: dict[str, MetricInfo]) -> list[str]:
    """The Summary section, as a list of plain-language sentences (first: one per treatment)."""
    eff = data.tables.effects
    items: list[str] = []
    if eff.empty:
        items.append("The analysis produced no comparisons (a single arm, or no metric values); each arm's "
                     f"mean per metric with its {fmt.ci_name(data.alpha)} is under Headline results.")
    else:
        for treatment, rows in eff.groupby("treatment", sort=False):
            control = str(rows["control"].iloc[0]) if "control" in rows else ""
            name = str(treatment) if control == (data.control or control) else f"{treatment} vs {control}"
            gist = arm_gist(data, str(treatment))
            name += f" ({gist})" if gist and gist != str(treatment) else ""
            items.append(treatment_sentence(name, rows, infos, data.alpha))
        pair, how = tradeoff_pair(data.config, eff)
        items.append(tradeoff_sentence(pair, how, eff, infos))
    items += comparison_basis(data) + not_delivered(data)
    factors = (data.manifest or {}).get("factors")
    if not factors and data.metrics is not None:  # the metrics table's factor_<name> columns (issue #13)
        factors = {c[len("factor_"):]: sorted(data.metrics[c].dropna().astype(str).unique())
                   for c in data.metrics.columns if str(c).startswith("factor_")}
    if isinstance(factors, dict) and factors:
        desc = "; ".join(f"{f} ({' / '.join(map(str, levels))})" for f, levels in factors.items())
        items.append(f"Factorial design: {desc}. Main effects and interactions are in the Factorial design section.")
    items += unequal_missingness(data, infos)
    items += limits(data)
    return items
