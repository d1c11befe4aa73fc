"""The run directory (DESIGN.md "The run directory is the contract"): per-job folders written
atomically, failure records, the execution log, and the run-level tables collected from the jobs.

Layout of one job folder `jobs/<arm>/<replicate>/`: events.jsonl, metrics.parquet,
llm_calls.parquet, job.json. The folder appears by `os.rename` of a finished temp folder, so its
presence means the job is done; a killed job leaves only a `.tmp-*` folder, removed on resume.
While a session runs, each of its LLM calls is appended to `jobs/<arm>/inflight/<replicate>-<attempt>.jsonl`
(a "started" line before the request is sent, its row once it returns: a write-ahead journal);
a session that never finishes leaves that journal, turned into `failed-calls/` rows (`recover_calls`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from trials.llm.usage import token_totals, total_cost
METRIC_COLUMNS: dict[str, str] = {
    "experiment": "string", "arm": "string", "replicate": "int64", "session": "string",
    "agent": "string", "metric": "string", "value": "float64", "scale": "string",
    "level": "string", "judge_model": "string", "missing_reason": "string",
    "judge_k": "int64", "judge_sd": "float64", "missing_detail": "string", "flag": "string",
}
CALL_COLUMNS: dict[str, str] = {
    "arm": "string", "replicate": "int64", "session": "string", "purpose": "string",
    "backend": "string", "model": "string", "tokens_in": "Int64", "tokens_out": "Int64",
    "latency_s": "float64", "cached": "bool", "retries": "int64", "cost_usd": "float64",
    "prompt_chars": "int64", "error": "string", "job_status": "string", "unknown_billing_attempts": "int64",
}


def tidy(rows: Iterable[dict[str, Any]] | pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """A frame with exactly `columns` (in order) and their dtypes; missing optional columns
    get neutral defaults so every job's table concatenates cleanly."""
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    # "Int64" (nullable): a count that may be unknown (tokens of a call cut off mid-request), NA not 0
    defaults = {"string": "", "int64": 0, "Int64": pd.NA, "float64": math.nan, "bool": False}
    for col, dtype in columns.items():
        if col not in df.columns:
            df[col] = defaults[dtype] if col not in ("judge_k",) else 1
        if dtype == "string":
            df[col] = df[col].fillna("").astype(str)
        elif dtype == "int64":
            df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype("int64")
        elif dtype == "Int64":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
        elif dtype == "float64":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        else:
            df[col] = df[col].fillna(False).astype(bool)
    extra = [c for c in df.columns if c not in columns]
    return df[list(columns) + extra].reset_index(drop=True)


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line; O_APPEND keeps lines whole across threads and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, default=str, ensure_ascii=False) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class Journal:
    """An append-only JSON-lines file kept open while a session runs (`append_line` per record
    would open, and check the folder, on every LLM call); O_APPEND keeps lines whole across threads."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, record: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode())

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """The whole lines of a JSON-lines file (a line cut by a kill mid-write is skipped)."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def journal_rows(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The call rows of one attempt's calls journal (its lines: a "started" line before each
    request, the call's row, with its number under "call", once it returns): each finished call's
    row, and for each call started but never finished (the process died mid-request, which may have
    been sent and billed) a row with error "interrupted mid-call", tokens unknown (None: NA in the
    calls table) and cost unknown (NaN) on a priced backend. Also used for the lines a Dask worker
    streams (engines)."""
    from trials.llm.usage import FREE_BACKENDS

    finished = {line.get("call") for line in lines if "started" not in line}
    rows = []
    for line in lines:
        if "started" not in line:
            rows.append({k: v for k, v in line.items() if k != "call"})
        elif line["started"] not in finished:
            rows.append({**{k: v for k, v in line.items() if k != "started"}, "tokens_in": None, "tokens_out": None,
                         "cached": False, "retries": 0, "latency_s": math.nan, "error": "interrupted mid-call",
                         "cost_usd": 0.0 if line.get("backend") in FREE_BACKENDS else math.nan})
    return rows


def _strict(data: Any) -> Any:
    """`data` with NaN / inf floats as None: job.json and failed.json are strict JSON (null = unknown)."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _strict(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_strict(v) for v in data]
    return data


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(_strict(data), indent=2, default=str, ensure_ascii=False, allow_nan=False) + "\n")


