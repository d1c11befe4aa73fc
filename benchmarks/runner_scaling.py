"""Runner scaling against a fake OpenAI-compatible server with a fixed latency per request.

For n_jobs in 1, 2, 4 and threads per session in 1, 4 it runs the same brainstorm experiment and
compares the wall time with the critical-path bound: per session, per step, the longest chain of
sequential requests (max over agents, or total / threads when threads are fewer than agents),
plus the judging phase (judge calls / threads, then the extraction call); sessions spread over
n_jobs workers (bound = max(longest session, sum of sessions / n_jobs) x latency). It also reports
requests and prompt characters per agent action (BENCHMARKS.md: TinyTroupe 1.67 requests and
~27,500 chars per action), and a cache re-run: server requests and time as a fraction of the
first run. Prints ratios; targets: bound / wall >= 0.8, re-run < 5% of the first run.

    .venv/bin/python benchmarks/runner_scaling.py [--latency 0.05] [--replicates 4]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/fake_openai.py

WORDS = ["solar", "modular", "quiet", "shared", "pocket", "folding", "weekly", "local", "smart", "repair"]
THINGS = ["lamp", "cart", "club", "kit", "map", "stove", "planner", "garden", "locker", "class"]


def reply(body: dict) -> str:
    """Protocol-shaped answers: judge score (logprobs asked), JSON for schema calls, else an action."""
    h = int(hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest(), 16)
    if body.get("logprobs"):
        return f"Score: {h % 10}\nReason: judged by the fake server."
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_schema", "json_object"):
        props = json.dumps(fmt)
        if '"vote"' in props:
            return json.dumps({"vote": 1 + h % 5, "reason": "fake"})
        return json.dumps({"ideas": [{"name": f"{WORDS[(h >> i) % 10]} {THINGS[(h >> (i + 4)) % 10]}",
                                      "description": "fake"} for i in range(4)]})
    return f"TALK: What about a {WORDS[h % 10]} {THINGS[(h // 10) % 10]} for {WORDS[(h // 100) % 10]} people?"


def config(base_url: str, overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "trials" / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["llm=openai", f"llm.base_url={base_url}", "llm.model=fake",
                                           "llm.max_concurrency=64", "llm.max_retries=0", "judge=same",
                                           "run.analyze=false", "run.report=false", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def critical_path(root: Path, threads: int, n_jobs: int) -> tuple[int, int]:
    """(sequential request depth of the whole run for n_jobs workers, total requests)."""
    events = [json.loads(x) for x in (root / "transcript.jsonl").read_text().splitlines()]
    calls = pd.read_parquet(root / "llm_calls.parquet")
    depths = []
    for session, ev in pd.DataFrame(events).groupby("session"):
        acts = ev[ev["kind"] == "action"].groupby(["step", "agent"]).size()
        depth = sum(max(per.max(), math.ceil(per.sum() / threads)) for _, per in acts.groupby(level=0))
        c = calls[calls["session"] == session]
        depth += math.ceil((c["purpose"] == "judge").sum() / threads) + (c["purpose"] == "extract").sum()
        depths.append(int(depth))
    bound = max(max(depths), math.ceil(sum(depths) / n_jobs))
    return bound, len(calls)


def one_run(srv, overrides: list[str], root: Path) -> tuple[float, int, Path]:
    from trials.run.experiment import run_experiment

    before = srv.requests
    t0 = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        code = run_experiment(config(srv.base_url, overrides), root)
    wall = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"run failed ({code}); see {root}/manifest.json")
    return wall, srv.requests - before, root


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--latency", type=float, default=0.1, help="seconds per request (BENCHMARKS.md: 0.1)")
    p.add_argument("--replicates", type=int, default=4)
    p.add_argument("--steps", type=int, default=4)
    args = p.parse_args()
    from fake_openai import FakeOpenAI

    exp = ["experiment=brainstorm_variety", f"run.replicates={args.replicates}", f"experiment.steps={args.steps}",
           "experiment.group_size=3"]
    tmp = Path(tempfile.mkdtemp(prefix="runner_scaling-"))
    rows = []
    with FakeOpenAI(latency=args.latency, reply=reply) as srv:
        for backend, n_jobs, threads in [("threading", 1, 1), ("threading", 1, 4), ("threading", 2, 4),
                                         ("threading", 4, 4), ("loky", 2, 4), ("loky", 4, 4)]:
            root = tmp / f"{backend}-{n_jobs}-{threads}"
            over = [*exp, "cache.mode=off", f"run.backend={backend}", f"run.n_jobs={n_jobs}",
                    f"run.threads_per_session={threads}"]
            # steady state: an untimed run first pays the imports (in this process, or in the loky
            # workers, which joblib then reuses); its wall time is reported as `cold_s`
            cold, _, _ = one_run(srv, over, root.with_name(root.name + "-cold"))
            wall, requests, _ = one_run(srv, over, root)
            depth, calls = critical_path(root, threads, n_jobs)
            bound = depth * args.latency
            rows.append({"backend": backend, "n_jobs": n_jobs, "threads": threads, "requests": requests,
                         "cold_s": round(cold, 2), "wall_s": round(wall, 2), "bound_s": round(bound, 2),
                         "bound/wall": round(bound / wall, 2)})
        calls = pd.read_parquet(tmp / "threading-4-4" / "llm_calls.parquet")
        events = [json.loads(x) for x in (tmp / "threading-4-4" / "transcript.jsonl").read_text().splitlines()]
        actions = sum(e["kind"] == "action" for e in events)
        act = calls[calls["purpose"] == "action"]

    # correction: a judge that always passes, so every action costs 1 action + 1 check request
    passing = lambda body: "Score: 8\nReason: fits." if body.get("logprobs") else reply(body)  # noqa: E731
    with FakeOpenAI(latency=args.latency, reply=passing) as srv2:
        corr_root = tmp / "correction"
        one_run(srv2, ["experiment=brainstorm_correction", "experiment.arms.treatment.interventions=[]",
                      f"run.replicates={args.replicates}", f"experiment.steps={args.steps}",
                      "experiment.group_size=3", "cache.mode=off", "run.backend=threading", "run.n_jobs=4"],
                corr_root)
        cc = pd.read_parquet(corr_root / "llm_calls.parquet").query("arm == 'treatment'")
        cev = [json.loads(x) for x in (corr_root / "transcript.jsonl").read_text().splitlines()]
        c_actions = sum(e["kind"] == "action" and e["arm"] == "treatment" for e in cev)
        attempts = [e for e in cev if e["kind"] == "correction" and e["arm"] == "treatment"]
        first_pass = sum(e["attempt"] == 0 and e["scores"].get("passed") for e in attempts)
        c_calls = cc[cc["purpose"].isin(["action", "correction"])]

    with FakeOpenAI(latency=args.latency, reply=reply) as srv3:  # cache: a first run, then a re-run
        cache = tmp / "cache.sqlite"
        warm = [*exp, f"cache.path={cache}", "run.backend=threading", "run.n_jobs=4", "run.threads_per_session=4"]
        first, req1, _ = one_run(srv3, warm, tmp / "cache-first")
        again, req2, _ = one_run(srv3, warm, tmp / "cache-again")
        same = pd.read_parquet(tmp / "cache-first" / "metrics.parquet").equals(
            pd.read_parquet(tmp / "cache-again" / "metrics.parquet"))

    print(f"fake server latency {args.latency * 1000:.0f} ms/request; brainstorm_variety, 2 arms x "
          f"{args.replicates} replicates, 3 agents, {args.steps} steps; results in {tmp}")
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"requests per agent action: {len(act) / max(1, actions):.2f} (TinyTroupe 1.67, target 1.0)")
    print(f"prompt chars per action request: median {act['prompt_chars'].median():.0f}, "
          f"max {act['prompt_chars'].max():.0f} (TinyTroupe ~27,500, target <= 9,000)")
    print(f"correction on (1 proposition; {first_pass} of {len(attempts)} checks passed first time): "
          f"{len(c_calls) / max(1, c_actions):.2f} requests and "
          f"{c_calls['prompt_chars'].sum() / max(1, c_actions):,.0f} prompt chars per action "
          f"(TinyTroupe 3.67 and ~55,700; target <= 2.0 when the first try passes)")
    seq = rows[0]["wall_s"]
    print(f"cache re-run: {req2} requests (first run {req1}); time {again:.2f} s / {first:.2f} s = "
          f"{again / first:.1%} of the same-settings first run (n_jobs=4, 4 threads), "
          f"{again / seq:.1%} of the sequential first run (target < 5%); identical metrics: {same}")
    worst = min(r["bound/wall"] for r in rows)
    print(f"worst bound/wall {worst:.2f} (target >= 0.80); load average now {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
