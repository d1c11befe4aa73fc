"""Builds a realistic synthetic run directory that follows the run-directory contract of
DESIGN.md / COMMON.md exactly (what a scripted-backend `trials run` writes), for report tests.
No tests here; imported by tests/test_reports.py and tests/test_report_browser.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TT_22B = SHARED / "tinytroupe-data" / "paper_results" / "brainstorming_and_focus_group_quantitative_experimentation_2.2b.json"


def tt_22b() -> Path:
    """The paper's 2.2b result file beside the checkout; the calling test skips when ../shared is absent."""
    import pytest

    if not TT_22B.is_file():
        pytest.skip(f"{TT_22B} not found (../shared is not beside the checkout)")
    return TT_22B
AGENTS = ["Ada Lindqvist", "Bruno Okafor", "Chen Wei"]
AGENT_METRICS = ["persona_adherence", "self_consistency", "fluency"]
SESSION_METRICS = {"ideas": "count", "task_completion": "0-9", "divergence": "0-9"}


def make_run_dir(root: Path, replicates: int = 5, seed: int = 7, failed: tuple[str, int] | None = ("treatment", 3),
                 judge_k: int = 3, third_arm: bool = False) -> Path:
    """A scripted-style brainstorm run with arms control/treatment (correction + variety), and
    optionally a third arm `variety_only`."""
    run = root / "runs" / "brainstorm_variety" / "2026-11-26_14-00-00"
    run.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    arms = {"control": {"correction": {"enabled": False, "threshold": 5, "max_attempts": 2},
                        "interventions": {"variety": {"enabled": False, "k": 3}}},
            "treatment": {"correction": {"enabled": True, "threshold": 5, "max_attempts": 2},
                          "interventions": {"variety": {"enabled": True, "k": 3}}}}
    if third_arm:
        arms["variety_only"] = {"correction": {"enabled": False, "threshold": 5, "max_attempts": 2},
                                "interventions": {"variety": {"enabled": True, "k": 5}}}
    config = {"experiment": {"name": "brainstorm_variety", "scenario": "brainstorm", "steps": 4, "group_size": 3,
                             "population": {"path": "trials/personas/difficult_people"}, "arms": arms},
              "llm": {"backend": "scripted", "model": "scripted", "temperature": 0.7, "max_tokens": 64},
              "judge": {"backend": "scripted", "model": "scripted", "k": judge_k},
              "run": {"replicates": replicates, "seed": seed, "n_jobs": 1, "backend": "loky", "resume": True},
              "cache": {"mode": "off", "path": ".cache/llm.sqlite"}}
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    jobs, metric_rows, events, calls = [], [], [], []
    for arm in arms:
        for r in range(replicates):
            session = f"{arm}-r{r}"
            job_seed = seed * 1000 + r
            if failed == (arm, r):
                jobs.append({"arm": arm, "replicate": r, "session": session, "seed": job_seed, "status": "failed",
                             "error": "LLMPermanentError: scripted rule raised 'permanent' on call 12",
                             "duration_s": 0.4})
                continue
            jobs.append({"arm": arm, "replicate": r, "session": session, "seed": job_seed, "status": "done",
                         "error": None, "duration_s": round(float(rng.uniform(0.5, 2.0)), 3)})
            (run / "jobs" / arm / str(r)).mkdir(parents=True)
            (run / "jobs" / arm / str(r) / "result.json").write_text(json.dumps({"session": session}))
            shift = arm != "control"
            for agent in AGENTS:
                for metric in AGENT_METRICS:
                    base = {"persona_adherence": 6.2 - 1.1 * shift, "self_consistency": 5.8, "fluency": 6.5}[metric]
                    value = float(np.clip(np.round(rng.normal(base, 1.3)), 0, 9))
                    k = judge_k if metric == "persona_adherence" else 1
                    sd = float(abs(rng.normal(0.8, 0.3))) if k > 1 else np.nan
                    metric_rows.append(_row(arm, r, session, agent, metric, value, "0-9", "agent", "", k, sd))
            for metric, scale in SESSION_METRICS.items():
                if metric == "ideas":
                    value = float(rng.poisson(9 if shift else 5))
                else:
                    value = float(np.clip(np.round(rng.normal(6.0 + 0.8 * shift, 1.2)), 0, 9))
                reason = ""
                if metric == "ideas" and arm == "control" and r == 1:
                    value, reason = np.nan, "extraction failed: reply was not valid JSON after one repair"
                metric_rows.append(_row(arm, r, session, "", metric, value, scale, "session", reason, 1, np.nan))
            events += _events(arm, r, session, shift, rng)
            for purpose, n in (("action", 24), ("judge", 30), ("extract", 1)) + ((("correction", 5), ("intervention", 2)) if shift else ()):
                for i in range(n):
                    calls.append({"arm": arm, "replicate": r, "session": session, "purpose": purpose,
                                  "backend": "scripted", "model": "scripted", "tokens_in": int(rng.integers(80, 400)),
                                  "tokens_out": int(rng.integers(5, 40)), "latency_s": 0.001, "cached": bool(i % 7 == 0),
                                  "retries": 0, "cost_usd": np.nan, "prompt_chars": int(rng.integers(300, 1600))})
    metrics = pd.DataFrame(metric_rows)
    metrics.to_parquet(run / "metrics.parquet", index=False)
    metrics.to_csv(run / "metrics.csv", index=False)
    with (run / "transcript.jsonl").open("w") as fh:
        for ev in events:
            fh.write(json.dumps(ev) + "\n")
    calls_df = pd.DataFrame(calls)
    calls_df.to_parquet(run / "llm_calls.parquet", index=False)
    n_failed = sum(j["status"] == "failed" for j in jobs)
    manifest = {"schema_version": 1, "package_version": "0.1.0", "git_sha": "0123456789abcdef", "python": "3.11.2",
                "experiment": "brainstorm_variety", "control": "control", "arms": list(arms), "arm_configs": arms,
                "paired": True, "seed": seed, "replicates": replicates, "llm": {"backend": "scripted", "model": "scripted"},
                "judge": {"backend": "scripted", "model": "scripted"}, "started_at": "2026-11-26T14:00:00Z",
                "finished_at": "2026-11-26T14:00:09Z", "status": "partial" if n_failed else "complete",
                "n_jobs_total": len(jobs), "n_failed": n_failed, "jobs": jobs,
                "totals": {"calls": len(calls_df), "tokens_in": int(calls_df["tokens_in"].sum()),
                           "tokens_out": int(calls_df["tokens_out"].sum()), "cost_usd": None}}
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return run


