"""The headline tables, built from the analysis effects table (never recomputed here)."""

from __future__ import annotations

import pandas as pd

from reports import fmt
from reports.document import Table
from reports.metricinfo import MetricInfo, metric_infos, relative_change, verdict


def headline_columns(alpha: float | None = 0.05) -> list[str]:
    """The headline table's header; the CI level follows the analysis' alpha (summary.json)."""
    ci = fmt.ci_name(alpha)
    return ["Metric", "Treatment", "n (c / t)", "Mean control", "Mean treatment", f"Difference [{ci}]",
            "Relative change", "Verdict", f"Hedges' g [{ci}]", "p", "p (Holm)", "p (BH)", "Method"]

#: HTML classes for the verdict: a win is green, a loss red (metricinfo.verdict).
VERDICT_CLASS = {"better": "win", "worse": "loss"}


def _get(rec: pd.Series, col: str) -> object:
    return rec[col] if col in rec.index else None


def relative_text(rec: pd.Series) -> str:
    """`+138%`, or `– (control mean is 0)`: relative change = diff / |mean_control|."""
    rel, reason = relative_change(_get(rec, "diff"), _get(rec, "mean_control"))
    return fmt.signed_percent(rel) if not reason else f"{fmt.MISSING} ({reason})"


def _not_delivered(rec: pd.Series) -> bool:
    """effects.csv's `treatment_delivered` is False (the manipulation check failed)."""
    return str(_get(rec, "treatment_delivered")).strip().lower() == "false"


def headline_row(rec: pd.Series, info: MetricInfo) -> list[str]:
    """One effects.csv row as the strings the report prints (the test parses them back)."""
    return [
        fmt.metric(rec["metric"]),
        str(rec["treatment"]) + (" (treatment not delivered)" if _not_delivered(rec) else ""),
        f"{fmt.integer(_get(rec, 'n_control'))} / {fmt.integer(_get(rec, 'n_treatment'))}",
        fmt.num(_get(rec, "mean_control")),
        fmt.num(_get(rec, "mean_treatment")),
        fmt.with_ci(_get(rec, "diff"), _get(rec, "ci_low"), _get(rec, "ci_high")),
        relative_text(rec),
        verdict(info, _get(rec, "diff"), _get(rec, "ci_low"), _get(rec, "ci_high")),
        fmt.with_ci(_get(rec, "hedges_g"), _get(rec, "g_ci_low"), _get(rec, "g_ci_high")),
        fmt.pval(_get(rec, "p_value")),
        fmt.pval(_get(rec, "p_holm")),
        fmt.pval(_get(rec, "p_bh")),
        str(_get(rec, "p_method") or ""),
    ]


def units_sentence(infos: dict[str, MetricInfo]) -> str:
    """`Units: ideas = ideas per session; persona adherence = 0-9 score (lower is better).`"""
    parts = []
    for info in infos.values():
        unit = info.unit or "unit not declared"
        parts.append(f"{info.label} = {unit}" + ("" if info.higher_is_better else " (lower is better)"))
    defaulted = [i.label for i in infos.values() if i.direction_source == "default"]
    text = "Units: " + "; ".join(parts) + "."
    if defaulted:
        text += (" Higher is better for " + ("every metric" if len(defaulted) == len(infos) else ", ".join(defaulted))
                 + " by default (declare experiment.metric_info.<metric>.higher_is_better: false where lower is better).")
    return text


def headline(effects: pd.DataFrame, infos: dict[str, MetricInfo] | None = None,
             alpha: float | None = 0.05) -> Table:
    infos = infos or metric_infos(list(effects["metric"]))
    rows, classes = [], {}
    for i, (_, rec) in enumerate(effects.iterrows()):
        row = headline_row(rec, infos[str(rec["metric"])])
        rows.append(row)
        if row[7] in VERDICT_CLASS:
            classes.update({(i, j): VERDICT_CLASS[row[7]] for j in (5, 6, 7)})
    controls = ", ".join(dict.fromkeys(str(c) for c in effects["control"]))
    caption = (f"Each treatment vs control ({controls}). Differences are treatment − control, estimated by "
               "the named method; the arm means are those of the units it compares (session means; for a "
               "paired design, the complete pairs only), so difference = treatment mean − control mean. "
               "Relative change = difference / "
               f"|mean control|. Verdict: better / worse when the {fmt.ci_name(alpha)} excludes 0 (green / red), in the "
               "metric's good direction; unclear when it includes 0. p is that method's p-value; Holm "
               "and Benjamini-Hochberg adjust it across the whole family of metrics × comparisons. "
               + units_sentence({str(m): infos[str(m)] for m in dict.fromkeys(effects["metric"])}))
    return Table(headline_columns(alpha), rows, caption, numeric={2, 3, 4, 5, 6, 8, 9, 10, 11}, css_class="headline",
                 cell_classes=classes)


