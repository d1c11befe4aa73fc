"""Assembles the report document from a RunData: every section, in reading order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports import factorial, figures, fmt, market, quality
from analysis.arm_means import arm_means
from reports.caveats import caveats, judge_note
from reports.document import Bullets, Callout, Document, Figure, Para, Table
from reports.excerpts import excerpts
from reports.load import RunData
from reports.metricinfo import MetricInfo, metric_infos, verdict
from reports.runinfo import (UNKNOWN_TOKENS_WHY, arm_names, billing_caveat, config_diff, header_facts,
                             unknown_cost_why, usage_by_purpose)
from reports.summary import ALPHA, summary_items
from reports.tables import headline, models, power_table, secondary, tradeoff_lines
from reports.tradeoff import tradeoff_pair
from reports.validity import section_blocks

SECTION_TITLES = ("Summary", "Overview", "How far to trust this run", "Headline results", "Figures",
                  "Quality of the run", "Transcript excerpts", "Notes")


def _overview(doc: Document, data: RunData, facts: list[tuple[str, str]], usage: pd.DataFrame) -> None:
    sec = doc.section("Overview", "overview")
    sec.blocks.append(Table(["", ""], [[k, v] for k, v in facts]))
    diff = config_diff(data)
    if diff:
        sec.blocks.append(Table(["Arm", "Setting", "Control", "This arm"], [list(r) for r in diff],
                                "What differs between the arms (from config.yaml experiment.arms)."))
    elif data.config is not None or data.manifest is not None:
        sec.blocks.append(Para("The arms' configurations are identical (an A/A check) or were not recorded."))
    if not usage.empty:
        rows = [[str(r["purpose"]), fmt.integer(r["calls"]), fmt.integer(r["cached"]), fmt.integer(r["tokens_in"]),
                 fmt.integer(r["tokens_out"]), fmt.usd(r["cost_usd"], unknown_cost_why(r))] for _, r in usage.iterrows()]
        total = usage.iloc[-1]
        unknown, billed = int(total.get("tokens_unknown", 0) or 0), int(total.get("unknown_billing_attempts", 0) or 0)
        note = (f" Tokens {fmt.MISSING}: unknown for {unknown} call(s) ({UNKNOWN_TOKENS_WHY})." if unknown else "")
        note += f" Cost: {billing_caveat(billed)}." if billed else ""
        sec.blocks.append(Table(["Purpose", "Calls", "Cached", "Tokens in", "Tokens out", "Cost"], rows,
                                "LLM calls by purpose (llm_calls.parquet)." + note, numeric={1, 2, 3, 4, 5}))


def _headline(doc: Document, data: RunData, infos: dict[str, MetricInfo]) -> None:
    sec = doc.section("Headline results", "results")
    eff = data.tables.effects
    if eff.empty:
        sec.blocks.append(Para("The analysis produced no comparisons (a single arm, or no metric values)."))
        alpha = data.alpha or ALPHA  # computed here: its level is the one stated, recorded or not
        means = arm_means(data.metrics, alpha) if data.metrics is not None and {"arm", "metric", "value"} <= set(
            data.metrics.columns) else pd.DataFrame()
        if len(means):
            sec.blocks.append(Table(
                ["Arm", "Metric", "n", "Sessions", f"Mean [{fmt.ci_name(alpha)}]", "Unit of the CI", "Note"],
                [[r.arm, fmt.metric(r.metric), fmt.integer(r.n), fmt.integer(r.n_sessions),
                  fmt.num(r.mean) + ("" if r.note else f" [{fmt.num(r.ci_low)}, {fmt.num(r.ci_high)}]"),
                  f"{r.n_units} {r.unit if r.n_units != 1 else r.unit[:-1]}", r.note] for r in means.itertuples()],
                f"Each arm's mean per metric with its {fmt.ci_level(alpha)} t interval (Student's t on the independent units: "
                "the session means when a session holds several values, so agents of one session are not "
                "counted as independent; analysis/arm_means.py). A missing interval says why in Note.",
                numeric={2, 3, 4}))
        return
    sec.blocks.append(headline(eff, infos, data.alpha))
    family = data.tables.summary.get("family")
    if family:
        sec.blocks.append(Para(f"Multiple-comparison family: {family}."))
    groups = tradeoff_lines(data.tables.tradeoffs)
    if groups:
        names = list(eff["metric"])
        items = [fmt.with_metric_names(f"{name}: {line}" if name else line, names)
                 for name, lines in groups.items() for line in lines]
        sec.blocks.append(Callout("Trade-offs", items, "info"))
    for extra in (secondary(eff, data.alpha), models(eff, data.alpha)):
        if extra is not None:
            sec.blocks.append(extra)


def _figures(doc: Document, data: RunData, arms: list[str], fig_dir: Path, infos: dict[str, MetricInfo]) -> None:
    sec = doc.section("Figures", "figures")
    eff = data.tables.effects
    path = figures.forest(eff, arms, fig_dir / "forest.png", data.alpha)
    if path:
        sec.blocks.append(Figure(path, f"Standardized effects (Hedges' g) with their {fmt.ci_name(data.alpha, True)} "
                                 "where computed, "
                                 "all metrics.", "760px"))
    pair, how = tradeoff_pair(data.config, eff) if not eff.empty else (None, "no comparisons")
    units = (infos[pair[0]].unit, infos[pair[1]].unit) if pair else ("", "")
    better = (infos[pair[0]].higher_is_better, infos[pair[1]].higher_is_better) if pair else (True, True)
    if pair and (path := figures.tradeoff(eff, arms, pair, fig_dir / "tradeoff.png", units, better, data.alpha)):
        sec.blocks.append(Figure(path, f"Trade-off: change in {fmt.metric(pair[0])} vs change in "
                                 f"{fmt.metric(pair[1])}, one point per treatment (raw units, {fmt.ci_name(data.alpha, True)} where "
                                 f"computed). Pair: {how}.", "640px"))
    elif not eff.empty:
        sec.blocks.append(Para(f"No trade-off chart: {how}."))
    path = figures.distributions(data.metrics, arms, fig_dir / "distributions.png")
    if path:
        sec.blocks.append(Figure(path, "Per-arm distributions: 0-9 judge scores as stacked shares, counts "
                                 "and other values as one dot per observation.", "900px"))
    if not sec.blocks:
        sec.blocks.append(Para("Nothing to plot."))


def _quality(doc: Document, data: RunData) -> None:
    sec = doc.section("Quality of the run", "quality")
    miss = data.tables.missing  # analysis' missing.csv, shown as written
    if "arm" not in miss.columns:
        sec.blocks.append(Para("Missing values: not shown (the analysis tables have no missing.csv)."))
    elif miss.empty:
        sec.blocks.append(Para("Missing values: none."))
    else:
        sec.blocks.extend(quality.measurement_check(miss))
    if data.manifest is not None:
        failed = quality.failed_jobs(data.manifest)
        sec.blocks.append(quality.as_table(failed, "Failed jobs (manifest.json).") if not failed.empty
                          else Para(f"Failed jobs: none of {data.manifest.get('n_jobs_total', '?')}."))
    if data.transcript is not None:
        corr = quality.corrections(data.transcript)
        sec.blocks.append(quality.as_table(corr, "Action correction: attempts and pass rates.") if not corr.empty
                          else Para("Action correction: no correction attempts in the transcript."))
        fires = quality.interventions(data.transcript)
        sec.blocks.append(quality.as_table(fires, "Intervention fire counts.") if not fires.empty
                          else Para("Interventions: none fired."))
    noise = quality.judge_noise(data.metrics)
    sec.blocks.append(quality.as_table(noise, "Judge noise: SD between repeated judge samples of one item.")
                      if not noise.empty
                      else Para("Judge noise: repeated judging was off (k = 1), so it was not measured."))
    if not data.tables.power.empty:
        sec.blocks.append(power_table(data.tables.power, data.tables.effects))
    if data.manifest is None and data.transcript is None:
        sec.blocks.append(Para("This input has no manifest or transcript, so failed jobs, correction attempts "
                               "and intervention fire counts cannot be shown."))
    note = judge_note(data.metrics)
    if note:
        sec.blocks.append(Para(note))


def _notes(doc: Document, data: RunData) -> None:
    sec = doc.section("Notes", "notes")
    names = list(data.tables.effects.get("metric", []))
    items = list(dict.fromkeys(fmt.with_metric_names(str(n), names)
                               for n in [*data.notes, *data.tables.summary.get("notes", [])]))
    absent = [name for name, value in (("transcript", data.transcript), ("configuration", data.config),
                                       ("manifest (jobs, seeds, models)", data.manifest),
                                       ("LLM call log (tokens, cost)", data.llm_calls)) if value is None]
    if absent:
        items.append("Not available for this input, so not shown: " + ", ".join(absent) + ".")
    items.append(f"Analysis tables: {data.tables.dir}.")
    sec.blocks.append(Bullets(items))


def verdict_counts(effects: pd.DataFrame, infos: dict[str, MetricInfo]) -> str:
    """` · 2 better, 2 worse, 2 unclear` (CI excludes 0 in the good / bad direction), for the subtitle."""
    if effects.empty or not {"metric", "diff", "ci_low", "ci_high"} <= set(effects.columns):
        return ""
    got = [verdict(infos[str(r["metric"])], r["diff"], r["ci_low"], r["ci_high"]) for _, r in effects.iterrows()]
    return " · " + ", ".join(f"{got.count(v)} {v}" for v in ("better", "worse", "unclear", "no CI") if got.count(v))


def infos_for(data: RunData) -> dict[str, MetricInfo]:
    """Display name, unit and good direction of every metric in the effects and metrics tables."""
    names = [*data.tables.effects.get("metric", []), *([] if data.metrics is None else data.metrics.get("metric", []))]
    config = data.config or {}
    own = (data.manifest or {}).get("propositions")  # own propositions with higher_is_better (issue #13)
    if isinstance(own, dict) and own:
        exp = dict(config.get("experiment") or {})
        exp["propositions"] = {**own, **dict(exp.get("propositions") or {})}
        config = {**config, "experiment": exp}
    return metric_infos([str(n) for n in names], config, data.metrics)


def build(data: RunData, fig_dir: Path) -> Document:
    arms = arm_names(data)
    usage = usage_by_purpose(data.llm_calls)
    facts = header_facts(data, usage)
    infos = infos_for(data)
    name = next((v for k, v in facts if k == "Experiment"), data.source.stem)
    doc = Document(f"Experiment report: {name}", f"{len(arms)} arms · {len(data.tables.effects)} comparisons"
                   + verdict_counts(data.tables.effects, infos))
    doc.section("Summary", "summary").blocks.append(Bullets(summary_items(data, infos)))
    _overview(doc, data, facts, usage)
    doc.section("How far to trust this run", "caveats").blocks.append(Callout("Caveats", caveats(data)))
    _headline(doc, data, infos)
    fblocks = factorial.section_blocks(data, fig_dir)
    if fblocks:
        doc.section("Factorial design", "factorial").blocks.extend(fblocks)
    mblocks = market.section_blocks(data)
    if mblocks:
        doc.section("Respondents", "respondents").blocks.extend(mblocks)
    _figures(doc, data, arms, fig_dir, infos)
    if validity := section_blocks(data.tables.dir, fig_dir):  # validation.csv, judge_reliability.csv
        doc.section("Validity", "validity").blocks.extend(validity)
    _quality(doc, data)
    sec = doc.section("Transcript excerpts", "transcripts")
    sec.blocks.extend(excerpts(data.transcript, arms) or [Para("No transcript for this input.")])
    _notes(doc, data)
    return doc