def _write_json_atomic(path: Path, data: Any) -> None:
    """Write `path` via a temp file and `os.replace`: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    _write_json(tmp, data)
    os.replace(tmp, path)


class RunDir:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.jobs = self.root / "jobs"

    # ------------------------------------------------------------------ per job
    def job_dir(self, arm: str, replicate: int) -> Path:
        return self.jobs / arm / str(replicate)

    def failed_path(self, arm: str, replicate: int) -> Path:
        return self.jobs / arm / f"{replicate}.failed.json"

    def is_done(self, arm: str, replicate: int) -> bool:
        return (self.job_dir(arm, replicate) / "job.json").is_file()

    def log_execution(self, arm: str, replicate: int, event: str) -> None:
        """Append one line per job start/finish; O_APPEND keeps lines whole across processes."""
        append_line(self.jobs / "executions.jsonl", {"t": time.time(), "pid": os.getpid(), "arm": arm,
                                                      "replicate": replicate, "event": event})

    def calls_journal(self, arm: str, replicate: int, attempt: str) -> Path:
        """Where a running session appends each LLM call as it is made (`append_line`), so a
        session that never finishes (Ctrl-C, SIGTERM, a killed worker) still has its calls
        recorded (`recover_calls`); removed once its job folder or failure record is written."""
        return self.jobs / arm / "inflight" / f"{replicate}-{attempt}.jsonl"

    def write_job(self, arm: str, replicate: int, *, events: list[dict], metrics: pd.DataFrame,
                  calls: pd.DataFrame, meta: dict[str, Any], remeasure: list[dict] | None = None) -> Path:
        final = self.job_dir(arm, replicate)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{replicate}-{os.getpid()}-{time.monotonic_ns()}"
        tmp.mkdir()
        with open(tmp / "events.jsonl", "w") as fh:
            for e in events:
                fh.write(json.dumps(e, default=str, ensure_ascii=False) + "\n")
        tidy(metrics, METRIC_COLUMNS).to_parquet(tmp / "metrics.parquet", index=False)
        tidy(calls, CALL_COLUMNS).to_parquet(tmp / "llm_calls.parquet", index=False)
        if remeasure:  # measurements whose call failed: repeated on resume (trials.run.remeasure)
            with open(tmp / "remeasure.jsonl", "w") as fh:
                for spec in remeasure:
                    fh.write(json.dumps(spec, default=str, ensure_ascii=False) + "\n")
        _write_json(tmp / "job.json", meta)
        os.rename(tmp, final)  # atomic on one filesystem; fails if a copy already exists
        self.failed_path(arm, replicate).unlink(missing_ok=True)
        return final

    def write_failure(self, arm: str, replicate: int, meta: dict[str, Any]) -> None:
        path = self.failed_path(arm, replicate)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(path, meta)

    def write_failed_calls(self, arm: str, replicate: int, calls: pd.DataFrame, status: str = "failed",
                           attempt: str | None = None) -> None:
        """Keep the calls of a failed or interrupted attempt (they were sent and may have cost
        money), even after a resume finishes the job: `jobs/<arm>/failed-calls/<replicate>-<attempt
        or ns>.parquet`, every row with job_status `status`."""
        folder = self.jobs / arm / "failed-calls"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{replicate}-{os.getpid()}-{time.monotonic_ns()}.parquet"
        tidy(calls.assign(job_status=status), CALL_COLUMNS).to_parquet(tmp, index=False)
        os.replace(tmp, folder / f"{replicate}-{attempt or time.time_ns()}.parquet")

    def recover_calls(self) -> dict[tuple[str, int], int]:
        """The call journals of sessions that never finished (`calls_journal`) become failed-calls
        files with job_status "interrupted", and their jobs get an "interrupted" failure record (a
        resume reruns them). A journal whose attempt did finish (killed between writing its result
        and removing the journal) is just removed. Call only when no session of this run is
        running. Returns {(arm, replicate): calls recovered}."""
        out: dict[tuple[str, int], int] = {}
        for path in sorted(self.jobs.glob("*/inflight/*.jsonl")):
            arm, (rep, _, attempt) = path.parent.parent.name, path.stem.partition("-")
            replicate = int(rep)
            meta = self.read_job_meta(arm, replicate) or {}
            finished = (self.is_done(arm, replicate) and meta.get("attempt") == attempt) or \
                (self.jobs / arm / "failed-calls" / f"{path.stem}.parquet").is_file()
            rows = [] if finished else journal_rows(_json_lines(path))
            if rows:
                self.write_interrupted(arm, replicate, pd.DataFrame(rows), attempt)
                out[(arm, replicate)] = out.get((arm, replicate), 0) + len(rows)
            path.unlink()
        return out

    def write_interrupted(self, arm: str, replicate: int, calls: pd.DataFrame, attempt: str | None = None) -> None:
        """An attempt the run stopped midway: its calls (job_status "interrupted") and, unless the
        job is done, an "interrupted" failure record (a resume reruns the job)."""
        self.write_failed_calls(arm, replicate, calls, "interrupted", attempt)
        if not self.is_done(arm, replicate):
            session = str(calls["session"].iloc[0]) if "session" in calls.columns and len(calls) else ""
            self.write_failure(arm, replicate, {
                "arm": arm, "replicate": replicate, "session": session, "status": "interrupted",
                "calls": int(len(calls)),
                "error": f"interrupted: the run stopped while this session ran; its {len(calls)} LLM "
                         f"call(s) are kept in jobs/{arm}/failed-calls/ (job_status interrupted)"})

    def attempt_costs(self) -> list[tuple[float, bool]]:
        """One (known cost, cost unknown?) per job attempt recorded in this run directory (done,
        failed and interrupted): the sum of its calls' known costs, and whether any call's cost is
        unknown (NaN: no usage reported, cut off mid-request) or an attempt may have been billed
        (`unknown_billing_attempts`). A resume's budget counts them (trials.run.budget.Budget.count_earlier)."""
        out = []
        for f in [*self.jobs.glob("*/*/llm_calls.parquet"), *self.jobs.glob("*/failed-calls/*.parquet")]:
            calls = tidy(pd.read_parquet(f), CALL_COLUMNS)
            unknown = bool(calls["cost_usd"].isna().any()) or int(calls["unknown_billing_attempts"].sum()) > 0
            out.append((float(calls["cost_usd"].sum(skipna=True)), unknown))
        return out

    def read_job_meta(self, arm: str, replicate: int) -> dict[str, Any] | None:
        for p in (self.job_dir(arm, replicate) / "job.json", self.failed_path(arm, replicate)):
            if p.is_file():
                return json.loads(p.read_text())
        return None

    def clean_stale(self) -> int:
        """Remove temp folders left by killed workers (resume)."""
        n = 0
        for tmp in [*self.jobs.glob("*/.tmp-*"), *self.jobs.glob("*/failed-calls/.tmp-*")]:
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
            n += 1
        return n

    def executions(self) -> list[dict[str, Any]]:
        path = self.jobs / "executions.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # ------------------------------------------------------------------ run level
    def collect(self, done: list[tuple[str, int]], extra_metrics: pd.DataFrame | None = None) -> dict[str, Any]:
        """Concatenate finished jobs (in arm/replicate order) into the run-level files;
        `extra_metrics` (the rows of failed sessions, trials.run.delivery) are appended."""
        metrics, calls = [], []
        steering: dict[str, dict[str, int]] = {}  # arm -> interventions fired, correction attempts
        with open(self.root / "transcript.jsonl", "w") as out:
            for arm, rep in sorted(done):
                d = self.job_dir(arm, rep)
                metrics.append(pd.read_parquet(d / "metrics.parquet"))
                calls.append(pd.read_parquet(d / "llm_calls.parquet").assign(job_status="done"))
                text = (d / "events.jsonl").read_text()
                out.write(text)
                counts = steering.setdefault(arm, {"interventions": 0, "correction_attempts": 0})
                counts["interventions"] += text.count('"kind": "intervention"')
                counts["correction_attempts"] += text.count('"kind": "correction"')
        # calls of failed attempts (every request sent is recorded, with its job's status)
        calls += [pd.read_parquet(f) for f in sorted(self.jobs.glob("*/failed-calls/*.parquet"))]
        if extra_metrics is not None and len(extra_metrics):
            metrics.append(extra_metrics)
        m = tidy(pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame(), METRIC_COLUMNS)
        c = tidy(pd.concat(calls, ignore_index=True) if calls else pd.DataFrame(), CALL_COLUMNS)
        m.to_parquet(self.root / "metrics.parquet", index=False)
        m.to_csv(self.root / "metrics.csv", index=False)
        c.to_parquet(self.root / "llm_calls.parquet", index=False)
        cost = total_cost(c["cost_usd"])
        models = {p: sorted(set(c.loc[c["purpose"] == p, "model"])) for p in sorted(set(c["purpose"]))}
        sent = c.loc[~c["cached"]]
        return {"calls": int(len(c)), "requests": int((~c["cached"]).sum()) if len(c) else 0,
                # HTTP requests (or local generations) sent: every retry is one more
                "requests_sent": int((1 + sent["retries"]).sum()) if len(sent) else 0,
                "calls_failed_jobs": int((c["job_status"] == "failed").sum()) if len(c) else 0,
                "calls_interrupted_jobs": int((c["job_status"] == "interrupted").sum()) if len(c) else 0,
                **token_totals(c),
                "cost_usd": None if math.isnan(cost) else cost, "models": models,
                "steering": steering}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        _write_json_atomic(self.root / "manifest.json", manifest)


def load_events(run_dir: str | Path) -> pd.DataFrame:
    """Every event of a run directory as a DataFrame, one row per event (transcript.jsonl, or the
    finished job folders when the run was never collected): arm, replicate, session, step, agent,
    kind, type, content, target, attempt, ... and the event's `scores` flattened into
    `score_<key>` columns (a list of scores becomes "; "-joined text). Raises FileNotFoundError
    naming the folder when it holds no events."""
    root = Path(run_dir)
    files = [root / "transcript.jsonl"] if (root / "transcript.jsonl").is_file() else \
        sorted(root.glob("jobs/*/*/events.jsonl"))
    if not files:
        raise FileNotFoundError(f"{root}: no transcript.jsonl or jobs/*/*/events.jsonl; give the "
                                "directory `trials run` printed as its run directory")
    rows = []
    for path in files:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            event = json.loads(line)
            scores = event.pop("scores", None) or {}
            for key, value in (scores.items() if isinstance(scores, dict) else []):
                if isinstance(value, list):
                    value = "; ".join(str(v) for v in value)
                elif isinstance(value, dict):
                    value = json.dumps(value, sort_keys=True)
                event[f"score_{key}"] = value
            rows.append(event)
    return pd.DataFrame(rows)
