"""Header facts of a run: arms and how they differ, seeds, models, dates, LLM usage and cost."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from reports import fmt
from reports.load import RunData


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists are kept as values."""
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value, name) if isinstance(value, dict) and value else {name: value})
    return out


def delivery(data: RunData) -> list[tuple[str, str, bool | None, str]]:
    """The run's manipulation check (manifest `arms.<arm>.delivered`, trials.run.delivery) seen from
    the comparisons this report shows: (arm, role, delivered, why) for every arm with a mechanism of
    its own, role "treatment" (compared with `data.control`) or "baseline" (it is the control of
    these comparisons, chosen with `trials report --control`; its mechanism was checked against the
    run's control). The run's own control has no mechanism to deliver and is left out."""
    arms = (data.manifest or {}).get("arms")
    if not isinstance(arms, dict):
        return []
    out = []
    for arm, info in arms.items():
        if not isinstance(info, dict) or "delivered" not in info or str(arm) == (data.run_control or data.control):
            continue
        why = str(info.get("note") or "")
        why = why.split(": ", 1)[1] if why.lower().startswith("treatment not delivered: ") else why
        role = "baseline" if str(arm) == data.control else "treatment"
        out.append((str(arm), role, info.get("delivered"), why))
    return out


def models(data: RunData) -> tuple[dict[str, Any], dict[str, Any]]:
    """(llm, judge) settings: the manifest's, else config.yaml's, else empty."""
    man, cfg = data.manifest or {}, data.config or {}
    return man.get("llm") or cfg.get("llm") or {}, man.get("judge") or cfg.get("judge") or {}


def arm_configs(data: RunData) -> dict[str, dict[str, Any]]:
    """Each arm's effective config: the manifest's `arm_configs` (every experiment key, steering,
    llm and judge the arm ran with), else config.yaml `experiment.arms` (older runs)."""
    arms = (data.manifest or {}).get("arm_configs")
    if not isinstance(arms, dict) or not arms:
        arms = ((data.config or {}).get("experiment") or {}).get("arms") or {}
    return {str(k): (v if isinstance(v, dict) else {}) for k, v in arms.items()}


def arm_names(data: RunData) -> list[str]:
    """Control first, then the other arms in their declared order."""
    names = [str(a) for a in (data.manifest or {}).get("arms", [])] or list(arm_configs(data))
    if not names:
        eff = data.tables.effects
        names = list(dict.fromkeys([*eff.get("control", []), *eff.get("treatment", [])]))
    if not names and data.metrics is not None and "arm" in data.metrics:
        names = list(dict.fromkeys(data.metrics["arm"].astype(str)))
    control = data.control
    return [control, *[n for n in names if n != control]] if control in names else names


def config_diff(data: RunData) -> list[tuple[str, str, str, str]]:
    """(arm, key, control value, arm value) for every setting that differs from the control arm."""
    configs = {arm: flatten(cfg) for arm, cfg in arm_configs(data).items()}
    control = data.control
    if control not in configs:
        return []
    rows = []
    for arm, flat in configs.items():
        if arm == control:
            continue
        for key in sorted(set(flat) | set(configs[control])):
            a, b = configs[control].get(key, "(unset)"), flat.get(key, "(unset)")
            if a != b:
                rows.append((arm, key, _show(a), _show(b)))
    return rows


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return "null" if value is None else str(value)


def seeds(data: RunData) -> str:
    man = data.manifest or {}
    jobs = pd.DataFrame(man.get("jobs") or [])
    base = f"base seed {man['seed']}" if man.get("seed") is not None else ""
    if not jobs.empty and {"replicate", "seed"} <= set(jobs.columns):
        per = jobs.drop_duplicates("replicate").sort_values("replicate")
        listed = ", ".join(f"r{int(r)}={s}" for r, s in zip(per["replicate"], per["seed"]))
        paired = jobs.groupby("replicate")["seed"].nunique().max() == 1
        if paired:
            listed += " (shared by all arms: paired)" if data.paired is not False else \
                " (shared by all arms; this analysis treats the arms as unpaired)"
        base = f"{base}; per replicate {listed}"
    return base.strip("; ") or "not recorded"


#: why a call's tokens can be unknown (the calls table's token columns are NA there)
UNKNOWN_TOKENS_WHY = "cut off mid-request, or no usage reported by the endpoint"


def billing_caveat(attempts: int) -> str:
    """The caveat of a cost total that leaves out attempts the provider may have billed."""
    return (f"{attempts} attempt(s) that timed out or got a malformed reply may have been billed; "
            "not included")


def unknown_cost_why(row: Any) -> str:
    """Why a usage_by_purpose row's cost is unknown: its calls' tokens, or else a missing price."""
    return "tokens unknown" if int(row.get("tokens_unknown", 0) or 0) else "no price"


