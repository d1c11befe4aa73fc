"""Before the run: a call/token/cost estimate. During: a tqdm bar (stderr) with jobs done, LLM
calls, tokens and cost so far, and the budget cap (no new job once the spent cost reaches it)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

#: Default per-call assumptions (override under run.estimate). Prompt tokens grow with the
#: transcript; these are medians for the small sizes on the local model.
ESTIMATE_DEFAULTS = {"action_tokens_in": 600, "action_tokens_out": 50, "judge_tokens_in": 700,
                     "judge_tokens_out": 25, "regenerate_rate": 0.3}


def _judged(metrics: list[str], meta: dict[str, tuple[str, str]]) -> tuple[int, int]:
    """(agent-level judged metrics, session-level judged metrics); counts are not judged."""
    agent = sum(1 for m in metrics if meta.get(m, ("", ""))[0] == "agent" and meta[m][1] != "count")
    session = sum(1 for m in metrics if meta.get(m, ("", ""))[0] == "session")
    return agent, session


def estimate(plan: Any, run_cfg: dict[str, Any], llm_cfg: dict[str, Any],
             prices: dict[str, Any] | None) -> dict[str, Any]:
    a = {**ESTIMATE_DEFAULTS, **dict(run_cfg.get("estimate") or {})}
    exp, scen = plan.experiment, plan.scenario
    metrics = list(exp.get("metrics") or scen.METRICS)
    agent_m, session_m = _judged(metrics, scen.METRICS)
    calls = tin = tout = 0.0
    for job in plan.jobs:
        group = len(job.personas)
        actions = scen.actions_per_session(exp, group)
        corr = job.arm_config.get("correction") or {}
        props = len(corr.get("propositions") or ["persona_adherence"]) if corr else 0
        retries = a["regenerate_rate"] * int(corr.get("max_attempts", 2)) if corr else 0
        act_calls = actions * (1 + retries)
        judge_calls = actions * props * (1 + retries) + agent_m * group + session_m
        judge_calls += len(job.arm_config.get("interventions") or []) * max(1, int(exp.get("steps") or 1))
        calls += act_calls + judge_calls
        tin += act_calls * a["action_tokens_in"] + judge_calls * a["judge_tokens_in"]
        tout += act_calls * a["action_tokens_out"] + judge_calls * a["judge_tokens_out"]
    cost, note = _price(llm_cfg, prices, tin, tout)
    return {"calls": int(round(calls)), "tokens": int(round(tin + tout)), "tokens_in": int(tin),
            "tokens_out": int(tout), "cost_usd": cost, "price_note": note}


def _price(llm_cfg: dict[str, Any], prices: dict[str, Any] | None, tin: float, tout: float) -> tuple[float, str]:
    backend = str(llm_cfg.get("backend", ""))
    model = str(llm_cfg.get("model") or backend)
    if backend in ("local", "scripted"):
        return 0.0, f"{backend} backend, free"
    try:
        from trials.llm.usage import price_for
        price = price_for(model, dict(prices or {}))
    except ImportError:
        price = (prices or {}).get(model)
    if not price:
        return math.nan, f"no price for model {model!r} in conf/prices"
    return (tin * price["input_per_1m"] + tout * price["output_per_1m"]) / 1e6, f"{model} price"


def format_estimate(e: dict[str, Any], n_jobs: int) -> str:
    cost = "unknown" if math.isnan(e["cost_usd"]) else f"${e['cost_usd']:.4f}"
    return (f"estimated: {e['calls']} calls, {e['tokens']} tokens, {cost} ({e['price_note']}) "
            f"over {n_jobs} jobs")


@dataclass
class Progress:
    total: int
    budget_usd: float | None = None
    spent_usd: float = 0.0
    calls: int = 0
    tokens: int = 0
    done: int = 0
    failed: int = 0
    stopped_for_budget: bool = False
    _bar: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # a live bar on a terminal; one line per finished job in logs (CI, nohup, pipes)
        self._tty = sys.stderr.isatty()
        self._bar = tqdm(total=self.total, desc="jobs", unit="job", file=sys.stderr,
                         dynamic_ncols=True, disable=not self._tty)

    def over_budget(self) -> bool:
        if self.budget_usd is not None and self.spent_usd >= self.budget_usd:
            self.stopped_for_budget = True
            return True
        return False

    def update(self, summary: dict[str, Any]) -> None:
        self.done += summary["status"] == "done"
        self.failed += summary["status"] == "failed"
        self.calls += summary["calls"]
        self.tokens += summary["tokens_in"] + summary["tokens_out"]
        if not math.isnan(summary["cost_usd"]):
            self.spent_usd += summary["cost_usd"]
        self._bar.set_postfix(calls=self.calls, tokens=self.tokens, cost=f"${self.spent_usd:.4f}",
                              failed=self.failed, refresh=False)
        self._bar.update(1)
        if not self._tty:
            print(f"[{self.done + self.failed}/{self.total}] {summary['session']} {summary['status']} "
                  f"in {summary['duration_s']:.1f} s; so far {self.calls} calls, {self.tokens} tokens, "
                  f"${self.spent_usd:.4f}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self._bar.close()


class CallTicker:
    """Per-call progress for in-process runs (the local model, where one call takes seconds): a live
    counter on a terminal, one line every `every` calls otherwise. Register with
    `trials.llm.usage.add_call_listener(ticker.tick)`."""

    def __init__(self, every: int = 10) -> None:
        self.n = 0
        self.every = every
        self._tty = sys.stderr.isatty()
        self._bar = tqdm(desc="LLM calls", unit="call", file=sys.stderr, dynamic_ncols=True,
                         disable=not self._tty, leave=False)

    def tick(self, row: dict[str, Any]) -> None:
        self.n += 1
        what = f"{row.get('purpose')} {row.get('tokens_out', 0)} tok {float(row.get('latency_s') or 0):.1f} s"
        if self._tty:
            self._bar.set_postfix_str(what, refresh=False)
            self._bar.update(1)
        elif self.n == 1 or self.n % self.every == 0:
            print(f"  LLM call {self.n}: {what}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self._bar.close()