def _row(arm, r, session, agent, metric, value, scale, level, reason, k, sd) -> dict:
    return {"experiment": "brainstorm_variety", "arm": arm, "replicate": r, "session": session, "agent": agent,
            "metric": metric, "value": value, "scale": scale, "level": level, "judge_model": "scripted",
            "missing_reason": reason, "judge_k": k, "judge_sd": sd}


def _event(arm, r, session, step, kind, type_, content="", agent=None, **extra) -> dict:
    base = {"arm": arm, "replicate": r, "session": session, "step": step, "kind": kind, "type": type_,
            "content": content, "agent": agent, "source": None, "target": None, "attempt": None,
            "scores": None, "prompt_tokens": None}
    base.update(extra)
    return base


def _events(arm, r, session, treated, rng) -> list[dict]:
    out = [_event(arm, r, session, 0, "stimulus", "CONVERSATION",
                  "Let's brainstorm new features for a kitchen app. Propose one idea each.", a) for a in AGENTS]
    for step in range(1, 5):
        for a in AGENTS:
            line = f"I think we should add a pantry scanner that suggests recipes (idea {step})."
            if treated:
                for attempt in range(int(rng.integers(1, 3))):
                    score = int(rng.integers(3, 9))
                    out.append(_event(arm, r, session, step, "correction", "ATTEMPT", line, a, attempt=attempt,
                                      scores={"persona_adherence": score, "passed": score >= 5, "threshold": 5}))
            out.append(_event(arm, r, session, step, "action", "TALK", line, a, prompt_tokens=int(rng.integers(200, 500))))
            out.append(_event(arm, r, session, step, "action", "THINK", "They will not like this.", a))
            out.append(_event(arm, r, session, step, "action", "DONE", "", a))
        if treated and step == 3:
            out.append(_event(arm, r, session, step, "intervention", "variety",
                              "Review your ideas so far and propose a completely different one.", AGENTS[0]))
    return out
