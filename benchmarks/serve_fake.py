"""Run tests/fake_openai.py in its own process (so its CPU is not the driver's): prints its base URL,
then serves until stdin closes. Replies are protocol-shaped and a function of the request
(benchmarks/runner_scaling.py `reply`), so two runs with the same seed give the same metrics.

    python benchmarks/serve_fake.py --latency 0.3 [--capacity 64] [--retry-after 0.3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))


def start(latency: float, capacity: int | None = None, retry_after: float = 0.3) -> tuple[subprocess.Popen, str]:
    """Start the server process; returns (process, base_url). Stop it with `proc.stdin.close()`."""
    cmd = [sys.executable, str(HERE / "serve_fake.py"), "--latency", str(latency), "--retry-after", str(retry_after)]
    if capacity:
        cmd += ["--capacity", str(capacity)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def stop(proc: subprocess.Popen) -> dict[str, int]:
    """Stop the server; returns its counters (requests, rejected, max_in_flight)."""
    proc.stdin.close()
    out = proc.stdout.read().split()
    proc.wait(10)
    return {k: int(v) for k, v in (x.split("=") for x in out)}


def main() -> None:
    from fake_openai import FakeOpenAI
    from runner_scaling import reply

    p = argparse.ArgumentParser()
    p.add_argument("--latency", type=float, default=0.3)
    p.add_argument("--capacity", type=int, default=None)
    p.add_argument("--retry-after", type=float, default=0.3)
    a = p.parse_args()
    with FakeOpenAI(latency=a.latency, capacity=a.capacity, retry_after=a.retry_after, reply=reply) as srv:
        print(srv.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
        print(f"requests={srv.requests} rejected={srv.rejected} max_in_flight={srv.max_in_flight}", flush=True)


if __name__ == "__main__":
    main()
