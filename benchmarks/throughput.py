"""Throughput of the default settings against a rate-limited endpoint, and our CPU per request.

1. The paper-size `brainstorm_correction` (48 sessions) against a loopback OpenAI-compatible server
   (its own process) with 300 ms latency that allows 64 requests in flight (429 beyond, Retry-After
   one latency), with DEFAULT run settings (no n_jobs/backend/max_concurrency flags):
   wall / max(one session alone, requests x latency / 64)  (target <= 1.3).
2. The same against the server without a limit: wall / one session alone (target <= 1.3).
   "One session alone" = the longest session of run 2 (by duration), rerun by itself.
3. CPU ms per request (this process's CPU time / requests) at 0 ms latency, on the openai
   backend (server in its own process) and on the scripted backend (target <= 1.5 ms).

    python benchmarks/throughput.py [--latency 0.3] [--capacity 64] [--size paper] [--skip-limit] [--cpu-only]
"""

from __future__ import annotations

import argparse
import io
import os
import json
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import serve_fake  # noqa: E402


def config(overrides: list[str]) -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(HERE.parent / "trials" / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def experiment(size: str, url: str | None) -> list[str]:
    llm = ["llm=openai", f"llm.base_url={url}", "llm.model=fake", "judge=same"] if url else ["llm=scripted", "judge=same"]
    return ["experiment=brainstorm_correction", f"experiment.size={size}", *llm, "cache.mode=off",
            "run.analyze=false", "run.report=false"]


def timed_run(overrides: list[str], root: Path) -> tuple[float, float, dict]:
    """(wall s, CPU s of this process, manifest)."""
    from trials.run.experiment import run_experiment

    t0, c0 = time.perf_counter(), time.process_time()
    with redirect_stdout(io.StringIO()):
        code = run_experiment(config(overrides), root)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    manifest = json.loads((root / "manifest.json").read_text())
    if code != 0:
        raise SystemExit(f"run failed ({code}): {root}/manifest.json")
    return wall, cpu, manifest


def one_session(overrides: list[str], root: Path, arm: str, replicate: int) -> float:
    """Wall time of one job run by itself (same config, nothing else running)."""
    from trials.run.jobs import run_job
    from trials.run.plan import build_plan

    job = next(j for j in build_plan(config(overrides), root).jobs if (j.arm, j.replicate) == (arm, replicate))
    t0 = time.perf_counter()
    result = run_job(job)
    assert result["summary"]["status"] == "done", result.get("traceback")
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--latency", type=float, default=0.3)
    p.add_argument("--capacity", type=int, default=64)
    p.add_argument("--size", default="paper")
    p.add_argument("--skip-limit", action="store_true", help="only the no-limit and CPU cases")
    p.add_argument("--cpu-only", action="store_true", help="only the CPU-per-request cases (3.)")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="throughput-"))
    print(f"brainstorm_correction size={a.size}, server latency {a.latency * 1000:.0f} ms; results in {tmp}; "
          f"load average (1, 5, 15 min) at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    # warm-up: imports and the first client, not part of any figure
    proc, url = serve_fake.start(0.0)
    timed_run(experiment("small", url), tmp / "warmup")
    serve_fake.stop(proc)

    if not a.cpu_only:
        run_latency_cases(a, tmp)
    cpu_cases(a, tmp)
    print(f"load average (1, 5, 15 min) at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def run_latency_cases(a: argparse.Namespace, tmp: Path) -> None:
    # 2. no limit (first: it names the longest session)
    proc, url = serve_fake.start(a.latency)
    wall2, cpu2, man2 = timed_run(experiment(a.size, url), tmp / "nolimit")
    longest = max(man2["jobs"], key=lambda j: j["duration_s"] or 0)
    alone = one_session(experiment(a.size, url), tmp / "alone", longest["arm"], longest["replicate"])
    srv2 = serve_fake.stop(proc)
    print(f"one session alone ({longest['session']}): {alone:.1f} s; requests per run: {man2['totals']['requests']}")
    print(f"no limit:  wall {wall2:.1f} s, peak in flight {srv2['max_in_flight']}; "
          f"wall / one session alone = {wall2 / alone:.2f} (target <= 1.3); "
          f"driver CPU {1000 * cpu2 / man2['totals']['requests']:.2f} ms/request")

    # 1. a provider limit of `capacity` in flight
    if not a.skip_limit:
        proc, url = serve_fake.start(a.latency, a.capacity, retry_after=a.latency)
        wall1, cpu1, man1 = timed_run(experiment(a.size, url), tmp / "limit")
        srv1 = serve_fake.stop(proc)
        n = man1["totals"]["requests"]
        bound = max(alone, n * a.latency / a.capacity)
        print(f"limit {a.capacity}: wall {wall1:.1f} s, {n} requests ({srv1['rejected']} answered 429, "
              f"peak in flight {srv1['max_in_flight']}); bound max({alone:.1f}, {n} x {a.latency} / "
              f"{a.capacity} = {n * a.latency / a.capacity:.1f}) = {bound:.1f} s; wall / bound = {wall1 / bound:.2f} "
              f"(target <= 1.3)")


def cpu_cases(a: argparse.Namespace, tmp: Path) -> None:
    # 3. CPU per request at 0 ms latency
    import resource

    proc, url = serve_fake.start(0.0)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    wall3, cpu3, man3 = timed_run(experiment(a.size, url), tmp / "cpu-openai")
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    serve_fake.stop(proc)
    n3 = man3["totals"]["requests"]
    print(f"CPU per request, openai backend, 0 ms: {1000 * cpu3 / n3:.2f} ms ({n3} requests, "
          f"{cpu3:.1f} s CPU in {wall3:.1f} s: user {1000 * (r1.ru_utime - r0.ru_utime) / n3:.2f} + system "
          f"{1000 * (r1.ru_stime - r0.ru_stime) / n3:.2f} ms, {(r1.ru_nvcsw - r0.ru_nvcsw) / n3:.1f} context "
          f"switches per request; target <= 1.5)")
    wall4, cpu4, man4 = timed_run(experiment(a.size, None), tmp / "cpu-scripted")
    n4 = man4["totals"]["requests"]
    print(f"CPU per request, scripted backend: {1000 * cpu4 / n4:.2f} ms ({n4} requests, {cpu4:.1f} s CPU)")


if __name__ == "__main__":
    raise SystemExit(main())
