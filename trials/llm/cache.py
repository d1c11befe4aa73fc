"""Content-addressed response cache in SQLite (WAL), safe for several processes writing at once.

Keys come from `base.cache_key` (backend, model, messages, parameters and the mixed seed, so two
replicates never share an entry). Values are the backend's `Completion` as JSON: never the
request headers, never an API key. Modes: `off`, `read_write`, `replay` (a miss raises CacheMiss).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from trials.llm.base import CacheMiss, Completion, Request
from trials.llm.config import _plain

MODES = ("off", "read_write", "replay")
_SCHEMA = "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL)"


def replay_problem(cache: Mapping[str, Any] | None) -> str | None:
    """`cache.mode=replay` with no cache file: every call would miss. The one-line error with its
    fix (commands check it before anything runs), or None."""
    cache = dict(cache or {})
    if cache.get("mode") != "replay" or not cache.get("path") or Path(str(cache["path"])).expanduser().exists():
        return None
    return (f"cache.mode=replay but the cache file {cache['path']} does not exist, so every call would miss; "
            "fix: cache.path=<the cache file the calls were recorded in>, or cache.mode=read_write to make it")


class ResponseCache:
    def __init__(self, path: str | Path, mode: str = "read_write", busy_timeout_s: float = 30.0):
        if mode not in MODES:
            raise ValueError(f"cache.mode must be one of {MODES}, got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()  # one connection per thread (sqlite3 objects are not shared)
        if mode == "replay" and not self.path.exists():
            raise CacheMiss(replay_problem({"mode": mode, "path": self.path}) or "")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._retry(lambda c: c.execute(_SCHEMA))

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            self._retry_raw(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _retry(self, fn) -> Any:
        return self._retry_raw(lambda: fn(self._conn()))

    def _retry_raw(self, fn) -> Any:
        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.01
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as e:  # "database is locked" / "busy" beyond busy_timeout
                if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResponseCache, (self.path, self.mode, self.busy_timeout_s))

    def get(self, key: str, request: Request) -> Completion | None:
        if self.mode == "off":
            return None
        row = self._retry(lambda c: c.execute("SELECT value FROM completions WHERE key=?", (key,)).fetchone())
        if row is None:
            if self.mode == "replay":
                first = request.messages[-1].content[:80] if request.messages else ""
                raise CacheMiss(f"cache.mode=replay: no cached reply for a {request.purpose!r} call "
                                f"(last message starts {first!r}) in {self.path}; run once with "
                                f"cache.mode=read_write to fill it")
            return None
        v = json.loads(row[0])
        probs = {int(k): p for k, p in v["digit_probs"].items()} if v.get("digit_probs") else None
        return Completion(text=v["text"], tokens_in=v["tokens_in"], tokens_out=v["tokens_out"],
                          digit_probs=probs, data=v.get("data"))

    def put(self, key: str, completion: Completion) -> None:
        if self.mode != "read_write":
            return
        value = json.dumps({"text": completion.text, "tokens_in": completion.tokens_in,
                            "tokens_out": completion.tokens_out, "digit_probs": completion.digit_probs,
                            "data": completion.data}, ensure_ascii=False)
        self._retry(lambda c: c.execute("INSERT OR REPLACE INTO completions VALUES (?, ?, ?)",
                                        (key, value, time.time())))

    def snapshot(self) -> bytes:
        """The whole cache as one SQLite database image (for cluster workers without this file)."""
        image = bytearray(self._retry(lambda c: c.serialize()))
        if len(image) >= 20:  # header bytes 18-19: 2 = WAL; an image has no WAL file, so mark it rollback (1)
            image[18] = image[19] = 1
        return bytes(image)

    def entries_since(self, t: float) -> list[tuple[str, str, float]]:
        """(key, value, created) of entries written at or after `t` (epoch seconds)."""
        return self._retry(lambda c: c.execute(
            "SELECT key, value, created FROM completions WHERE created >= ?", (t,)).fetchall())

    def merge(self, rows: list[tuple[str, str, float]]) -> None:
        """Add entries made elsewhere (a worker's copy); an existing key is kept (same content)."""
        if self.mode == "read_write" and rows:
            self._retry(lambda c: c.executemany("INSERT OR IGNORE INTO completions VALUES (?, ?, ?)", rows))

    @classmethod
    def from_snapshot(cls, image: bytes, mode: str, path: str | Path) -> "ResponseCache":
        """A cache at `path` (worker-local) starting as `image`; made once, safely for several
        threads and processes (the first `os.link` wins; a file in use is never replaced)."""
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
            mem, disk = sqlite3.connect(":memory:"), sqlite3.connect(tmp)
            mem.deserialize(image)
            mem.backup(disk)
            disk.close()
            mem.close()
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return cls(path, mode)

    def __len__(self) -> int:
        return self._retry(lambda c: c.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def build_cache(cfg: Mapping[str, Any] | None) -> ResponseCache | None:
    """`{"path": ..., "mode": "off"|"read_write"|"replay"}` -> a cache, or None when off/absent."""
    if not cfg:
        return None
    cfg = _plain(cfg)
    unknown = set(cfg) - {"path", "mode", "busy_timeout_s"}
    if unknown:
        raise ValueError(f"cache: unknown keys {sorted(unknown)}; allowed: path, mode, busy_timeout_s")
    mode = cfg.get("mode", "read_write")
    if mode == "off":
        return None
    if not cfg.get("path"):
        raise ValueError(f"cache.path is required when cache.mode={mode!r} (e.g. cache.path=.cache/llm.sqlite)")
    return ResponseCache(cfg["path"], mode, float(cfg.get("busy_timeout_s", 30.0)))
