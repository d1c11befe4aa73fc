"""`respondents.csv` for a market-research run: one row per respondent (arm, replicate, session,
agent, persona attributes, answer, vote, reason, missing_reason).

It lives on the trials side because the persona attributes are in the plan's jobs, not in the run
directory; answers, votes and reasons come from the finished run's transcript.jsonl (the agent's
TALK and THINK actions, thoughts marked "(thinks)", and the `judge`/`vote` event the scenario records per agent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

COLUMNS = ["arm", "replicate", "session", "agent", "age", "gender", "nationality", "residence", "education",
           "occupation", "answer", "vote", "reason", "missing_reason"]


def _persona_attrs(p: dict[str, Any]) -> dict[str, Any]:
    occ = p.get("occupation") or {}
    return {"age": p.get("age"), "gender": p.get("gender"), "nationality": p.get("nationality"),
            "residence": p.get("residence"), "education": p.get("education"),
            "occupation": occ.get("title") if isinstance(occ, dict) else occ}


def respondents(events: Iterable[dict[str, Any]], jobs: Iterable[Any]) -> pd.DataFrame:
    """The respondents table from transcript events and the plan's jobs (arm, replicate, session,
    personas as dicts). Every persona of a finished session is a row; a missing vote keeps its reason."""
    answers: dict[tuple[str, str], list[str]] = {}
    votes: dict[tuple[str, str], dict[str, Any]] = {}
    for ev in events:
        who = (str(ev.get("session")), str(ev.get("agent")))
        if ev.get("kind") == "action" and ev.get("type") in ("TALK", "THINK") and ev.get("content"):
            prefix = "(thinks) " if ev["type"] == "THINK" else ""  # the vote is read from both
            answers.setdefault(who, []).append(prefix + str(ev["content"]))
        elif ev.get("kind") == "judge" and ev.get("type") == "vote":
            votes[who] = ev
    sessions = {s for s, _ in answers} | {s for s, _ in votes}
    rows = []
    for job in jobs:
        if job.session not in sessions:
            continue  # failed or not run: no respondents to report
        for p in job.personas:
            who = (job.session, str(p.get("name")))
            vote_ev = votes.get(who) or {}
            vote = (vote_ev.get("scores") or {}).get("vote")
            rows.append({"arm": job.arm, "replicate": job.replicate, "session": job.session, "agent": who[1],
                         **_persona_attrs(p), "answer": " ".join(answers.get(who, [])),
                         "vote": vote, "reason": vote_ev.get("content") if vote is not None else "",
                         "missing_reason": "" if vote is not None else
                         (vote_ev.get("content") or "no vote recorded for this agent")})
    return pd.DataFrame(rows, columns=COLUMNS)


def write_respondents(root: Path, jobs: Iterable[Any]) -> Path | None:
    """Writes `<root>/respondents.csv` from `<root>/transcript.jsonl`; None when there is no transcript."""
    path = root / "transcript.jsonl"
    if not path.exists():
        return None
    events = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    out = root / "respondents.csv"
    respondents(events, jobs).to_csv(out, index=False)
    return out
