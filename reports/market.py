"""The respondents section of a market-research run, from `respondents.csv` (one row per
respondent: arm, replicate, agent, persona attributes, answer, vote, reason): the vote
distribution per arm and a few quoted reasons per vote level."""

from __future__ import annotations

import pandas as pd

from analysis.io import read_csv_labels
from reports import fmt
from reports.document import Block, Excerpt, Para, Table

QUOTES_PER_LEVEL = 2
MAX_QUOTE = 240


def _quote(text: object) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1].rstrip() + "…"


def vote_distribution(resp: pd.DataFrame) -> pd.DataFrame:
    """Per arm: respondents, votes recorded, count and share of each vote level, mean vote."""
    rows = []
    levels = sorted(resp["vote"].dropna().unique())
    for arm, sub in resp.groupby("arm", sort=False):
        votes = sub["vote"].dropna()
        row = {"arm": arm, "respondents": len(sub), "votes": len(votes)}
        for level in levels:
            k = int((votes == level).sum())
            row[f"vote {level:g}"] = f"{k} ({fmt.percent(k / len(votes)) if len(votes) else fmt.MISSING})"
        row["mean vote"] = fmt.num(votes.mean()) if len(votes) else fmt.MISSING
        rows.append(row)
    return pd.DataFrame(rows)


def section_blocks(data) -> list[Block]:
    """[] unless the run directory holds respondents.csv (market-research runs)."""
    path = data.source / "respondents.csv" if data.source.is_dir() else None
    if path is None or not path.exists():
        return []
    resp = read_csv_labels(path)
    if resp.empty or not {"arm", "vote"} <= set(resp.columns):
        return [Para(f"{path.name}: no respondents recorded.")]
    resp["vote"] = pd.to_numeric(resp["vote"], errors="coerce")
    dist = vote_distribution(resp)
    blocks: list[Block] = [Table([str(c) for c in dist.columns], dist.astype(str).values.tolist(),
                                 f"Vote distribution per arm (1 = not at all … 5 = absolutely, as the vote extraction asks), "
                                 f"count (share of recorded votes); from {path.name}, one row per respondent.",
                                 numeric=set(range(1, len(dist.columns))))]
    missing = resp[resp["vote"].isna()]
    if len(missing):
        reasons = missing.get("missing_reason", pd.Series("", index=missing.index)).fillna("").astype(str)
        counts = reasons.replace("", "no reason recorded").value_counts()
        blocks.append(Para(f"{len(missing)} respondent(s) without a vote: "
                           + "; ".join(f"{r} ({n})" for r, n in counts.items()) + "."))
    for level in sorted(resp["vote"].dropna().unique(), reverse=True):
        sub = resp[(resp["vote"] == level) & resp["reason"].fillna("").astype(str).str.strip().ne("")]
        lines = [(str(r["agent"]), f"{r['arm']}, replicate {r['replicate']}", _quote(r["reason"]))
                 for _, r in sub.head(QUOTES_PER_LEVEL).iterrows()]
        if lines:
            blocks.append(Excerpt(f"Vote {level:g}", lines, f"{len(lines)} of {len(sub)} reasons"))
    return blocks
