"""Before the run: a call/token/cost estimate. During: a tqdm bar (stderr) with jobs done, LLM
calls, tokens and cost so far, and the budget cap (no new job once the spent cost reaches it)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

#: Per-call assumptions of the estimate (override any under run.estimate, e.g.
#: run.estimate.latency_s.openai=3). Prompt tokens (tokens_in) are about the medians of the six
#: shipped experiments at their small size, counted as characters / 4 (OpenAI's tokenizers on
#: English; tests/fake_openai.py counts the same): actions 210-430, judge calls 400-810, correction
#: checks 680-890, extraction 180-330; replies (tokens_out) what a chat model writes (the fake
#: server's are shorter). Prompts grow with the transcript: longer runs sit nearer the high end.
#: latency_s is seconds per call by backend (local: SmolLM2-135M on 2-4 cores).
ESTIMATE_DEFAULTS: dict[str, Any] = {
    "action_tokens_in": 400, "action_tokens_out": 50, "judge_tokens_in": 600, "judge_tokens_out": 25,
    "regenerate_rate": 0.3,   # expected share of correction checks that fail (low 0, high 1)
    "reask_rate": 0.1,        # expected share of judge/extraction replies re-asked (low 0, high 1)
    "low_tokens_factor": 0.5,   # low case: short prompts (one question, a small group) and short replies
    "high_tokens_factor": 1.5,  # high case: longer transcripts, longer prompts
    "latency_s": {"local": 2.0, "scripted": 0.01, "openai": 2.0},
}
CASES = ("low", "expected", "high")
#: purposes priced with the agents' model; every other purpose runs on the judge's model
AGENT_PURPOSES = ("action",)


def _judged(metrics: list[str], meta: dict[str, tuple[str, str]]) -> tuple[int, int]:
    """(agent-level judged metrics, session-level judged metrics); counts are not judged."""
    agent = sum(1 for m in metrics if meta.get(m, ("", ""))[0] == "agent" and meta[m][1] == "0-9")
    session = sum(1 for m in metrics if meta.get(m, ("", ""))[0] == "session" and meta[m][1] == "0-9")
    return agent, session


def _job_calls(job: Any, scen: Any, a: dict[str, Any], case: str) -> dict[str, float]:
    """Calls of one job by purpose under one case: low = every reply parses and, in a scenario whose
    silent agents are not measured (`SILENT_AGENTS_UNMEASURED`), every agent ends each turn at once
    saying nothing (one action call per agent and step; nothing to check, judge, extract or
    intervene on: the mechanics' minimum, so a real run never falls below it); expected = the
    default rates; high = every correction check fails (max_attempts regenerations) and every
    judge/extraction reply is re-asked once."""
    from trials.scenarios.base import metrics_of

    exp, group = job.experiment, len(job.personas)
    regen = {"low": 0.0, "expected": float(a["regenerate_rate"]), "high": 1.0}[case]
    reask = 1 + {"low": 0.0, "expected": float(a["reask_rate"]), "high": 1.0}[case]
    k = int(exp.get("judge_k") or 1)
    meta = metrics_of(scen.METRICS, exp)
    agent_m, session_m = _judged(list(exp.get("metrics") or meta), meta)
    actions = scen.actions_per_session(exp, group)
    corr = job.arm_config.get("correction") or {}
    attempts = 1 + regen * int(corr.get("max_attempts", 2)) if corr else 1
    props = len(corr.get("propositions") or ["persona_adherence"]) if corr else 0
    steps = int(exp.get("steps") or 1) + int(exp.get("opening_steps") or 0)
    llm_pre = 0  # interventions whose precondition is judged by the LLM (stagnation is not)
    for name in job.arm_config.get("interventions") or []:
        pre = (dict(exp.get("intervention_options") or {}).get(name) or {}).get("precondition", "stagnation")
        llm_pre += pre != "stagnation"
    extract = getattr(scen, "extractions_per_session", lambda e, g: 0)(exp, group)
    story = job.arm_config.get("story") or {}
    beats = (steps - 1) // int(story.get("every", 2)) if story else 0
    if case == "low" and getattr(scen, "SILENT_AGENTS_UNMEASURED", False):
        return {"action": min(actions, group * steps), "correction": 0, "judge": 0, "extract": 0,
                "intervention": 0, "story": beats}
    return {"action": actions * attempts,
            "correction": actions * attempts * props * reask,
            "judge": (agent_m * group + session_m) * k * reask,
            "extract": extract * reask,
            "intervention": llm_pre * group * steps * reask,
            "story": beats}


def estimate(plan: Any, run_cfg: dict[str, Any], prices: dict[str, Any] | None = None) -> dict[str, Any]:
    """Calls, tokens, cost and wall time of a plan before it runs, as a low / expected / high
    range (see `_job_calls`). Agent actions are priced with each arm's `llm`, every other call
    (judging, correction checks, extraction, intervention preconditions) with its `judge`; a model
    without a price makes the cost NaN with the reason in `price_note`. Wall time: each session's
    calls x latency_s of its backend, agents' calls in parallel up to run.threads_per_session on
    remote backends (serial on the local model), sessions spread over run.n_jobs workers.

    Returns {calls, tokens, tokens_in, tokens_out, cost_usd, price_note (expected case), wall_s,
    range: {low|expected|high: {calls, tokens, cost_usd, wall_s}}, by_purpose: {purpose: {calls,
    cost_usd}}, by_arm: {arm: {jobs, calls, cost_usd}}} (cost in USD, time in seconds)."""
    a = {**ESTIMATE_DEFAULTS, **dict(run_cfg.get("estimate") or {})}
    latency = {**ESTIMATE_DEFAULTS["latency_s"], **dict(a.get("latency_s") or {})}
    n_jobs = run_cfg.get("n_jobs")
    workers = max(1, int(n_jobs)) if isinstance(n_jobs, int) and n_jobs > 0 else 1
    out: dict[str, Any] = {"range": {}, "by_purpose": {}, "by_arm": {}}
    notes: set[str] = set()
    backends = sorted({str(c.get("backend") or "") for j in plan.jobs for c in (j.llm, j.judge)})
    for case in CASES:
        factor = {"low": float(a["low_tokens_factor"]), "expected": 1.0, "high": float(a["high_tokens_factor"])}[case]
        calls = tin = tout = cost = busy = 0.0
        for job in plan.jobs:
            by_purpose = _job_calls(job, plan.scenario, a, case)
            job_cost = job_busy = 0.0
            for purpose, n in by_purpose.items():
                conf = job.llm if purpose in AGENT_PURPOSES else job.judge
                role = "action" if purpose in AGENT_PURPOSES else "judge"
                i, o = n * a[f"{role}_tokens_in"] * factor, n * a[f"{role}_tokens_out"] * factor
                price, note = _price(conf, prices, i, o)
                notes.add(note)
                calls, tin, tout, job_cost = calls + n, tin + i, tout + o, job_cost + price
                backend = str(conf.get("backend") or "")
                lat = float(latency.get(backend, latency.get("openai", 2.0)))
                parallel = 1 if backend == "local" else max(1, min(job.threads, len(job.personas)))
                job_busy += n * lat / parallel
                if case == "expected":
                    row = out["by_purpose"].setdefault(purpose, {"calls": 0.0, "cost_usd": 0.0})
                    row["calls"] += n
                    row["cost_usd"] += price
            cost += job_cost
            busy += job_busy
            if case == "expected":
                arm = out["by_arm"].setdefault(job.arm, {"jobs": 0, "calls": 0.0, "cost_usd": 0.0})
                arm["jobs"] += 1
                arm["calls"] += sum(by_purpose.values())
                arm["cost_usd"] += job_cost
        out["latency_s"] = {b: latency.get(b, latency.get("openai", 2.0)) for b in backends}
        out["range"][case] = {"calls": int(round(calls)), "tokens": int(round(tin + tout)),
                              "tokens_in": int(tin), "tokens_out": int(tout), "cost_usd": cost,
                              "wall_s": busy / min(workers, max(1, len(plan.jobs)))}
    for table in (out["by_purpose"], out["by_arm"]):
        for row in table.values():
            row["calls"] = int(round(row["calls"]))
    exp = out["range"]["expected"]
    out.update({k: exp[k] for k in ("calls", "tokens", "tokens_in", "tokens_out", "cost_usd", "wall_s")})
    out["price_note"] = "; ".join(sorted(notes))
    return out


def _price(llm_cfg: dict[str, Any], prices: dict[str, Any] | None, tin: float, tout: float) -> tuple[float, str]:
    backend = str(llm_cfg.get("backend", ""))
    model = str(llm_cfg.get("model") or backend)
    if backend in ("local", "scripted"):
        return 0.0, f"{backend} backend, free"
    if llm_cfg.get("price"):
        price = dict(llm_cfg["price"])
    else:
        try:
            from trials.llm.usage import price_for
            price = price_for(model, dict(prices or {}))
        except ImportError:
            price = (prices or {}).get(model)
    if not price:
        return math.nan, f"no price for model {model!r} in conf/prices"
    return (tin * price["input_per_1m"] + tout * price["output_per_1m"]) / 1e6, f"{model} price"


def _usd(x: float) -> str:
    return "unknown" if math.isnan(x) else f"${x:.4f}"


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def format_estimate(e: dict[str, Any], n_jobs: int) -> str:
    """Two lines: the expected calls/tokens/cost, then the low-high range and the wall time."""
    lines = [f"estimated: {e['calls']} calls, {e['tokens']} tokens, {_usd(e['cost_usd'])} "
             f"({e['price_note']}) over {n_jobs} jobs"]
    r = e.get("range") or {}
    if r:
        lo, hi = r["low"], r["high"]
        lines.append(f"  range low-high: {lo['calls']}-{hi['calls']} calls, {_usd(lo['cost_usd'])}-"
                     f"{_usd(hi['cost_usd'])}; expected wall time {_duration(e['wall_s'])} "
                     f"({_duration(lo['wall_s'])}-{_duration(hi['wall_s'])}) at "
                     + ", ".join(f"{v:g} s per {b} call" for b, v in (e.get("latency_s") or {}).items())
                     + " on an idle machine (run.estimate.latency_s.<backend> to change)")
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _short(value: Any, n: int = 24) -> str:
    text = str(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def format_plan(plan: Any, e: dict[str, Any]) -> str:
    """The dry run's tables: one row per arm with what differs from the control (dotted keys),
    its jobs, expected calls and cost; then expected calls and cost by purpose and model."""
    from trials.run.design import flat_diff

    control = plan.arm_configs.get(plan.control, {}) if plan.arm_configs else {}
    rows = [("arm", "jobs", "calls", "cost", "differs from control")]
    for arm in plan.arms:
        diff = "(control)" if arm == plan.control else (
            ", ".join(f"{k}={_short(v)}" for k, v in flat_diff(control, plan.arm_configs.get(arm, {})).items())
            or "(same as control: A/A check)")
        row = e["by_arm"].get(arm, {"jobs": 0, "calls": 0, "cost_usd": 0.0})
        rows.append((arm, str(row["jobs"]), str(row["calls"]), _usd(row["cost_usd"]), diff))
    by = [("purpose", "calls", "cost", "model")]
    job = plan.jobs[0] if plan.jobs else None
    for purpose, row in e["by_purpose"].items():
        if not row["calls"]:
            continue
        conf = (job.llm if purpose in AGENT_PURPOSES else job.judge) if job else {}
        by.append((purpose, str(row["calls"]), _usd(row["cost_usd"]),
                   f"{conf.get('backend', '')} {conf.get('model') or ''}".strip()
                   + (" (first arm; arms differ)" if len(plan.arms) > 1 and _models_differ(plan) else "")))
    return "\n".join(["plan (expected case):", *_table(rows), "calls by purpose (expected case):", *_table(by)])


def _models_differ(plan: Any) -> bool:
    return len({repr((j.llm.get("model"), j.judge.get("model"))) for j in plan.jobs}) > 1


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
    cost_unknown: bool = False  # a finished job had a call without a price
    tokens_unknown: bool = False  # a finished job had a call cut off mid-request (tokens unknown)
    budget: Any = None  # trials.run.budget.Budget: reservations (None = the plain spent check)
    _bar: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # a live bar on a terminal; one line per finished job in logs (CI, nohup, pipes)
        self._tty = sys.stderr.isatty()
        self._bar = tqdm(total=self.total, desc="jobs", unit="job", file=sys.stderr,
                         dynamic_ncols=True, disable=not self._tty)

    def over_budget(self) -> bool:
        """Called before each job starts; with a `budget`, reserves the job's estimated cost."""
        if self.budget is not None:
            ok = self.budget.try_reserve()
            self.stopped_for_budget = self.budget.stopped
            return not ok
        if self.budget_usd is not None and self.spent_usd >= self.budget_usd:
            self.stopped_for_budget = True
            return True
        return False

    def update(self, summary: dict[str, Any]) -> None:
        self.done += summary["status"] == "done"
        self.failed += summary["status"] == "failed"
        self.calls += summary["calls"]
        if summary["tokens_in"] is None or summary["tokens_out"] is None:
            self.tokens_unknown = True  # shown as "n/a", never the known part as if it were all
        else:
            self.tokens += summary["tokens_in"] + summary["tokens_out"]
        if math.isnan(summary["cost_usd"]):
            self.cost_unknown = True  # a call without a price: the total is unknown, not its priced part
        else:
            self.spent_usd += summary["cost_usd"]
        if self.budget is not None:
            self.budget.settle(summary["cost_usd"], summary.get("cost_known_usd"),
                               int(summary.get("unknown_billing_attempts") or 0))
        self._bar.set_postfix(calls=self.calls, tokens=self.tokens_so_far(), cost=self.cost_so_far(),
                              failed=self.failed, refresh=False)
        self._bar.update(1)
        if not self._tty:
            print(f"[{self.done + self.failed}/{self.total}] {summary['session']} {summary['status']} "
                  f"in {summary['duration_s']:.1f} s; so far {self.calls} calls, {self.tokens_so_far()} tokens, "
                  f"{self.cost_so_far()}", file=sys.stderr, flush=True)

    def tokens_so_far(self) -> str:
        """The tokens of the finished jobs: "n/a" once one had a call whose tokens are unknown."""
        return "n/a" if self.tokens_unknown else str(self.tokens)

    def cost_so_far(self) -> str:
        """The cost of the finished jobs: "n/a" once one had a call without a price."""
        return "n/a" if self.cost_unknown else f"${self.spent_usd:.4f}"

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
        tokens = row.get("tokens_out")
        what = f"{row.get('purpose')} {'?' if tokens is None else tokens} tok {float(row.get('latency_s') or 0):.1f} s"
        if self._tty:
            self._bar.set_postfix_str(what, refresh=False)
            self._bar.update(1)
        elif self.n == 1 or self.n % self.every == 0:
            print(f"  LLM call {self.n}: {what}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self._bar.close()