def secondary(effects: pd.DataFrame, alpha: float | None = 0.05) -> Table | None:
    """The other tests and the distribution-shift view (Cliff's delta, P(T > C)), where present."""
    cols = [c for c in ("p_welch", "p_mannwhitney", "p_permutation", "cliffs_delta", "prob_superiority",
                        "icc", "design_effect") if c in effects.columns]
    if not cols:
        return None
    header = ["Metric", "Treatment", "Welch p", "Mann-Whitney p", "Permutation p",
              f"Cliff's delta [{fmt.ci_name(alpha)}]", "P(T > C)", "ICC", "Design effect"]
    rows = []
    for _, rec in effects.iterrows():
        rows.append([
            fmt.metric(rec["metric"]), str(rec["treatment"]),
            fmt.pval(_get(rec, "p_welch")), fmt.pval(_get(rec, "p_mannwhitney")),
            fmt.pval(_get(rec, "p_permutation")),
            fmt.with_ci(_get(rec, "cliffs_delta"), _get(rec, "delta_ci_low"), _get(rec, "delta_ci_high")),
            fmt.num(_get(rec, "prob_superiority")), fmt.num(_get(rec, "icc")),
            fmt.num(_get(rec, "design_effect")),
        ])
    return Table(header, rows, "Other tests on the same comparison, and the distribution shift: "
                 "Cliff's delta and the probability that a treatment value exceeds a control value "
                 "(both on individual values: agent values pooled over sessions for agent-level metrics).",
                 numeric=set(range(2, 9)))


def _has(effects: pd.DataFrame, col: str) -> bool:
    return col in effects.columns and bool(pd.to_numeric(effects[col], errors="coerce").notna().any())


def models(effects: pd.DataFrame, alpha: float | None = 0.05) -> Table | None:
    """Model-based views written by analysis (ordinal odds ratio, count rate ratio, equivalence
    test, t-reference df), shown only when some row has them."""
    if not any(_has(effects, c) for c in ("odds_ratio", "rate_ratio", "p_tost")):
        return None
    ci = fmt.ci_name(alpha)
    header = ["Metric", "Treatment", "df", f"Odds ratio [{ci}]", "p (ordinal)", f"Rate ratio [{ci}]",
              "p (count)", "Equivalence margin", "p (TOST)"]
    rows = [[fmt.metric(rec["metric"]), str(rec["treatment"]), fmt.num(_get(rec, "df")),
             fmt.with_ci(_get(rec, "odds_ratio"), _get(rec, "or_ci_low"), _get(rec, "or_ci_high")),
             fmt.pval(_get(rec, "p_ordinal")),
             fmt.with_ci(_get(rec, "rate_ratio"), _get(rec, "rr_ci_low"), _get(rec, "rr_ci_high")),
             fmt.pval(_get(rec, "p_count")), fmt.num(_get(rec, "equivalence_margin")), fmt.pval(_get(rec, "p_tost"))]
            for _, rec in effects.iterrows()]
    return Table(header, rows, "Model-based views of the same comparison: the proportional-odds ratio of a higher "
                 "score (ordinal scales), the rate ratio treatment / control (counts), and the two one-sided "
                 "tests of equivalence within the margin (p (TOST) < alpha: the difference is within the margin). "
                 "df is the t-reference df of the headline p (blank for permutation tests).",
                 numeric=set(range(2, 9)))


def tradeoff_lines(text: str) -> dict[str, list[str]]:
    """tradeoffs.txt as written by analysis: `treatment: line` or a header line per treatment
    followed by indented lines. Unknown shapes come back as one group named ''."""
    groups: dict[str, list[str]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if not raw.startswith((" ", "\t", "-", "*")) and line.endswith(":"):
            current = line[:-1].strip()
            groups.setdefault(current, [])
            continue
        groups.setdefault(current, []).append(line.strip().lstrip("-* ").strip())
    return groups


def power_table(power: pd.DataFrame, effects: pd.DataFrame) -> Table:
    """power.csv with signed effects: the observed difference is effects.csv's signed `diff` (power.csv
    keeps |diff| for the calculation), the minimum detectable effect is shown as ±MDE (either direction)."""
    keys = ["metric", "control", "treatment"]
    signed_diff = {tuple(str(r[k]) for k in keys): r["diff"] for _, r in effects.iterrows()} \
        if set(keys + ["diff"]) <= set(effects.columns) else {}
    rows = []
    for _, r in power.iterrows():
        diff = signed_diff.get(tuple(str(r.get(k)) for k in keys), float("nan"))
        mde = _get(r, "mde_this_run")
        rows.append([fmt.metric(r["metric"]), str(_get(r, "treatment") or ""), str(_get(r, "unit") or ""),
                     fmt.integer(_get(r, "n_this_run")), fmt.signed(diff),
                     fmt.MISSING if fmt.num(mde) == fmt.MISSING else f"±{fmt.num(mde)}",
                     fmt.num(_get(r, "target_power")), fmt.integer(_get(r, "n_needed"))]
                    + ([str(r["note"]) if isinstance(r["note"], str) else ""] if "note" in power.columns else []))
    return Table(["Metric", "Treatment", "Unit of n", "n this run", "Observed difference", "MDE this run",
                  "Target power", "n needed"] + (["Note"] if "note" in power.columns else []), rows,
                 "Power and planning (power.csv): the observed difference (treatment − control, signed, raw units), "
                 "the minimum detectable effect of this run in either direction (±, raw units), and the n needed "
                 "to detect the observed difference with the target power.", numeric={3, 4, 5, 6, 7})
