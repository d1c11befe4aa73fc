"""Readable transcript excerpts: the first session of each arm, a few lines long."""

from __future__ import annotations

import pandas as pd

from reports.document import Excerpt

MAX_LINES = 14
MAX_CHARS = 300


def _short(text: object) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1].rstrip() + "…"


def _line(ev: pd.Series) -> tuple[str, str, str] | None:
    kind, typ = str(ev.get("kind", "")), str(ev.get("type", "")).upper()
    agent = str(ev.get("agent") or "")
    if kind == "action":
        if typ == "TALK":
            target = ev.get("target")
            return agent, f"to {target}" if isinstance(target, str) and target else "says", _short(ev["content"])
        if typ == "THINK":
            return agent, "thinks", _short(ev["content"])
        if typ == "REACH_OUT":
            return agent, "reaches out", _short(ev.get("target") or ev["content"])
        return None  # DONE carries no text
    if kind == "stimulus":
        source = ev.get("source")
        return (str(source) if isinstance(source, str) and source else "Facilitator"), "to all", _short(ev["content"])
    if kind == "intervention":
        return f"Intervention ({ev.get('type')})", f"to {agent}" if agent else "fires", _short(ev["content"])
    if kind == "story":
        return "Story", "narrates", _short(ev["content"])
    return None


def excerpts(transcript: pd.DataFrame | None, arms: list[str]) -> list[Excerpt]:
    """One short excerpt per arm (its lowest replicate); stimuli broadcast to several agents once."""
    if transcript is None or transcript.empty or not {"arm", "session", "kind"} <= set(transcript.columns):
        return []
    out = []
    for arm in arms:
        ev = transcript[transcript["arm"] == arm]
        if ev.empty:
            continue
        if "replicate" in ev:
            ev = ev.sort_values("replicate", kind="stable")
        session = ev["session"].iloc[0]
        ev = ev[ev["session"] == session]
        lines: list[tuple[str, str, str]] = []
        seen: set[tuple[str, str]] = set()
        for _, row in ev.iterrows():
            line = _line(row)
            if line is None:
                continue
            if row["kind"] in ("stimulus", "intervention"):
                key = (str(row["kind"]), str(row["content"]))
                if key in seen:
                    continue
                seen.add(key)
            lines.append(line)
        total = len(lines)
        note = f"first {MAX_LINES} of {total} lines" if total > MAX_LINES else f"{total} lines"
        shown = lines[:MAX_LINES]
        if total > MAX_LINES:  # keep the steering visible even when it happens late in the session
            late = [ln for ln in lines[MAX_LINES:] if ln[0].startswith(("Intervention", "Story"))][:3]
            shown += [("…", "", f"{total - MAX_LINES - len(late)} more lines")] + late if late else []
        out.append(Excerpt(f"{arm} — session {session}", shown, note))
    return out
