"""Sample-ratio / completion check: are completed sessions and non-missing values balanced across arms?

Source: the sample-ratio-mismatch check of online experiments (Fabijan et al. 2019, KDD), here a
Pearson chi-square goodness-of-fit of completed sessions per arm against equal allocation, and per
metric a chi-square test of independence of (missing, non-missing) x arm (scipy.stats.chisquare /
chi2_contingency). A p below `threshold` (0.01) is a warning: arms lost different shares of their
data, so the comparison may be biased by who dropped out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

NAN = float("nan")
COLUMNS = ["check", "metric", "counts", "chi2", "df", "p", "warning", "note"]


def balance(df: pd.DataFrame, threshold: float = 0.01) -> pd.DataFrame:
    """Rows: one 'completed sessions' check over arms, then one 'non-missing values' check per metric.

    Input: a validated metric table. counts is 'arm=n, ...' (for values: non-missing/total per arm).
    p is NaN with a note when the test is undefined (one arm, no sessions, nothing missing).
    """
    arms = list(dict.fromkeys(df["arm"]))
    rows = []
    done = df.loc[df["value"].notna() & (df["session"] != "")].groupby("arm")["session"].nunique()
    sessions = np.array([int(done.get(a, 0)) for a in arms])
    row = {"check": "completed sessions", "metric": "", "counts": ", ".join(f"{a}={n}" for a, n in zip(arms, sessions))}
    if len(arms) < 2 or sessions.sum() == 0:
        row.update(chi2=NAN, df=NAN, p=NAN, warning=False, note="needs 2+ arms with session ids")
    else:
        res = stats.chisquare(sessions)
        row.update(chi2=float(res.statistic), df=len(arms) - 1, p=float(res.pvalue), note="expected: equal per arm")
        row["warning"] = bool(res.pvalue < threshold)
    rows.append(row)
    for metric, sub in df.groupby("metric", sort=False):
        ok = np.array([int(sub.loc[sub["arm"] == a, "value"].notna().sum()) for a in arms])
        tot = np.array([int((sub["arm"] == a).sum()) for a in arms])
        row = {"check": "non-missing values", "metric": metric,
               "counts": ", ".join(f"{a}={o}/{n}" for a, o, n in zip(arms, ok, tot))}
        table = np.vstack([ok, tot - ok])
        if len(arms) < 2 or (table.sum(axis=1) == 0).any() or (tot == 0).any():
            row.update(chi2=NAN, df=NAN, p=NAN, warning=False,
                       note="no missing values" if (tot - ok).sum() == 0 else "undefined (an arm has no rows)")
        else:
            chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
            row.update(chi2=float(chi2), df=int(dof), p=float(p), warning=bool(p < threshold), note="")
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def warnings_of(bal: pd.DataFrame) -> list[str]:
    """Human-readable warnings for every check with p < threshold."""
    return [f"imbalance ({r.check}{' of ' + r.metric if r.metric else ''}): {r.counts}, chi-square p = {r.p:.2g}"
            for r in bal.itertuples() if r.warning]
