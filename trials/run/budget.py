"""`run.budget_usd`: a spending cap that holds with parallel workers and across resumes.

Semantics (README "Budget"):
- Before a job starts, its estimated cost is *reserved*; a job starts only when
  spent + reserved (running jobs) + its own estimate <= budget. So the spend stays within the
  budget plus, at most, one job's overrun per worker (a job's real cost above its estimate).
- The per-job estimate is the larger of the pre-run estimate (`trials.run.progress.estimate`
  divided by the jobs) and the mean cost of the jobs finished so far in this run.
- A finished job whose cost is not fully known (a call without usage or cut off mid-request: cost
  NaN; or attempts that may have been billed) counts the larger of its known cost and its estimate.
- On resume the budget of the saved config holds unless the command line sets another, and what
  the run directory already spent counts against it by the same rule, per earlier job attempt
  (done, failed, interrupted): `Budget.count_earlier`.
- A budget with a model that has no price is a config error: its spend cannot be known.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from trials.run.plan import ConfigError


def check_priced(budget: float | None, configs: list[dict[str, Any]], prices: Any) -> None:
    """Raise ConfigError when a budget is set and a remote model (agents or judge) has no price."""
    if budget is None:
        return
    from trials.llm.usage import FREE_BACKENDS, load_prices, price_for

    table = load_prices(prices) if prices is None or isinstance(prices, str) else dict(prices)
    for cfg in configs:
        backend, model = str(cfg.get("backend", "")), str(cfg.get("model") or "")
        if backend in FREE_BACKENDS or cfg.get("price"):
            continue
        if price_for(model, table) is None:
            raise ConfigError(
                f"run.budget_usd={budget} but model {model!r} ({backend} backend) has no price, so its "
                f"spend cannot be counted; add it to trials/conf/prices/default.yaml (or set "
                f"llm.price={{input_per_1m: ..., output_per_1m: ...}} / judge.price=...), or drop run.budget_usd")


@dataclass
class Budget:
    """Thread-safe reservation ledger (USD). `limit` None = no cap."""

    limit: float | None
    per_job_estimate: float = 0.0
    spent: float = 0.0  # already spent before this process started (resume) + finished jobs
    reserved: float = 0.0
    finished_costs: list[float] = field(default_factory=list)
    stopped: bool = False
    _held: list[float] = field(default_factory=list, repr=False)  # outstanding reservations
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def job_estimate(self) -> float:
        observed = sum(self.finished_costs) / len(self.finished_costs) if self.finished_costs else 0.0
        est = self.per_job_estimate if not math.isnan(self.per_job_estimate) else 0.0
        return max(est, observed)

    def try_reserve(self) -> bool:
        """Reserve one job's estimated cost; False (and `stopped`) when it would exceed the limit."""
        with self._lock:
            if self.limit is None:
                return True
            est = self.job_estimate()
            if self.spent + self.reserved + est > self.limit or self.spent >= self.limit:
                self.stopped = True
                return False
            self.reserved += est
            self._held.append(est)
            return True

    def settle(self, cost: float, known: float | None = None, unknown_billing: int = 0) -> None:
        """A job finished (done or failed) with `cost` (NaN when a call's cost is unknown; `known`:
        the sum of its known costs; `unknown_billing`: attempts that may have been billed): release
        its reservation and count the cost, or, when it is not fully known, the larger of its known
        part and its estimate (`counted_cost`), so the cap still holds."""
        with self._lock:
            held = self._held.pop(0) if self._held else 0.0
            self.reserved = max(0.0, self.reserved - held)
            unknown = math.isnan(cost) or unknown_billing > 0
            if not math.isnan(cost):
                self.finished_costs.append(cost)
            known_part = cost if not math.isnan(cost) else (known or 0.0)
            self.spent += counted_cost(known_part, unknown, held)

    def count_earlier(self, attempts: list[tuple[float, bool]]) -> str:
        """On resume: count what the run directory already spent, one (known cost, cost unknown?)
        per earlier job attempt (`RunDir.attempt_costs`), by the rule of `settle`; the estimate of
        an attempt of unknown cost is `job_estimate()` after the known ones. Returns the sentence
        saying what was counted."""
        with self._lock:
            self.finished_costs.extend(k for k, unknown in attempts if not unknown)
        est = self.job_estimate()
        known = sum(k for k, _ in attempts)
        unknown = [k for k, u in attempts if u]
        counted = sum(counted_cost(k, u, est) for k, u in attempts)
        with self._lock:
            self.spent += counted
        return (f"already spent by this run directory, as the budget counts it: ${counted:.4f} "
                f"({len(attempts)} earlier job attempt(s); known cost ${known:.4f}"
                + (f"; {len(unknown)} of unknown cost (no usage reported, cut off mid-request, or possibly "
                   f"billed attempts) counted at the larger of their known cost and the estimate "
                   f"${est:.4f} per job" if unknown else "") + ")")


def counted_cost(known: float, unknown: bool, estimate: float) -> float:
    """What the cap counts for one finished job attempt: its cost when fully known, else the larger
    of its known part and its estimate (a job of unknown cost must not count as ~0)."""
    return max(known, estimate) if unknown else known