def usage_by_purpose(calls: pd.DataFrame | None) -> pd.DataFrame:
    """purpose, calls, cached, tokens_in, tokens_out (NaN when any call's tokens are unknown: cut off
    mid-request, or not reported by the endpoint), tokens_unknown (calls with unknown tokens),
    cost_usd (NaN when any call had no price or unknown tokens), unknown_billing_attempts (attempts
    that timed out or got a malformed reply: maybe billed, in no total)."""
    if calls is None or calls.empty or "purpose" not in calls:
        return pd.DataFrame()
    calls = calls.copy()
    for col in ("tokens_in", "tokens_out", "cost_usd"):
        if col not in calls:
            calls[col] = np.nan
    if "unknown_billing_attempts" not in calls:  # runs from before the column existed
        calls["unknown_billing_attempts"] = 0
    calls["unknown_billing_attempts"] = pd.to_numeric(calls["unknown_billing_attempts"], errors="coerce").fillna(0).astype(int)
    calls["cached"] = calls["cached"].astype(bool) if "cached" in calls else False
    for col in ("tokens_in", "tokens_out", "cost_usd"):
        calls[col] = pd.to_numeric(calls[col], errors="coerce").astype("float64")
    calls["tokens_unknown"] = calls["tokens_in"].isna() | calls["tokens_out"].isna()
    grouped = calls.groupby("purpose", sort=True)

    def known_sum(s: pd.Series) -> float:  # a sum that skipped an unknown value would be an undercount
        return s.sum() if s.notna().all() else np.nan

    out = pd.DataFrame({
        "calls": grouped.size(),
        "cached": grouped["cached"].sum(),
        "tokens_in": grouped["tokens_in"].apply(known_sum),
        "tokens_out": grouped["tokens_out"].apply(known_sum),
        "tokens_unknown": grouped["tokens_unknown"].sum(),
        "cost_usd": grouped["cost_usd"].apply(known_sum),
        "unknown_billing_attempts": grouped["unknown_billing_attempts"].sum(),
    }).reset_index()
    total = pd.DataFrame([{"purpose": "total", "calls": out["calls"].sum(), "cached": out["cached"].sum(),
                           "tokens_in": known_sum(out["tokens_in"]), "tokens_out": known_sum(out["tokens_out"]),
                           "tokens_unknown": out["tokens_unknown"].sum(), "cost_usd": known_sum(out["cost_usd"]),
                           "unknown_billing_attempts": out["unknown_billing_attempts"].sum()}])
    return pd.concat([out, total], ignore_index=True)


def header_facts(data: RunData, usage: pd.DataFrame | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs for the report header; `usage` is usage_by_purpose(data.llm_calls) if already made."""
    man, cfg = data.manifest or {}, data.config or {}
    exp = man.get("experiment") or (cfg.get("experiment") or {}).get("name") or data.source.stem
    llm, judge = models(data)
    arms = ", ".join(arm_names(data)) + (f" (control: {data.control})" if data.control else "")
    if data.run_control and data.control and data.run_control != data.control:
        arms += f"; the run's own control is {data.run_control} (this report compares with {data.control})"
    facts = [("Experiment", str(exp)), ("Arms", arms)]
    if man:
        paired = {True: ", paired", False: ", analysed unpaired" if man.get("paired") else ""}.get(data.paired, "")
        facts.append(("Replicates", f"{man.get('replicates', '?')} per arm{paired}"))
        facts.append(("Jobs", f"{man.get('n_jobs_total', '?')} total, {man.get('n_failed', 0)} failed, "
                              f"status {man.get('status', '?')}"))
    if not llm and not judge:
        facts.append(("Model and judge", "not recorded in this input"))
    if llm:
        facts.append(("Model", f"{llm.get('model', '?')} ({llm.get('backend', '?')} backend)"))
    if judge:
        facts.append(("Judge model", f"{judge.get('model', '?')} ({judge.get('backend', '?')} backend)"))
    if man:
        facts.append(("Seeds", seeds(data)))
        facts.append(("Date", f"{man.get('started_at', '?')} → {man.get('finished_at', '?')}"))
        facts.append(("Package", f"persona-trials {man.get('package_version', '?')}"
                      + (f", git {str(man['git_sha'])[:10]}" if man.get("git_sha") else "")
                      + (f", Python {man['python']}" if man.get("python") else "")))
    usage = usage_by_purpose(data.llm_calls) if usage is None else usage
    if not usage.empty:
        tot = usage.iloc[-1]
        unknown = int(tot.get("tokens_unknown", 0) or 0)
        tokens = (f"tokens unknown ({unknown} call(s) {UNKNOWN_TOKENS_WHY})" if unknown else
                  f"{fmt.integer(tot['tokens_in'])} tokens in, {fmt.integer(tot['tokens_out'])} out")
        billed = int(tot.get("unknown_billing_attempts", 0) or 0)
        facts.append(("LLM usage", f"{fmt.integer(tot['calls'])} calls ({fmt.integer(tot['cached'])} cached), "
                      f"{tokens}, cost {fmt.usd(tot['cost_usd'], unknown_cost_why(tot))}"
                      + (f" ({billing_caveat(billed)})" if billed else "")))
    elif man.get("totals"):
        t = man["totals"]
        tokens = (f"tokens unknown ({t['tokens_note']})" if t.get("tokens_note") else
                  f"{fmt.integer(t.get('tokens_in'))} tokens in, {fmt.integer(t.get('tokens_out'))} out")
        facts.append(("LLM usage", f"{fmt.integer(t.get('calls'))} calls, {tokens}, cost {fmt.usd(t.get('cost_usd'))}"
                      + (f" ({t['billing_note']})" if t.get("billing_note") else "")))
    facts.append(("Source", str(data.source)))
    return facts
