"""Per arm x metric: the mean with its 95% confidence interval, for runs whose analysis made no
comparison (a single arm, e.g. the `hello` experiment), so their results appear in the report.

The interval is Student's t interval for a mean (e.g. Wasserman, *All of Statistics*, 2004,
§6.3; `scipy.stats.t`), computed on the independent units: the session means when a session
holds several values (agents nested in sessions: Donner & Klar, *Design and Analysis of Cluster
Randomization Trials*, 2000, ch. 6, analysis at the cluster level; `analysis.clustered.session_means`),
else the values themselves. Fewer than 2 units, or no spread between them, leave the interval
missing with the reason in `note` (never a zero-width interval)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from analysis.tests_basic import no_spread, scale_of

COLUMNS = ["arm", "metric", "n", "n_sessions", "unit", "n_units", "mean", "ci_low", "ci_high", "note"]


def t_interval(units: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float, str]:
    """(mean, low, high, note) of the t interval over `units`; NaN bounds with a reason."""
    k = len(units)
    if k == 0:
        return math.nan, math.nan, math.nan, "no values"
    mean = float(np.mean(units))
    if k < 2:
        return mean, math.nan, math.nan, "a CI needs >= 2 independent units (have 1)"
    if no_spread(units, scale_of(units)):  # the project's one float-noise rule (analysis.tests_basic)
        return mean, math.nan, math.nan, f"no variation between the {k} units: CI undefined"
    sd = float(np.std(units, ddof=1))
    half = float(stats.t.ppf(1 - alpha / 2, k - 1)) * sd / math.sqrt(k)
    return mean, mean - half, mean + half, ""


def arm_means(metrics: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """One row per arm x metric of a tidy metrics table (columns arm, session, metric, value)."""
    from analysis.clustered import session_means

    rows = []
    df = metrics[metrics["value"].notna()].copy()
    if "session" not in df:
        df["session"] = ""
    if "replicate" not in df:
        df["replicate"] = 0
    for (arm, metric), sub in df.groupby(["arm", "metric"], sort=False):
        named = sub[sub["session"].astype(str) != ""]
        n_sessions = int(named["session"].nunique())
        clustered = len(named) == len(sub) and n_sessions < len(sub)
        units = session_means(sub)["value"].to_numpy(float) if clustered else sub["value"].to_numpy(float)
        mean, lo, hi, note = t_interval(units, alpha)
        rows.append({"arm": str(arm), "metric": str(metric), "n": len(sub), "n_sessions": n_sessions,
                     "unit": "session means" if clustered else "values", "n_units": len(units),
                     "mean": mean, "ci_low": lo, "ci_high": hi, "note": note})
    return pd.DataFrame(rows, columns=COLUMNS)
