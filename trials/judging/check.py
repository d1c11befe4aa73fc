"""Is a judge model fit to score persona adherence? `judge_labelled_set(llm)` runs the standard
`persona_adherence` proposition on a labelled set shipped with the package
(`data/persona_fit.jsonl`, written by us: 8 personas x 6 actions = 48 items, half in character,
half out, each "obvious" or "subtle") and returns one row per item:
`id, persona, subtlety, fits, score, weighted_score, predicted, missing_reason, missing_detail`
(`predicted` = score >= threshold; None when the judge gave no score; `missing_reason` one of
`trials.judging.answers.MISSING_REASONS`, e.g. "call failed", the free-text why in `missing_detail`). The statistics (AUC,
accuracy and their CIs) are `analysis.judge_reliability.auc_with_ci / accuracy_with_ci`.

Each item is judged exactly as a session's agent is: the persona shown in full, the action as
the agent's only TALK event, the 0-9 rubric of `trials.judging.judge`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from trials.judging.judge import judge
from trials.judging.propositions import persona_adherence
from trials.persona import Persona
from trials.persona.files import validate_data
from trials.secrets import shown
from trials.session.events import Event

LABELLED_SET = "persona_fit.jsonl"
ITEM_KEYS = {"id", "persona", "action", "fits", "subtlety"}
#: the values of an item's `subtlety` (the summary gives AUC and accuracy per value)
SUBTLETIES = ("obvious", "subtle")


def labelled_set(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The shipped items (or a JSONL file of the same shape); ValueError names the line and key
    (a bad persona: the field, as for persona files; a repeated id: both lines)."""
    if path is None:
        text = resources.files("trials.judging").joinpath("data", LABELLED_SET).read_text(encoding="utf-8")
        source = f"trials/judging/data/{LABELLED_SET}"
    else:
        text, source = Path(path).read_text(encoding="utf-8"), str(path)
    items, seen = [], {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source} line {n}: not JSON ({exc.msg}); each line is one JSON object "
                             f"with the keys {sorted(ITEM_KEYS)}") from None
        if not isinstance(item, dict):
            raise ValueError(f"{source} line {n}: expected a JSON object with the keys {sorted(ITEM_KEYS)}")
        if missing := ITEM_KEYS - set(item):
            raise ValueError(f"{source} line {n}: missing key(s) {sorted(missing)}; each line needs {sorted(ITEM_KEYS)}")
        where = f"{source} line {n}"
        if not isinstance(item["fits"], bool):
            raise ValueError(f"{where}: 'fits' must be true or false")
        if item["subtlety"] not in SUBTLETIES:
            raise ValueError(f"{where}: 'subtlety' is {shown(item['subtlety'], 40)}; fix: use one of "
                             f"{', '.join(map(repr, SUBTLETIES))}")
        if not isinstance(item["id"], (str, int)) or isinstance(item["id"], bool) or str(item["id"]).strip() == "":
            raise ValueError(f"{where}: 'id' is {shown(item['id'], 40)}; fix: give each item a unique id string")
        if str(item["id"]) in seen:
            raise ValueError(f"{where}: id {str(item['id'])!r} is already used on line {seen[str(item['id'])]}; "
                             "fix: give each item a unique id")
        seen[str(item["id"])] = n
        if not isinstance(item["action"], str) or not item["action"].strip():
            raise ValueError(f"{where}: 'action' must be a non-empty string (what the persona says or does)")
        validate_data(Persona, item["persona"], where)  # a PersonaError names the field, as for persona files
        items.append(item)
    return items


def judge_labelled_set(llm: Any, items: list[dict[str, Any]] | None = None, *, threshold: int = 5,
                       persona_detail: str = "full", progress: bool = False) -> pd.DataFrame:
    """Judge every item with `llm` (a bound trials.llm LLM); one row per item (module docstring).
    `progress`: a tqdm bar on stderr."""
    from tqdm import tqdm

    prop = persona_adherence(threshold=threshold, persona_detail=persona_detail, first_n=0, last_n=1)
    rows = []
    items = items if items is not None else labelled_set()
    for item in tqdm(items, desc="judge-check", unit="item", disable=not progress):
        persona = Persona.model_validate(item["persona"])
        events = [Event(step=0, kind="action", type="TALK", content=item["action"], agent=persona.name)]
        # a call that fails after its retries is a missing score ("call failed"); the other items still count
        r = judge(prop, llm, events=events, agent=persona.name, persona=persona, salt=item["id"], on_error="missing")
        rows.append({"id": item["id"], "persona": persona.name, "subtlety": item["subtlety"],
                     "fits": item["fits"], "score": r.score, "weighted_score": r.weighted_score,
                     "predicted": None if r.score is None else r.score >= threshold,
                     "missing_reason": r.missing_reason, "missing_detail": r.missing_detail})
    return pd.DataFrame(rows)
