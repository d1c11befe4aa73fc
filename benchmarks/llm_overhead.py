"""The LLM layer's own cost, measured in one run and printed as ratios.

1. per-call overhead of `LLM.chat` over calling the scripted backend directly (target < 1 ms);
2. against tests/fake_openai.py with a fixed latency: our wall time / ideal (calls x latency), and
   our per-call overhead over the bare transport (one pycurl POST; the `openai` SDK's call is
   printed too when it is installed; connections reused: count printed);
3. local tokens/s through our layer vs calling llama-cpp-python directly on the same model,
   prompt and max_tokens (target >= 90%). Runs are interleaved and medians taken, because the
   machine is shared.

    .venv/bin/python benchmarks/llm_overhead.py [--calls 2000] [--http-calls 40] [--latency 0.1]
                                                [--local-tokens 64] [--local-rounds 7] [--no-local]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # fake_openai lives with the tests
sys.path.insert(0, str(ROOT))

from fake_openai import FakeOpenAI  # noqa: E402

from trials.llm import CallRecorder, Request, ScriptedBackend, build_llm  # noqa: E402
from trials.llm.base import Message  # noqa: E402

MSG = [{"role": "system", "content": "You are Ana, a pragmatic engineer."},
       {"role": "user", "content": "Propose one product idea in a sentence."}]


def bench_scripted(n: int) -> None:
    backend = ScriptedBackend()
    msgs = tuple(Message(m["role"], m["content"]) for m in MSG)
    t0 = time.perf_counter()
    for i in range(n):
        backend.complete(Request(messages=msgs, seed=i, protocol="action"))
    direct = time.perf_counter() - t0
    llm = build_llm({"backend": "scripted"}).bind(seed=None, recorder=CallRecorder())
    t0 = time.perf_counter()
    for i in range(n):
        llm.chat(MSG, seed=i, protocol="action")
    ours = time.perf_counter() - t0
    per_call_ms = (ours - direct) / n * 1000
    print(f"[scripted] {n} calls: direct {direct / n * 1e6:.1f} us/call, via LLM.chat {ours / n * 1e6:.1f} us/call "
          f"-> layer overhead {per_call_ms:.3f} ms/call (target < 1 ms: {'OK' if per_call_ms < 1 else 'MISSED'})")


def bench_http(n: int, latency: float) -> None:
    """Ours (`LLM.chat` on the openai backend) against the bare transport it uses: one `pycurl`
    POST of the same body on a kept-alive handle, with the JSON parsed (and the `openai` SDK's call,
    when installed, for reference)."""
    import io
    import json

    import pycurl

    try:
        import openai
    except ImportError:
        openai = None
    with FakeOpenAI(latency=latency) as srv:
        curl = pycurl.Curl()
        curl.setopt(pycurl.URL, srv.base_url + "/chat/completions")
        curl.setopt(pycurl.HTTPHEADER, ["Content-Type: application/json", "Authorization: Bearer sk-bench"])

        def raw(i: int) -> str:
            body = {"model": "fake", "messages": MSG, "seed": i, "temperature": 0.7, "max_tokens": 256}
            out = io.BytesIO()
            curl.setopt(pycurl.POSTFIELDS, json.dumps(body).encode())
            curl.setopt(pycurl.WRITEDATA, out)
            curl.perform()
            return json.loads(out.getvalue())["choices"][0]["message"]["content"]

        sdk = openai.OpenAI(base_url=srv.base_url, api_key="sk-bench", max_retries=0) if openai else None
        llm = build_llm({"backend": "openai", "base_url": srv.base_url, "model": "fake", "max_retries": 0},
                        prices={}).bind(seed=0, recorder=CallRecorder())
        for i in range(3):  # warm every connection pool
            raw(i)
            llm.chat(MSG)
            if sdk:
                sdk.chat.completions.create(model="fake", messages=MSG)
        conns_before = srv.connections
        raws, ours, sdks = [], [], []
        for i in range(n):  # interleaved so that machine noise hits all alike
            t0 = time.perf_counter()
            raw(i)
            raws.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            llm.chat(MSG, seed=i)
            ours.append(time.perf_counter() - t0)
            if sdk:
                t0 = time.perf_counter()
                sdk.chat.completions.create(model="fake", messages=MSG, seed=i, temperature=0.7, max_tokens=256)
                sdks.append(time.perf_counter() - t0)
        new_conns = srv.connections - conns_before
    ideal = n * latency
    if ideal > 0:
        print(f"[fake server, {latency * 1000:.0f} ms latency] {n} sequential calls: our wall {sum(ours):.3f} s, "
              f"ideal {ideal:.3f} s -> wall/ideal {sum(ours) / ideal:.3f}; bare pycurl wall/ideal {sum(raws) / ideal:.3f}")
    over = statistics.median(ours) - statistics.median(raws)
    verdict = f" (target < 1 ms: {'OK' if over < 1e-3 else 'MISSED'})" if latency == 0 else " (noisy at this latency)"
    sdk_note = f"; the openai SDK's call {statistics.median(sdks) * 1000:.2f} ms" if sdks else ""
    print(f"[fake server, {latency * 1000:.0f} ms] median per call: bare pycurl POST {statistics.median(raws) * 1000:.2f} ms, "
          f"ours {statistics.median(ours) * 1000:.2f} ms -> layer overhead {over * 1000:.3f} ms/call{verdict}{sdk_note}; "
          f"new TCP connections during the run (ours + bare{' + SDK' if sdks else ''}): {new_conns}")


LOCAL_MSG = [{"role": "system", "content": "You are Ana, a pragmatic engineer from Porto."},
             {"role": "user", "content": "Describe your ideal workday in a paragraph of about 80 words."}]


def bench_local(max_tokens: int, rounds: int) -> None:
    from trials.llm.local_backend import default_model_path, load_llama

    llm = build_llm({"backend": "local", "max_tokens": max_tokens, "temperature": 0.0, "n_threads": 1})
    llama, lock = load_llama(default_model_path(), 2048, 1)  # the very same loaded model and threads
    view = llm.bind(seed=0, recorder=CallRecorder())
    view.chat(LOCAL_MSG)  # warm-up
    direct, ours = [], []  # (tokens, seconds) per round
    for _ in range(rounds):  # interleaved: machine noise hits both alike
        t0 = time.perf_counter()
        with lock:
            out = llama.create_chat_completion(LOCAL_MSG, max_tokens=max_tokens, temperature=0.0, seed=0)
        direct.append((out["usage"]["completion_tokens"], time.perf_counter() - t0))
        t0 = time.perf_counter()
        r = view.chat(LOCAL_MSG)
        ours.append((r.usage.tokens_out, time.perf_counter() - t0))
    for label, pick in (("best round", max), ("median round", statistics.median)):
        d = pick(n / s for n, s in direct)
        o = pick(n / s for n, s in ours)
        print(f"[local] {llm.model}, {direct[0][0]}/{ours[0][0]} tokens (direct/ours), {rounds} interleaved rounds, "
              f"{label}: llama-cpp-python direct {d:.1f} tok/s, via LLM.chat {o:.1f} tok/s -> {o / d:.1%} of raw "
              f"(target >= 90%: {'OK' if o / d >= 0.9 else 'MISSED'})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--http-calls", type=int, default=40)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--local-tokens", type=int, default=64)
    ap.add_argument("--local-rounds", type=int, default=7)
    ap.add_argument("--no-local", action="store_true")
    a = ap.parse_args(argv)
    bench_scripted(a.calls)
    bench_http(max(200, a.http_calls), 0.0)
    bench_http(a.http_calls, a.latency)
    if not a.no_local:
        bench_local(a.local_tokens, a.local_rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
