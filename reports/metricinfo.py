"""What each metric means for a reader: one display name, its unit, which direction is good, and
the relative change of an effect. Read from the run's files only (config.yaml, metrics table).

Sources, first found wins:
- `experiment.metric_info.<metric>: {unit, higher_is_better}` in config.yaml;
- `higher_is_better` on a proposition (`experiment.propositions.<metric>.higher_is_better`) or as a
  column of the metrics table (experiment designs, issue #13);
- the defaults below (0-9 judge scores "0-9 score", ideas "ideas per session", shares "share");
  `higher_is_better` defaults to true, and the report says which metrics used the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reports.fmt import metric_key, signed

UNITS_BY_NAME = {"ideas": "ideas per session", "opinions": "opinions per session",
                 "positive_share": "share of respondents", "answer_chars": "characters"}
UNITS_BY_SCALE = {"0-9": "0-9 score", "1-5": "1-5 scale", "count": "count", "share": "share"}


key = metric_key

@dataclass(frozen=True)
class MetricInfo:
    """How the report names and reads one metric."""

    metric: str  # the name in the metric table / effects.csv
    label: str  # the one display name used everywhere (tables, figures, summary)
    unit: str  # e.g. "0-9 score", "ideas per session"; "" when nothing declares it
    higher_is_better: bool
    direction_source: str  # "config", "metrics table" or "default"

    def amount(self, value: float, digits: int = 2) -> str:
        """`+5.33 ideas per session`, `-0.60 persona adherence (0-9 score)`."""
        if self.unit and self.label.split()[0] in self.unit:
            return f"{signed(value, digits)} {self.unit}"
        return f"{signed(value, digits)} {self.label}" + (f" ({self.unit})" if self.unit else "")


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        return value.strip().lower() in ("true", "yes")
    return None


def _declared(config: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per canonical metric key: what config.yaml declares (metric_info, then propositions)."""
    exp = (config or {}).get("experiment") or {}
    out: dict[str, dict[str, Any]] = {}
    for section in ("propositions", "metric_info"):  # metric_info wins
        entries = exp.get(section)
        if isinstance(entries, dict):
            for name, spec in entries.items():
                if isinstance(spec, dict):
                    out.setdefault(key(name), {}).update(spec)
    return out


def _scale(metrics: pd.DataFrame | None, metric: str) -> str:
    if metrics is None or not {"metric", "scale"} <= set(metrics.columns):
        return ""
    vals = metrics.loc[metrics["metric"] == metric, "scale"].dropna().astype(str)
    return vals.iloc[0] if len(vals) else ""


def _table_direction(metrics: pd.DataFrame | None, metric: str) -> bool | None:
    if metrics is None or not {"metric", "higher_is_better"} <= set(metrics.columns):
        return None
    vals = metrics.loc[metrics["metric"] == metric, "higher_is_better"].dropna()
    return _bool(vals.iloc[0]) if len(vals) else None


def _unit(k: str, scale: str) -> str:
    if k in UNITS_BY_NAME:
        return UNITS_BY_NAME[k]
    if scale in UNITS_BY_SCALE:
        return UNITS_BY_SCALE[scale]
    if k.endswith("_share") or k.startswith("share_"):
        return "share"
    return ""


def metric_infos(names: list[str], config: dict[str, Any] | None = None,
                 metrics: pd.DataFrame | None = None) -> dict[str, MetricInfo]:
    """One MetricInfo per raw metric name in `names` (order kept)."""
    declared = _declared(config)
    out: dict[str, MetricInfo] = {}
    for name in dict.fromkeys(str(n) for n in names):
        k = key(name)
        spec = declared.get(k, {})
        hib, source = _bool(spec.get("higher_is_better")), "config"
        if hib is None:
            hib, source = _table_direction(metrics, name), "metrics table"
        if hib is None:
            hib, source = True, "default"
        label = k.replace("_", " ")  # never overridden: one display name per metric everywhere
        unit = str(spec.get("unit") or _unit(k, _scale(metrics, name)))
        out[name] = MetricInfo(name, label, unit, hib, source)
    return out


def relative_change(diff: Any, mean_control: Any) -> tuple[float, str]:
    """(diff / |mean_control|, reason). NaN with a reason when the control mean is 0 or missing:
    a relative change of a zero baseline is undefined, not infinite."""
    try:
        d, m = float(diff), float(mean_control)
    except (TypeError, ValueError):
        return math.nan, "difference or control mean missing"
    if math.isnan(d) or math.isnan(m):
        return math.nan, "difference or control mean missing"
    if m == 0:
        return math.nan, "control mean is 0"
    return d / abs(m), ""


def verdict(info: MetricInfo, diff: Any, lo: Any, hi: Any) -> str:
    """"better" / "worse" when the CI (at the analysis' level) excludes 0 (direction from `higher_is_better`);
    "unclear" when it includes 0; "no CI" when no interval was computed."""
    try:
        d, a, b = float(diff), float(lo), float(hi)
    except (TypeError, ValueError):
        return "no CI"
    if math.isnan(d) or math.isnan(a) or math.isnan(b):
        return "no CI"
    if a <= 0 <= b:
        return "unclear"
    return "better" if (d > 0) == info.higher_is_better else "worse"
