"""The headline tables, built from the analysis effects table (never recomputed here)."""

from __future__ import annotations

import pandas as pd

from reports import fmt
from reports.document import Table

HEADLINE_COLUMNS = ["Metric", "Treatment", "n (c / t)", "Mean control", "Mean treatment",
                    "Difference [95% CI]", "Hedges' g [95% CI]", "p", "p (Holm)", "p (BH)", "Method"]


def _get(rec: pd.Series, col: str) -> object:
    return rec[col] if col in rec.index else None


def _not_delivered(rec: pd.Series) -> bool:
    """effects.csv's `treatment_delivered` is False (the manipulation check failed)."""
    return str(_get(rec, "treatment_delivered")).strip().lower() == "false"


def headline_row(rec: pd.Series) -> list[str]:
    """One effects.csv row as the strings the report prints (the test parses them back)."""
    return [
        fmt.label(rec["metric"]),
        str(rec["treatment"]) + (" (treatment not delivered)" if _not_delivered(rec) else ""),
        f"{fmt.integer(_get(rec, 'n_control'))} / {fmt.integer(_get(rec, 'n_treatment'))}",
        fmt.num(_get(rec, "mean_control")),
        fmt.num(_get(rec, "mean_treatment")),
        fmt.with_ci(_get(rec, "diff"), _get(rec, "ci_low"), _get(rec, "ci_high")),
        fmt.with_ci(_get(rec, "hedges_g"), _get(rec, "g_ci_low"), _get(rec, "g_ci_high")),
        fmt.pval(_get(rec, "p_value")),
        fmt.pval(_get(rec, "p_holm")),
        fmt.pval(_get(rec, "p_bh")),
        str(_get(rec, "p_method") or ""),
    ]


def headline(effects: pd.DataFrame) -> Table:
    rows = [headline_row(rec) for _, rec in effects.iterrows()]
    controls = ", ".join(dict.fromkeys(str(c) for c in effects["control"]))
    caption = (f"Each treatment vs control ({controls}). Differences are treatment − control, estimated by "
               "the named method (for a paired design, the mean of paired differences, which can differ from "
               "the difference of the arm means when a pair is incomplete). p is that method's p-value; Holm "
               "and Benjamini-Hochberg adjust it across the whole family of metrics × comparisons.")
    return Table(HEADLINE_COLUMNS, rows, caption, numeric={2, 3, 4, 5, 6, 7, 8, 9}, css_class="headline")


def secondary(effects: pd.DataFrame) -> Table | None:
    """The other tests and the distribution-shift view (Cliff's delta, P(T > C)), where present."""
    cols = [c for c in ("p_welch", "p_mannwhitney", "p_permutation", "cliffs_delta", "prob_superiority",
                        "icc", "design_effect") if c in effects.columns]
    if not cols:
        return None
    header = ["Metric", "Treatment", "Welch p", "Mann-Whitney p", "Permutation p",
              "Cliff's delta [95% CI]", "P(T > C)", "ICC", "Design effect"]
    rows = []
    for _, rec in effects.iterrows():
        rows.append([
            fmt.label(rec["metric"]), str(rec["treatment"]),
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


def models(effects: pd.DataFrame) -> Table | None:
    """Model-based views written by analysis (ordinal odds ratio, count rate ratio, equivalence
    test, t-reference df), shown only when some row has them."""
    if not any(_has(effects, c) for c in ("odds_ratio", "rate_ratio", "p_tost")):
        return None
    header = ["Metric", "Treatment", "df", "Odds ratio [95% CI]", "p (ordinal)", "Rate ratio [95% CI]",
              "p (count)", "Equivalence margin", "p (TOST)"]
    rows = [[fmt.label(rec["metric"]), str(rec["treatment"]), fmt.num(_get(rec, "df")),
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
