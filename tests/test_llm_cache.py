"""The SQLite cache: modes off / read_write / replay, replicate seeds, concurrent processes."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from trials.llm import CacheMiss, CallRecorder, build_llm

MSG = [{"role": "user", "content": "Pitch an idea for commuters."}]


def make(path, mode, seed=0, rules=()):
    llm = build_llm({"backend": "scripted", "rules": list(rules)}, cache={"path": str(path), "mode": mode})
    return llm.bind(seed=seed, recorder=CallRecorder())


def rows(path):
    with sqlite3.connect(path) as c:
        return c.execute("SELECT COUNT(*) FROM completions").fetchone()[0]


def test_read_write_stores_then_hits_and_is_marked_cached(tmp_path):
    db = tmp_path / "c.sqlite"
    first = make(db, "read_write").chat(MSG)
    # a rule that would change the answer proves the second reply comes from the cache
    again = make(db, "read_write", rules=[{"match": ".", "reply": "NOT CACHED"}]).chat(MSG)
    assert again.text == first.text and again.usage.cached and not first.usage.cached
    assert again.usage.cost_usd == 0.0 and rows(db) == 1


def test_two_replicate_seeds_make_two_entries(tmp_path):
    db = tmp_path / "c.sqlite"
    make(db, "read_write", seed=0).chat(MSG)
    make(db, "read_write", seed=1).chat(MSG)
    make(db, "read_write", seed=1).chat(MSG)
    assert rows(db) == 2


def test_off_mode_neither_reads_nor_writes(tmp_path):
    db = tmp_path / "c.sqlite"
    make(db, "read_write").chat(MSG)
    r = make(db, "off", rules=[{"match": ".", "reply": "fresh"}]).chat(MSG)
    assert r.text == "fresh" and not r.usage.cached


def test_replay_hits_and_a_miss_names_the_call(tmp_path):
    db = tmp_path / "c.sqlite"
    make(db, "read_write").chat(MSG, purpose="action")
    assert make(db, "replay").chat(MSG, purpose="action").usage.cached
    with pytest.raises(CacheMiss, match=r"'judge' call.*Rate this answer"):
        make(db, "replay").chat([{"role": "user", "content": "Rate this answer"}], purpose="judge")
    assert rows(db) == 1  # replay never writes
    with pytest.raises(CacheMiss, match="does not exist"):
        make(tmp_path / "none.sqlite", "replay")


def test_bad_cache_config_is_explained(tmp_path):
    with pytest.raises(ValueError, match="cache.path is required"):
        build_llm({"backend": "scripted"}, cache={"mode": "read_write"})
    with pytest.raises(ValueError, match="cache.mode must be one of"):
        build_llm({"backend": "scripted"}, cache={"path": str(tmp_path / "x"), "mode": "rw"})


def _writer(db: str, worker: int, n: int, ready, go) -> None:
    llm = make(db, "read_write", seed=worker)
    ready.release()
    go.wait(30)  # both processes start writing at the same moment
    for i in range(n):
        llm.chat(MSG, seed=i)


def test_two_processes_writing_at_once(tmp_path):
    db = str(tmp_path / "c.sqlite")
    ctx = mp.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    procs = [ctx.Process(target=_writer, args=(db, w, 300, ready, go)) for w in (1, 2)]
    [p.start() for p in procs]
    ready.acquire(timeout=30), ready.acquire(timeout=30)
    go.set()
    [p.join(60) for p in procs]
    assert [p.exitcode for p in procs] == [0, 0]
    assert rows(db) == 600
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
