"""Number formatting shared by the Markdown and HTML renderers, so both show the same strings.

Means and effect sizes get two decimals; differences also carry a sign (`+5.33`, `-0.60`);
p-values two decimals from 0.1 up (`0.80`), two significant digits below (`0.0063`, `9.3e-08`).
Every number goes through `number`: fixed decimals from 1e-4 to 1e6 (below 1e-4 a p-value also
switches), outside that three significant digits (`1e+160`, `-3e-09`: never a 160-digit string nor
a silent `0.00`); infinities as `∞`. Missing values (None, NaN, NA) show as an en dash."""

from __future__ import annotations

import math
import re
from typing import Any

MISSING = "–"


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return True


#: magnitudes shown with fixed decimals; outside, `SIGNIFICANT` significant digits (general format)
FIXED_RANGE = (1e-4, 1e6)
SIGNIFICANT = 3


def number(x: Any, digits: int = 2, sign: bool = False) -> str:
    """The one formatter of report numbers: `digits` decimals (`5.34`, with `sign` `+5.33`; no
    `-0.00`) for magnitudes in FIXED_RANGE, else general format (`1e+160`, `-3e-09`); `∞` / `-∞`;
    MISSING for None / NaN / NA."""
    if _is_missing(x):
        return MISSING
    x, plus = float(x), "+" if sign else ""
    if math.isinf(x):
        return plus + "∞" if x > 0 else "-∞"
    if x != 0 and not FIXED_RANGE[0] <= abs(x) < FIXED_RANGE[1]:
        return f"{x:{plus}.{SIGNIFICANT}g}"
    out = f"{x:{plus}.{digits}f}"
    return plus + out[1:] if out[0] == "-" and float(out) == 0 else out


def num(x: Any, digits: int = 2) -> str:
    """A plain number, fixed decimals (`5.34`)."""
    return number(x, digits)


def signed(x: Any, digits: int = 2) -> str:
    """A difference with its sign always shown (`+5.33`, `-0.60`, `+0.00`)."""
    return number(x, digits, sign=True)


def interval(lo: Any, hi: Any, digits: int = 2) -> str:
    """A confidence interval of signed values: `[+3.70, +6.97]`."""
    if _is_missing(lo) and _is_missing(hi):
        return ""
    return f"[{signed(lo, digits)}, {signed(hi, digits)}]"


def ci_level(alpha: Any) -> str:
    """The confidence level of intervals computed at `alpha`: `95%` for 0.05, `90%` for 0.1, `97.5%`
    for 0.025; "" when alpha is unknown (not recorded), so a label never states a level it cannot know."""
    if _is_missing(alpha) or not 0 < float(alpha) < 1:
        return ""
    return f"{round(100 * (1 - float(alpha)), 6):g}%"


def ci_name(alpha: Any, plural: bool = False) -> str:
    """`90% CI` (`90% CIs`) for alpha 0.1; a bare `CI` when alpha is unknown."""
    return f"{ci_level(alpha)} CI{'s' if plural else ''}".strip()


def with_ci(est: Any, lo: Any, hi: Any, digits: int = 2) -> str:
    """An estimate followed by its interval: `+5.33 [+3.70, +6.97]`."""
    ci = interval(lo, hi, digits)
    return f"{signed(est, digits)} {ci}".strip()


def pval(p: Any) -> str:
    """Two significant digits; scientific notation below 0.0001."""
    if _is_missing(p):
        return MISSING
    p = float(p)
    if p == 0:
        return "0"
    if p >= 0.1:
        return f"{p:.2f}"
    if p >= 1e-4:
        return f"{p:.2g}"
    return f"{p:.1e}"


def integer(x: Any) -> str:
    if _is_missing(x):
        return MISSING
    if math.isinf(float(x)) or abs(float(x)) >= 1e15:
        return number(x)
    return f"{int(round(float(x))):,}"


def usd(x: Any, why: str = "") -> str:
    """A cost; NaN is unknown, which is not the same as free: `why` says why where the caller
    knows (a model without a price, tokens the endpoint did not report)."""
    if _is_missing(x):
        return f"unknown ({why})" if why else "unknown"
    x = float(x)
    if math.isinf(x) or abs(x) >= FIXED_RANGE[1]:
        return "$" + number(x)
    return "$0.00" if x == 0 else f"${x:,.4f}" if x < 1 else f"${x:,.2f}"


def percent(x: Any, digits: int = 0) -> str:
    if _is_missing(x):
        return MISSING
    return number(100 * float(x), digits) + "%"


def signed_percent(x: Any, digits: int | None = None) -> str:
    """A relative change with its sign: `+138%`, `-11%`; one decimal below 10% (`-5.2%`, `+0.4%`)."""
    if _is_missing(x):
        return MISSING
    if digits is None:
        digits = 1 if abs(float(x)) < 0.1 else 0
    return number(100 * float(x), digits, sign=True) + "%"


def label(name: str) -> str:
    """A metric or column name made readable: `persona_adherence` -> `persona adherence`."""
    return str(name).replace("_", " ").strip()


#: TinyTroupe's names for our metrics (its result JSON), so one metric has one display name.
METRIC_ALIASES = {"ideas_qty": "ideas", "opinions_qty": "opinions"}


def metric_key(name: Any) -> str:
    """A metric name in canonical form: `Persona Adherence` -> `persona_adherence`, `ideas_qty` -> `ideas`."""
    k = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")
    return METRIC_ALIASES.get(k, k)


def metric(name: Any) -> str:
    """The one display name of a metric, used in every table, figure and sentence:
    `persona_adherence`, `Persona Adherence` -> `persona adherence`; `ideas_qty` -> `ideas`."""
    return metric_key(name).replace("_", " ")


def with_metric_names(text: str, names: list[str]) -> str:
    """Free text from the analysis (notes, trade-off lines) with each raw metric name replaced by its
    display name, longest names first so `Persona Adherence` is not half-replaced."""
    for name in sorted({str(n) for n in names}, key=len, reverse=True):
        if name and name != metric(name):
            text = re.sub(rf"(?<![\w]){re.escape(name)}(?![\w])", metric(name), text)
    return text
