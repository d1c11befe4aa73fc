"""Measurement checks on a tidy table: missingness per arm x metric by reason, the flag for
differential missingness between arms, and the manipulation check read from `delivery.csv`.

Differential missingness (a comparison is biased when one arm loses more values than the other):
for each metric and each non-control arm, the share missing in that arm vs the control arm is
compared with Fisher's exact test on the 2x2 table (missing / present x arm), `scipy.stats.
fisher_exact` (Fisher 1922; Agresti, *Categorical Data Analysis*, 3rd ed., 2013, sec. 3.5.1).
The rule: `differential` is true when p < 0.05 **or** the shares differ by >= 10 percentage
points (a large gap in a small run is worth a look even when the test cannot detect it). With
no values at all in one arm the test is undefined: p is NaN with the reason in `note`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

MISSING_COLUMNS = ["arm", "metric", "reason", "count", "share", "n_rows", "missing_share", "control",
                   "control_missing_share", "share_diff", "p_fisher", "differential", "note"]
DIFF_POINTS = 0.10
ALPHA = 0.05


def missingness(df: pd.DataFrame, control: str | None = None) -> pd.DataFrame:
    """Per arm x metric x reason: `count` missing for that reason and its `share` of the arm x
    metric rows; then per arm x metric: `n_rows`, `missing_share` (all reasons), and against
    `control`: `control_missing_share`, `share_diff` (arm - control), `p_fisher`, `differential`
    (see the module docstring), `note`. Arm x metric cells without missing values get one row
    with reason "" and count 0, so every cell's share is listed."""
    if df.empty:
        return pd.DataFrame(columns=MISSING_COLUMNS)
    reasons = df["missing_reason"] if "missing_reason" in df else pd.Series("", index=df.index)
    cells = {}
    for (arm, metric), sub in df.groupby(["arm", "metric"], sort=False):
        cells[(arm, metric)] = (len(sub), int(sub["value"].isna().sum()))
    ctrl = control if control in set(df["arm"]) else None
    rows = []
    for (arm, metric), sub in df.groupby(["arm", "metric"], sort=False):
        n, k = cells[(arm, metric)]
        base = {"arm": arm, "metric": metric, "n_rows": n, "missing_share": k / n if n else math.nan,
                **_against(cells, arm, metric, ctrl)}
        miss = reasons[sub.index][sub["value"].isna()].replace("", "unspecified")
        if miss.empty:
            rows.append({**base, "reason": "", "count": 0, "share": 0.0})
        for reason, count in miss.value_counts(sort=False).items():
            rows.append({**base, "reason": reason, "count": int(count), "share": count / n})
    return pd.DataFrame(rows, columns=MISSING_COLUMNS)


def _against(cells: dict, arm: str, metric: str, ctrl: str | None) -> dict:
    if ctrl is None or arm == ctrl or (ctrl, metric) not in cells:
        return {"control": ctrl or "", "control_missing_share": math.nan, "share_diff": math.nan,
                "p_fisher": math.nan, "differential": False,
                "note": "control arm" if arm == ctrl else "no control to compare with"}
    n, k = cells[(arm, metric)]
    nc, kc = cells[(ctrl, metric)]
    diff = k / n - kc / nc
    p = float(stats.fisher_exact([[k, n - k], [kc, nc - kc]])[1]) if n and nc else math.nan
    big = abs(diff) >= DIFF_POINTS - 1e-12
    flag = bool(big or (np.isfinite(p) and p < ALPHA))
    note = ""
    if flag:
        note = (f"differential missingness: {k / n:.0%} missing vs {kc / nc:.0%} in {ctrl}"
                f" (Fisher p {p:.3g}; rule: p < {ALPHA} or a gap >= {DIFF_POINTS:.0%})")
    return {"control": ctrl, "control_missing_share": kc / nc, "share_diff": diff, "p_fisher": p,
            "differential": flag, "note": note}


def mark_delivery(effects: pd.DataFrame, delivery: pd.DataFrame | None) -> pd.DataFrame:
    """Add `treatment_delivered` (True / False / NA = nothing to deliver or unknown) to each
    comparison from `delivery.csv` (one row per arm x mechanism, column `delivered`), and
    "treatment not delivered" to its `notes` when an expected mechanism of the treatment arm
    was never applied."""
    out = effects.copy()
    if "notes" not in out:
        out["notes"] = ""
    status: dict[str, object] = {}
    if delivery is not None and len(delivery):
        exp = delivery[delivery["expected"].astype(str).str.lower() == "true"]
        for arm, sub in exp.groupby("arm"):
            vals = sub["delivered"].astype(str).str.lower()
            status[str(arm)] = False if (vals == "false").any() else (True if (vals == "true").all() else pd.NA)
    out["treatment_delivered"] = pd.array([status.get(str(t), pd.NA) for t in out["treatment"]], dtype="boolean")
    bad = out["treatment_delivered"].fillna(True) == False  # noqa: E712 - NA-aware comparison
    out.loc[bad, "notes"] = ["; ".join(x for x in ("treatment not delivered", str(n or "")) if x)
                             for n in out.loc[bad, "notes"].fillna("")]
    return out
