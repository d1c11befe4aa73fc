"""Usage accounting: the price table, per-call cost, and `CallRecorder` (one row per request)."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from trials.llm.base import Usage

if TYPE_CHECKING:
    import pandas as pd

#: Backends that run on this machine and cost nothing.
FREE_BACKENDS = ("local", "scripted")

DEFAULT_PRICES = Path(__file__).resolve().parents[1] / "conf" / "prices" / "default.yaml"

COLUMNS = ["purpose", "backend", "model", "tokens_in", "tokens_out", "latency_s", "cached", "retries",
           "cost_usd", "prompt_chars", "error", "unknown_billing_attempts"]


def load_prices(path: str | Path | None = None) -> dict[str, dict[str, float]]:
    """The price table {model: {input_per_1m, output_per_1m}}; {} when the default file is absent."""
    import yaml

    p = Path(path) if path is not None else DEFAULT_PRICES
    if not p.exists():
        if path is not None:
            raise FileNotFoundError(f"price table {p} not found (set prices to a YAML file or mapping)")
        return {}
    table = yaml.safe_load(p.read_text()) or {}
    return check_prices(table, str(p))


def check_prices(table: Mapping[str, Any], where: str = "prices") -> dict[str, dict[str, float]]:
    """{model: {input_per_1m, output_per_1m}} with both prices numbers >= 0, else a ValueError
    naming the entry and the missing or bad field."""
    out = {}
    fields = ("input_per_1m", "output_per_1m")
    for model, entry in table.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: entry {model!r} needs input_per_1m and output_per_1m (USD per 1M tokens)")
        missing = [f for f in fields if entry.get(f) is None]
        if missing:
            raise ValueError(f"{where}: entry {model!r} has no {' and no '.join(missing)}; fix: give both "
                             "input_per_1m and output_per_1m (USD per 1M tokens)")
        prices = {}
        for f in fields:
            value = entry[f]
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
            if not number >= 0 or math.isinf(number):
                raise ValueError(f"{where}: entry {model!r} {f}={value!r}: need a number >= 0 (USD per 1M tokens)")
            prices[f] = number
        out[str(model)] = prices
    return out


def price_for(model: str, prices: Mapping[str, Mapping[str, float]]) -> Mapping[str, float] | None:
    """Exact match, else the longest table key that prefixes the model name at a '-' or ':' boundary
    (so 'gpt-4o-mini-2024-07-18' uses 'gpt-4o-mini')."""
    if model in prices:
        return prices[model]
    best = None
    for key in prices:
        if model.startswith(key) and model[len(key)] in "-:@" and (best is None or len(key) > len(best)):
            best = key
    return prices[best] if best else None


def cost_usd(backend: str, model: str, tokens_in: int | None, tokens_out: int | None,
             prices: Mapping[str, Mapping[str, float]], override: Mapping[str, float] | None = None) -> float:
    """USD of one request: 0 on a free backend; NaN (unknown) without a price or with unknown tokens."""
    if backend in FREE_BACKENDS:
        return 0.0
    price = override or price_for(model, prices)
    if price is None or tokens_in is None or tokens_out is None:
        return math.nan
    return (tokens_in * price["input_per_1m"] + tokens_out * price["output_per_1m"]) / 1e6


#: Functions told about every recorded call in this process (the console's per-call progress).
_LISTENERS: list[Callable[[dict[str, Any]], None]] = []


def add_call_listener(fn: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
    """Calls `fn(row)` after each call recorded in this process; returns the function that removes it."""
    _LISTENERS.append(fn)
    return lambda: _LISTENERS.remove(fn) if fn in _LISTENERS else None


def total_tokens(tokens: Any) -> int | None:
    """The tokens of some calls (a pandas Series of tokens_in or tokens_out): None if any call's
    count is unknown (a call cut off mid-request: it may have been sent and billed), never a sum
    that skips them; 0 for none."""
    import pandas as pd

    values = pd.to_numeric(pd.Series(tokens), errors="coerce")
    return None if values.isna().any() else int(values.sum())


def token_totals(calls: "pd.DataFrame") -> dict[str, Any]:
    """{tokens_in, tokens_out, tokens_note} of a calls table: each total is None (unknown) when any
    call's count is unknown, and `tokens_note` then says how many calls and what the known part is
    ("" when every count is known). A table without a token column has unknown tokens."""
    import pandas as pd

    out: dict[str, Any] = {}
    unknown = pd.Series(False, index=calls.index)
    known = {}
    for col in ("tokens_in", "tokens_out"):
        values = pd.to_numeric(calls[col], errors="coerce") if col in calls else pd.Series(math.nan, index=calls.index)
        out[col] = total_tokens(values)
        unknown |= values.isna()
        known[col] = int(values.sum(skipna=True))
    n = int(unknown.sum())
    out["tokens_note"] = (f"tokens unknown for {n} of {len(calls)} call(s) (cut off mid-request, or the endpoint "
                          f"reported no usage); the known part: {known['tokens_in']} in, {known['tokens_out']} out"
                          ) if n else ""
    out.update(billing_note(calls))
    return out


def billing_note(calls: "pd.DataFrame") -> dict[str, Any]:
    """{unknown_billing_attempts, billing_note}: attempts that timed out or got a malformed 2xx reply
    (the provider may have billed them; their tokens and cost are in no total), and a sentence saying
    so ("" when there were none). The cost total stays the cost of the known calls; this is its caveat."""
    import pandas as pd

    col = calls["unknown_billing_attempts"] if "unknown_billing_attempts" in calls else pd.Series(0, index=calls.index)
    n = int(pd.to_numeric(col, errors="coerce").fillna(0).sum())
    return {"unknown_billing_attempts": n,
            "billing_note": (f"{n} attempt(s) may have been billed (timed out / malformed reply); not included "
                             "in the tokens and cost") if n else ""}


def total_cost(costs: Any) -> float:
    """The cost of some calls (a pandas Series of cost_usd): NaN if any call's cost is unknown (a
    model without a price; a cache hit costs 0 and is known), never a sum that skips them; 0 for none."""
    return float(costs.sum(skipna=False)) if len(costs) else 0.0


class CallRecorder:
    """Thread-safe list of per-request rows (see COLUMNS); the runner writes it to llm_calls.parquet.
    `listener(row)`, if given, is called after each row is recorded (a calls journal, or a Dask
    worker's stream to the driver, so a session that dies does not take its calls along); the row
    carries the call's number under "call". `on_start(line)`, if given, is called just before a
    request is sent (`start`), so the journal or the driver knows of a call a kill cuts short."""

    def __init__(self, listener: Callable[[dict[str, Any]], None] | None = None,
                 on_start: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._listener = listener
        self._on_start = on_start
        self._calls = 0
        self.stopped = False  # `stop`: this session makes no new call

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"rows": list(self.rows)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.rows = state["rows"]
        self._lock = threading.Lock()
        self._listener = self._on_start = None
        self._calls = len(self.rows)
        self.stopped = False

    def stop(self) -> None:
        """This recorder's session starts no new LLM call (CallsStopped): the run abandoned it."""
        self.stopped = True

    def start(self, purpose: str, backend: str, model: str, prompt_chars: int) -> int:
        """A request is about to be sent: its number (give it to `record`), told to `on_start`."""
        with self._lock:
            self._calls += 1
            call = self._calls
        if self._on_start is not None:
            self._on_start({"started": call, "purpose": purpose, "backend": backend, "model": model,
                            "prompt_chars": prompt_chars})
        return call

    def record(self, usage: Usage, error: str = "", call: int | None = None) -> None:
        if call is None:  # a cache hit: no request was sent, so no `start`
            with self._lock:
                self._calls += 1
                call = self._calls
        row = {"purpose": usage.purpose, "backend": usage.backend, "model": usage.model,
               "tokens_in": usage.tokens_in, "tokens_out": usage.tokens_out, "latency_s": usage.latency_s,
               "cached": usage.cached, "retries": usage.retries, "cost_usd": usage.cost_usd,
               "prompt_chars": usage.prompt_chars, "error": error,
               "unknown_billing_attempts": usage.unknown_billing_attempts}
        with self._lock:
            self.rows.append(row)
        if self._listener is not None:
            self._listener({**row, "call": call})
        for fn in list(_LISTENERS):
            fn(row)

    def to_frame(self) -> "pd.DataFrame":
        import pandas as pd

        with self._lock:
            return pd.DataFrame(list(self.rows), columns=COLUMNS)

    def summary(self) -> "pd.DataFrame":
        """Per purpose: calls, tokens_in, tokens_out, cost_usd (NaN if any call had no price),
        cached (count), retries (sum)."""
        import pandas as pd

        df = self.to_frame()
        if df.empty:
            return pd.DataFrame(columns=["calls", "tokens_in", "tokens_out", "cost_usd", "cached", "retries"])
        g = df.groupby("purpose", sort=True)
        return pd.DataFrame({
            "calls": g.size(),
            "tokens_in": g["tokens_in"].agg(total_tokens),
            "tokens_out": g["tokens_out"].agg(total_tokens),
            "cost_usd": g["cost_usd"].agg(total_cost),
            "cached": g["cached"].sum().astype(int),
            "retries": g["retries"].sum(),
        })
