"""Number formatting shared by the Markdown and HTML renderers, so both show the same strings.

Means and effect sizes get two decimals; differences also carry a sign (`+5.33`, `-0.60`);
p-values two decimals from 0.1 up (`0.80`), two significant digits below (`0.0063`, `9.3e-08`).
Missing values show as an en dash."""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def num(x: Any, digits: int = 2) -> str:
    """A plain number, fixed decimals (`5.34`)."""
    if _is_missing(x):
        return MISSING
    out = f"{float(x):.{digits}f}"
    return "0." + "0" * digits if out == "-0." + "0" * digits else out


def signed(x: Any, digits: int = 2) -> str:
    """A difference with its sign always shown (`+5.33`, `-0.60`, `+0.00`)."""
    if _is_missing(x):
        return MISSING
    out = f"{float(x):+.{digits}f}"
    return "+0." + "0" * digits if out == "-0." + "0" * digits else out


def interval(lo: Any, hi: Any, digits: int = 2) -> str:
    """A confidence interval of signed values: `[+3.70, +6.97]`."""
    if _is_missing(lo) and _is_missing(hi):
        return ""
    return f"[{signed(lo, digits)}, {signed(hi, digits)}]"


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
    if math.isinf(float(x)):
        return "∞" if float(x) > 0 else "-∞"
    return f"{int(round(float(x))):,}"


def usd(x: Any) -> str:
    """A cost; NaN means the model had no price in the table, which is not the same as free."""
    if _is_missing(x):
        return "unknown (no price)"
    x = float(x)
    return "$0.00" if x == 0 else f"${x:,.4f}" if x < 1 else f"${x:,.2f}"


def percent(x: Any, digits: int = 0) -> str:
    if _is_missing(x):
        return MISSING
    return f"{100 * float(x):.{digits}f}%"


def label(name: str) -> str:
    """A metric or column name made readable: `persona_adherence` -> `persona adherence`."""
    return str(name).replace("_", " ").strip()
