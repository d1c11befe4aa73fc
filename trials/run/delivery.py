"""The manipulation check: was each arm's treatment actually delivered in its sessions?

An arm that asks for interventions none of which fired (or action correction that never checked
an action, or a story that never produced a beat) did not receive its treatment; comparing it with
control measures nothing, so its comparison must say "treatment not delivered" (analysis reads
`delivery.csv`) and the report names it before the headline results.

Per arm, from the finished sessions' transcript and the arm configs:

| mechanism | expected when | count | delivered when |
|---|---|---|---|
| interventions | `interventions` is non-empty | intervention firings (`kind == "intervention"`) | count > 0 |
| correction | `correction` is set | candidate actions checked (`kind == "correction"`) | count > 0 |
| story | `story` is set | story beats (`kind == "story"`, not FAILED) | count > 0 |
| settings | `llm` / `judge` differ from control | differing keys | always (every call uses them) |

`mechanisms` also says whether `stimulus_differs`: the experimenter's stimuli (those not sent by
one of the session's agents -- task, interviewer, injected thoughts, story beats) differ from the
paired control session's in at least one replicate.

An arm's `delivered` is true when every expected mechanism was delivered, false when one was
not, and null when there is nothing to deliver (the control arm, an A/A arm) or no session of
the arm finished. Written to `manifest.json` (`arms`) and `delivery.csv`
(arm, mechanism, expected, delivered, count, note).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

DELIVERY_COLUMNS = ["arm", "mechanism", "expected", "delivered", "count", "note"]


def _counts(transcript: Path) -> tuple[dict[str, dict[str, int]], dict[tuple[str, Any], frozenset[str]]]:
    """Per arm: interventions fired, actions checked by correction, regenerations, story beats;
    and per (arm, replicate): the experimenter's stimuli (stimuli not sent by a session's agent,
    and story beats) as a set of texts."""
    out: dict[str, dict[str, int]] = {}
    stimuli: dict[tuple[str, Any], list[tuple[str | None, str]]] = {}
    agents: dict[tuple[str, Any], set[str]] = {}
    if not transcript.is_file():
        return out, {}
    with open(transcript) as fh:
        for line in fh:
            e = json.loads(line)
            arm, kind, key = str(e.get("arm")), e.get("kind"), (str(e.get("arm")), e.get("replicate"))
            c = out.setdefault(arm, {})
            if kind == "action":
                agents.setdefault(key, set()).add(str(e.get("agent")))
            elif kind in ("stimulus", "story"):
                stimuli.setdefault(key, []).append((e.get("source") if kind == "stimulus" else None,
                                                    str(e.get("content", ""))))
            if kind == "intervention":
                c["interventions_fired"] = c.get("interventions_fired", 0) + 1
            elif kind == "correction":
                c["correction_checks"] = c.get("correction_checks", 0) + 1
                if (e.get("attempt") or 0) > 0:
                    c["corrections_attempted"] = c.get("corrections_attempted", 0) + 1
            elif kind == "story" and e.get("type") != "FAILED":
                c["story_beats"] = c.get("story_beats", 0) + 1
    given = {key: frozenset(text for src, text in items if src not in agents.get(key, set()))
             for key, items in stimuli.items()}
    return out, given


def manipulation_check(arms: dict[str, dict[str, Any]], control: str, aa_arms: list[str],
                       transcript: Path, done_arms: set[str]) -> tuple[dict[str, Any], pd.DataFrame]:
    """(manifest "arms" section, delivery.csv rows) -- see the module docstring."""
    counts, given = _counts(transcript)
    section: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    base = arms.get(control, {})
    for arm, conf in arms.items():
        c = counts.get(arm, {})
        settings = sorted(k for k in ("llm", "judge") if (conf.get(k) or {}) != (base.get(k) or {}))
        mech = {"interventions_fired": c.get("interventions_fired", 0),
                "correction_checks": c.get("correction_checks", 0),
                "corrections_attempted": c.get("corrections_attempted", 0),
                "story_beats": c.get("story_beats", 0),
                "settings_differ": bool(settings),
                # the experimenter's stimuli differ from the paired control sessions'
                "stimulus_differs": any(given.get((arm, r)) != given.get((control, r))
                                        for (a, r) in given if a == arm and (control, r) in given)}
        expected = []  # (mechanism, count, delivered, note)
        if conf.get("interventions"):
            n = mech["interventions_fired"]
            expected.append(("interventions", n, n > 0, f"{conf['interventions']}: fired {n} time(s)"))
        if conf.get("correction"):
            n = mech["correction_checks"]
            expected.append(("correction", n, n > 0, f"checked {n} action(s), regenerated "
                             f"{mech['corrections_attempted']}"))
        if conf.get("story"):
            n = mech["story_beats"]
            expected.append(("story", n, n > 0, f"{n} story beat(s)"))
        if settings:
            expected.append(("settings", len(settings), True, f"{', '.join(settings)} differ from {control}"))
        if arm == control or arm in aa_arms or not expected:
            delivered, note = None, ("control arm" if arm == control else "identical to control (A/A)"
                                     if arm in aa_arms else "no mechanism to deliver")
        elif arm not in done_arms:
            delivered, note = None, "no session of this arm finished"
        else:
            missed = [m for m, _, ok, _ in expected if not ok]
            delivered = not missed
            note = ("treatment not delivered: " + ", ".join(f"{m} never applied" for m in missed)) if missed \
                else "; ".join(n for *_, n in expected)
        section[arm] = {"delivered": delivered, "mechanisms": mech, "note": note}
        for m, n, ok, why in expected:
            rows.append({"arm": arm, "mechanism": m, "expected": True,
                         "delivered": ok if arm in done_arms else None, "count": n, "note": why})
        if not expected:
            rows.append({"arm": arm, "mechanism": "none", "expected": False, "delivered": None, "count": 0,
                         "note": note})
    return section, pd.DataFrame(rows, columns=DELIVERY_COLUMNS)


def write_delivery(root: Path, arms: dict[str, dict[str, Any]], control: str, aa_arms: list[str],
                   done_arms: set[str]) -> dict[str, Any]:
    """Compute the manipulation check, write `delivery.csv`, return the manifest's "arms" section."""
    section, table = manipulation_check(arms, control, aa_arms, root / "transcript.jsonl", done_arms)
    table.to_csv(root / "delivery.csv", index=False)
    return section


def undelivered_metrics(plan: Any, failed: list[tuple[str, int, str]]) -> pd.DataFrame:
    """Metric rows for the sessions of failed jobs: every metric the experiment measures, value
    missing, `missing_reason` "not delivered", the job's error in `missing_detail`. The failed
    sessions then count in the missingness per arm (an arm whose jobs fail more is compared on a
    biased subset; `analysis/missing.csv` flags it). `failed`: (arm, replicate, error)."""
    scen, exp = plan.scenario, plan.experiment
    metrics = list(exp.get("metrics") or scen.METRICS)
    jobs = {(j.arm, j.replicate): j for j in plan.jobs}
    rows = []
    for arm, rep, error in failed:
        job = jobs[(arm, rep)]
        for metric in metrics:
            level, scale = scen.METRICS[metric]
            agents = [str(p.get("name")) for p in job.personas] if level == "agent" else [""]
            rows += [{"experiment": exp.get("name", ""), "arm": arm, "replicate": rep, "session": job.session,
                      "agent": a, "metric": metric, "value": float("nan"), "scale": scale, "level": level,
                      "missing_reason": "not delivered", "missing_detail": f"job failed: {error}"[:500]}
                     for a in agents]
    return pd.DataFrame(rows)
