"""Validation and normalisation of a tidy metric table (one row per observation)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.scales import SCALES, ScaleError, canonical_scale, scale_range

log = logging.getLogger(__name__)

REQUIRED = ("arm", "metric", "value")
OPTIONAL_DEFAULTS: dict[str, object] = {
    "experiment": "",
    "replicate": np.nan,
    "session": "",
    "agent": "",
    "scale": "",
    "level": "",
    "judge_model": "",
    "missing_reason": "",
}
LEVELS = ("agent", "session")


class TableError(ValueError):
    """A metric table that cannot be analysed; the message names the file, the field and the fix."""


def _text(col: pd.Series) -> pd.Series:
    return col.astype("object").where(col.notna(), "").astype(str).str.strip()


def validate_table(df: pd.DataFrame, source: str | Path = "<table>") -> tuple[pd.DataFrame, list[str]]:
    """Check and normalise a metric table. Returns (clean table, notes); raises TableError."""
    src = str(source)
    notes: list[str] = []
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise TableError(
            f"{src}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, df.columns))}). "
            "Fix: a metric table needs one row per observation with at least the columns "
            "arm, metric, value (and ideally replicate, session, agent, level)."
        )
    if df.empty:
        raise TableError(f"{src}: the table has no rows. Fix: point at a run that produced metrics.")
    df = df.copy().reset_index(drop=True)
    absent = [c for c in OPTIONAL_DEFAULTS if c not in df.columns]
    for c in absent:
        df[c] = OPTIONAL_DEFAULTS[c]
    if {"session", "replicate"} & set(absent):
        notes.append(f"column(s) {', '.join(sorted({'session', 'replicate'} & set(absent)))} absent: "
                     "pairing and cluster-aware methods are unavailable for this table")

    for c in ("arm", "session", "agent", "scale", "level", "judge_model", "missing_reason", "experiment"):
        df[c] = _text(df[c])
    df["level"] = df["level"].str.casefold()  # level and scale names are read case-insensitively
    # metric names are kept exactly as given (no stripping or case folding): only NaN becomes ""
    df["metric"] = df["metric"].astype("object").where(df["metric"].notna(), "").astype(str)
    if (df["arm"] == "").any():
        rows = (np.flatnonzero(df["arm"] == "") + 2)[:5].tolist()
        raise TableError(f"{src}: empty 'arm' in row(s) {rows} (1 = header). Fix: name the arm of every row.")
    if (df["metric"].str.strip() == "").any():
        rows = (np.flatnonzero(df["metric"] == "") + 2)[:5].tolist()
        raise TableError(f"{src}: empty 'metric' in row(s) {rows} (1 = header). Fix: name the metric of every row.")

    raw = df["value"]
    value = pd.to_numeric(raw, errors="coerce")
    blank = raw.isna() | (raw.astype(str).str.strip().isin(["", "nan", "NaN", "None", "null", "NA"]))
    bad = value.isna() & ~blank
    if bad.any():
        idx = np.flatnonzero(bad.to_numpy())
        examples = ", ".join(f"row {i + 2}: {raw.iloc[i]!r} ({df['arm'].iloc[i]}/{df['metric'].iloc[i]})" for i in idx[:3])
        raise TableError(
            f"{src}: column 'value' has {len(idx)} non-numeric value(s) ({examples}). "
            "Fix: values must be numbers; leave a missing value empty and explain it in 'missing_reason'."
        )
    nonfinite = np.isinf(value.astype(float))
    if nonfinite.any():
        idx = np.flatnonzero(nonfinite.to_numpy())
        examples = ", ".join(f"row {i + 2}: {float(value.iloc[i])} ({df['arm'].iloc[i]}/{df['metric'].iloc[i]})"
                             for i in idx[:3])
        raise TableError(
            f"{src}: column 'value' has {len(idx)} infinite value(s) ({examples}). "
            "Fix: values must be finite numbers; leave a missing value empty and explain it in 'missing_reason'."
        )
    df["value"] = value.astype(float)
    rep = pd.to_numeric(df["replicate"], errors="coerce")
    if (rep.isna() & _text(df["replicate"]).ne("")).any():
        raise TableError(f"{src}: column 'replicate' must hold integers (replicate index). Fix: use 0, 1, 2, ...")
    df["replicate"] = rep

    bad_level = ~df["level"].isin(("",) + LEVELS)
    if bad_level.any():
        raise TableError(
            f"{src}: column 'level' has {sorted(df.loc[bad_level, 'level'].unique())[:3]}; allowed: agent, session. "
            "Fix: 'agent' for one value per agent per session, 'session' for one value per session."
        )
    _check_one_per_metric(df, "level", src, "declare one level per metric: 'agent' when each agent has its "
                          "value, 'session' when the session has one (split the metric in two if both exist)")
    _fill_levels(df, notes)
    notes += _check_scales(df, src)
    df.loc[df["value"].isna() & (df["missing_reason"] == ""), "missing_reason"] = "unspecified"
    _check_sessions(df, src)
    _check_duplicates(df, src)
    _check_session_level(df, src)
    df = _collapse_session_copies(df, src, notes)
    notes += _check_arms(df)
    return df, notes


KEY = ["arm", "session", "agent", "metric"]


def _check_duplicates(df: pd.DataFrame, src: str) -> None:
    """Two rows with the same (arm, session, agent, metric) are an error naming the keys.

    Only rows with a session id are checked (tables without session ids cannot say what a
    duplicate is). Session ids are scoped by arm: 's1' of control and 's1' of treatment differ.
    """
    keyed = df.loc[df["session"] != ""]
    dup = keyed.duplicated(KEY, keep=False)
    if dup.any():
        keys = keyed.loc[dup, KEY].drop_duplicates().head(3)
        shown = "; ".join(f"arm={r.arm!r} session={r.session!r} agent={r.agent!r} metric={r.metric!r}"
                          for r in keys.itertuples())
        raise TableError(
            f"{src}: {int(dup.sum())} rows share an (arm, session, agent, metric) key, e.g. {shown}. "
            "Fix: one row per observation; average repeated judgements before analysis or give each "
            "its own session/agent id.")


def _check_sessions(df: pd.DataFrame, src: str) -> None:
    """A metric whose session ids are given in some rows and empty in others is an error: the
    cluster-aware methods need every value's session, and dropping the clustering for the whole
    metric (or the rows without one) would change the answer without saying so."""
    has = df["session"] != ""
    partial = has.groupby(df["metric"]).transform(lambda h: h.any() and not h.all()) & ~has
    if partial.any():
        rows = (np.flatnonzero(partial.to_numpy()) + 2)[:5].tolist()
        metric = df.loc[partial, "metric"].iat[0]
        raise TableError(f"{src}: metric {metric!r} has an empty 'session' in row(s) {rows} (1 = header) but "
                         "session ids in its other rows. Fix: give every row its session id (or none at all).")


def _rows(mask: pd.Series) -> list[int]:
    """The first 5 table rows (1 = header) where mask holds."""
    return (np.flatnonzero(mask.to_numpy()) + 2)[:5].tolist()


def _check_one_per_metric(df: pd.DataFrame, col: str, src: str, fix: str) -> None:
    """A metric with two different non-empty values of `col` (level, scale) is an error: its values
    would be analysed as one kind (the most common) without saying so."""
    given = df.loc[df[col] != ""]
    kinds = given.groupby("metric", sort=False)[col].unique()
    for metric, values in kinds.items():
        if len(values) > 1:
            shown = "; ".join(f"{v!r} in row(s) {_rows((df['metric'] == metric) & (df[col] == v))}"
                              for v in values[:3])
            raise TableError(f"{src}: metric {metric!r} has {len(values)} different values of column {col!r} "
                             f"({shown}; 1 = header). Fix: {fix}.")


def _canonical_scales(df: pd.DataFrame, src: str) -> list[str]:
    """Replace each scale text by its canonical form (analysis.scales: one parser for the whole
    package); TableError naming the rows for a text that is no scale; notes for rewritten texts."""
    canon: dict[str, str] = {}
    for text in dict.fromkeys(df["scale"]):
        try:
            canon[text] = canonical_scale(text)
        except ScaleError as e:
            raise TableError(f"{src}: column 'scale' has {e.what} in row(s) {_rows(df['scale'] == text)} "
                             f"(1 = header). Fix: {e.fix}.") from None
    df["scale"] = df["scale"].map(canon)
    return [f"scale {text!r} read as {c!r}" for text, c in canon.items() if text != c]


def _check_scales(df: pd.DataFrame, src: str) -> list[str]:
    """Scale names must be known (SCALES or 'low-high', any case), one per metric, the values of a
    'low-high' scale within it (an out-of-range value would enter means, diff and every test), and
    the values of a 'count' scale non-negative integers. Returns notes for rewritten scale texts."""
    notes = _canonical_scales(df, src)
    _check_one_per_metric(df, "scale", src, "give every row of a metric the same scale")
    bounds = df["scale"].map(scale_range)
    low = bounds.map(lambda b: b[0] if b else -np.inf).astype(float)
    high = bounds.map(lambda b: b[1] if b else np.inf).astype(float)
    outside = (df["value"] < low) | (df["value"] > high)
    if outside.any():
        idx = np.flatnonzero(outside.to_numpy())
        raise TableError(f"{src}: column 'value' has {len(idx)} value(s) outside the declared scale "
                         f"({_shown(df, idx)}). Fix: correct the value, leave it empty with a 'missing_reason', "
                         "or declare the scale the values are on.")
    v = df["value"]
    not_count = (df["scale"] == "count") & v.notna() & ((v < 0) | (v != np.round(v)))
    if not_count.any():
        idx = np.flatnonzero(not_count.to_numpy())
        raise TableError(f"{src}: column 'value' has {len(idx)} value(s) on scale 'count' that are not counts "
                         f"(non-negative integers) ({_shown(df, idx)}). Fix: correct the value, leave it empty "
                         "with a 'missing_reason', or declare scale 'real' if the values are not counts.")
    return notes


def _shown(df: pd.DataFrame, idx: np.ndarray) -> str:
    """The first 3 rows `idx` (0-based) as 'row N: value (arm/metric, scale s)'; the value exactly
    (repr): 9.000000000000002 must not print as 9 in a message saying it is off the scale."""
    return ", ".join(f"row {i + 2}: {float(df['value'].iat[i])!r} ({df['arm'].iat[i]}/{df['metric'].iat[i]}, "
                     f"scale {df['scale'].iat[i]})" for i in idx[:3])


def _check_session_level(df: pd.DataFrame, src: str) -> None:
    """A session-level metric has one value per session: several different values in one (arm,
    session) would be averaged silently into a session mean the table never declared."""
    rows = df.loc[(df["level"] == "session") & (df["session"] != "") & df["value"].notna()]
    spread = rows.groupby(["metric", "arm", "session"], sort=False)["value"].nunique()
    bad = spread[spread > 1]
    if len(bad):
        metric, arm, session = bad.index[0]
        here = (df["metric"] == metric) & (df["arm"] == arm) & (df["session"] == session) & df["value"].notna()
        values = [repr(float(v)) for v in df.loc[here, "value"].unique()[:5]]  # exactly: 3 vs 3.0000000000000004
        raise TableError(f"{src}: metric {metric!r} is level 'session' but session {session!r} of arm {arm!r} has "
                         f"{int(bad.iat[0])} different values ({', '.join(values)}) in row(s) {_rows(here)} "
                         f"(1 = header; {len(bad)} such metric x session cell(s) in all). Fix: one value per session for a "
                         "session-level metric, or set level to 'agent' if each row is an agent's value.")


def _collapse_session_copies(df: pd.DataFrame, src: str, notes: list[str]) -> pd.DataFrame:
    """One row per (metric, arm, session) for a session-level metric.

    A common export repeats a session's value on each agent row of the session; those rows are
    copies of one value (different values are `_check_session_level`'s error), and counting each
    would multiply n and shrink every p and CI. The first row of each session is kept (agent
    emptied: the value is no agent's); a session with a value and missing copies is an error, as
    the copies then disagree; all-missing copies keep their reasons. Runs before every computation.
    """
    key = ["metric", "arm", "session"]
    sess = (df["level"] == "session") & (df["session"] != "")
    size = df.loc[sess].groupby(key, sort=False)["value"].transform("size")
    if not len(size) or size.max() == 1:
        return df
    some = df.loc[sess].groupby(key, sort=False)["value"].transform(lambda v: v.notna().any() and v.isna().any())
    if some.any():
        first = some[some].index[0]
        metric, arm, session = df.loc[first, key]
        here = (df["metric"] == metric) & (df["arm"] == arm) & (df["session"] == session)
        raise TableError(f"{src}: metric {metric!r} is level 'session' but session {session!r} of arm {arm!r} has a "
                         f"value in row(s) {_rows(here & df['value'].notna())} and none in row(s) "
                         f"{_rows(here & df['value'].isna())} (1 = header). Fix: one value per session for a "
                         "session-level metric (give every copy the value, or keep one row per session).")
    reasons = df.loc[sess].groupby(key, sort=False)["missing_reason"].transform(
        lambda r: "; ".join(dict.fromkeys(x for x in r if x)))
    df.loc[sess, "missing_reason"] = reasons
    copies = sess & df.duplicated(key)
    collapsed = df["metric"].isin(df.loc[copies, "metric"])
    for metric in dict.fromkeys(df.loc[copies, "metric"]):
        of = df["metric"] == metric
        notes.append(f"metric {metric!r} is session-level and repeats each session's value on up to "
                     f"{int(size[of[sess]].max())} rows (one per agent): analysed as one value per session "
                     f"({int(of.sum())} rows -> {int((of & ~copies).sum())})")
    df.loc[collapsed, "agent"] = ""
    return df.loc[~copies].reset_index(drop=True)


def _fill_levels(df: pd.DataFrame, notes: list[str]) -> None:
    """Infer an empty level: the metric's declared level when its other rows give one, else
    'agent' when the metric names agents, else 'session'."""
    for metric, rows in df.groupby("metric").groups.items():
        sub = df.loc[rows]
        if (sub["level"] != "").all():
            continue
        given = sub.loc[sub["level"] != "", "level"]
        inferred = given.iat[0] if len(given) else "agent" if (sub["agent"] != "").any() else "session"
        df.loc[rows, "level"] = df.loc[rows, "level"].where(df.loc[rows, "level"] != "", inferred)
        notes.append(f"metric {metric!r}: level not given, treated as {inferred}-level")


def _check_arms(df: pd.DataFrame) -> list[str]:
    """Notes for arms with no data at all and metrics absent from an arm: those comparisons are
    reported as not estimable (the other comparisons go on), never an abort."""
    notes = []
    arms = list(dict.fromkeys(df["arm"]))
    for arm in arms:
        if df.loc[df["arm"] == arm, "value"].notna().sum() == 0:
            notes.append(f"arm {arm!r} has no data (every value is missing): its comparisons are not estimable")
    present = df.groupby("metric")["arm"].agg(set)
    for metric, have in present.items():
        lacking = [a for a in arms if a not in have]
        if lacking:
            notes.append(f"metric {metric!r} is absent from arm(s) {', '.join(map(repr, lacking))}: "
                         "those comparisons are not estimable")
    return notes


def check_arm(df: pd.DataFrame, arm: str, src: str, role: str = "control") -> str:
    """Resolve an arm name (exact, else case-insensitive); raise TableError naming the choices."""
    arms = list(dict.fromkeys(df["arm"]))
    if arm in arms or len(arms) == 1:
        return arm if arm in arms else arms[0]
    folded = [a for a in arms if a.casefold() == arm.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise TableError(f"{src}: {role} arm {arm!r} not found; arms are {', '.join(map(repr, arms))}. "
                     f"Fix: pass --control with one of them.")
