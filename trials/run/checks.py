"""`trials judge-check [overrides]` and `trials validate-persona FILE --expectations TEXT
[--questions N] [overrides]`: the checks of a judge and of a persona that run outside an
experiment. The LLMs come from the same Hydra config as `trials run` (e.g. `llm=scripted`,
`judge=openai judge.model=gpt-4o-mini`); every call is recorded (llm_calls.parquet / the
interview's `usage`).

judge-check writes into `--out` (default `judge_check/`): `judge_check.csv` (one row per item,
trials.judging.check), `judge_check.json` (AUC, accuracy and their CIs, overall and per
subtlety) and `llm_calls.parquet`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

import trials


#: the settings judge-check and validate-persona read (the rest of `trials run`'s config is unused)
READS = ("llm.*", "judge.*", "prices.*", "cache.*", "run.seed")


class CheckError(ValueError):
    """Bad input to a check command; the message names the argument/file and the fix."""


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """The resolved `trials run` config with Hydra-style overrides (no run directory); a bad
    override is one line naming the key or group, the value and the choices (trials.run.compose)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from trials.run.compose import compose
    from trials.run.errors import ConfigError

    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise CheckError(f"unexpected argument(s) {bad}; overrides look like key=value (e.g. llm=scripted)")
    for o in overrides:  # the experiment and the runner's settings are not read: they would change nothing
        key = o.split("=", 1)[0].lstrip("+~")
        if key.split(".")[0].split("/")[0] in ("experiment", "run") and key != "run.seed":
            raise CheckError(f"{key}: not a setting of this command, it never reads it (it reads "
                             f"{', '.join(READS)}); fix: remove {o}")
    try:
        cfg = compose(overrides, None, str(trials.CONF_DIR))
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ConfigError as exc:
        raise CheckError(f"config error: {exc}") from None
    except OmegaConfBaseException as exc:
        raise CheckError("config error: " + " ".join(str(exc).split())[:400]) from None


def build_llms(cfg: dict[str, Any], recorder: Any) -> tuple[Any, Any]:
    """(agent LLM, judge LLM), bound to run.seed and `recorder`; config errors as CheckError."""
    from trials.llm import LLMConfigError, build_llm
    from trials.run.plan import judge_config
    from trials.session.actions import derive_seed

    cache = dict(cfg.get("cache") or {})
    if cache.get("path") and cache.get("mode", "read_write") != "off":
        cache["path"] = str(Path(cache["path"]).expanduser().resolve())
    seed = int((cfg.get("run") or {}).get("seed", 0))
    llm_cfg, judge_cfg = dict(cfg.get("llm") or {}), judge_config(cfg)
    try:
        llm = build_llm(llm_cfg, cache=cache or None, prices=cfg.get("prices"))
        judge = llm if judge_cfg == llm_cfg else build_llm(judge_cfg, cache=cache or None, prices=cfg.get("prices"))
    except LLMConfigError as exc:
        raise CheckError(str(exc)) from None
    return llm.bind(seed=seed, recorder=recorder), judge.bind(seed=derive_seed(seed, "judge"), recorder=recorder)


def _usage(recorder: Any) -> dict[str, Any]:
    from trials.llm.usage import token_totals, total_cost

    calls = recorder.to_frame()
    cost = total_cost(calls["cost_usd"])
    return {"calls": int(len(calls)), **token_totals(calls),
            "cost_usd": None if math.isnan(cost) else cost}


def judge_check(overrides: list[str], out: Path, threshold: int = 5, items_path: str | None = None,
                n_boot: int = 2000) -> dict[str, Any]:
    """Run the judge on the labelled set; write the three files; return the summary dict."""
    from analysis.judge_reliability import accuracy_with_ci, auc_with_ci
    from trials.judging.check import judge_labelled_set, labelled_set
    from trials.llm import CallRecorder

    if not 0 <= threshold <= 9:
        raise CheckError(f"--threshold {threshold}: give a score 0-9")
    try:
        items = labelled_set(items_path)
    except (OSError, ValueError) as exc:
        raise CheckError(f"--items: {exc}") from None
    cfg = compose_config(overrides)
    recorder = CallRecorder()
    _, judge_llm = build_llms(cfg, recorder)
    table = judge_labelled_set(judge_llm, items, threshold=threshold, progress=True)
    summary: dict[str, Any] = {"judge": {"backend": judge_llm.backend, "model": judge_llm.model},
                               "threshold": threshold, "n_items": len(table)}
    for name, sub in [("all", table), *table.groupby("subtlety", sort=True)]:
        scores = pd.to_numeric(sub["score"], errors="coerce")
        summary[name] = {**auc_with_ci(scores, sub["fits"], n_boot=n_boot),
                         **{k: v for k, v in accuracy_with_ci(sub["predicted"], sub["fits"]).items()
                            if k != "notes" and k != "n"}}
    weighted = pd.to_numeric(table["weighted_score"], errors="coerce")
    if weighted.notna().all():  # backends with log-probabilities: the continuous score
        summary["all"]["auc_weighted"] = auc_with_ci(weighted, table["fits"], n_boot=n_boot)["auc"]
    summary["usage"] = _usage(recorder)
    summary["failure"] = no_auc_message(summary, table)  # "" when an AUC was measured
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "judge_check.csv", index=False)
    (out / "judge_check.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    recorder.to_frame().to_parquet(out / "llm_calls.parquet", index=False)
    return summary


def no_auc_message(summary: dict[str, Any], table: pd.DataFrame) -> str:
    """Why judge-check measured no AUC (how many items got no score, by reason, and the first
    failure's detail), or "" when it did. A check without an AUC cannot pass (exit status 1)."""
    if not math.isnan(summary["all"]["auc"]):
        return ""
    missing = table[table["score"].isna()]
    if missing.empty:
        return f"no AUC: {summary['all']['notes']}"
    counts = ", ".join(f"{n} {reason}" for reason, n in missing["missing_reason"].value_counts().items())
    detail = next((d for d in missing["missing_detail"] if d), "")
    return (f"no AUC: {len(missing)} of {len(table)} items got no score ({counts})"
            + (f"; first: {detail}" if detail else "") + f"; {summary['all']['notes'] or 'too few scored items'}")


def _ci(lo: float, hi: float) -> str:
    return "[n/a]" if math.isnan(lo) else f"[{lo:.2f}, {hi:.2f}]"


def format_judge_check(s: dict[str, Any]) -> str:
    a = s["all"]
    lines = [f"judge: {s['judge']['backend']} / {s['judge']['model']}; {s['n_items']} labelled items "
             f"({a['n_missing']} without a score)",
             f"AUC {a['auc']:.2f} {_ci(a['auc_ci_low'], a['auc_ci_high'])} (95% percentile bootstrap)",
             f"accuracy at score >= {s['threshold']}: {a['accuracy']:.2f} {_ci(a['acc_ci_low'], a['acc_ci_high'])} "
             "(95% Wilson)"]
    for name in ("obvious", "subtle"):
        if name in s:
            b = s[name]
            lines.append(f"  {name}: AUC {b['auc']:.2f} {_ci(b['auc_ci_low'], b['auc_ci_high'])}, accuracy "
                         f"{b['accuracy']:.2f} {_ci(b['acc_ci_low'], b['acc_ci_high'])}, n={b['n']}")
    if "auc_weighted" in a:
        lines.append(f"AUC of the probability-weighted score: {a['auc_weighted']:.2f}")
    if a["notes"]:
        lines.append(f"note: {a['notes']}")
    return "\n".join(lines)


def validate_persona_file(path: str, expectations: str, n_questions: int, overrides: list[str],
                          out: Path | None = None) -> tuple[Any, Path]:
    """Interview the persona of `path` (TinyTroupe .agent.json or ours); write the JSON."""
    from trials.judging.interview import MAX_QUESTIONS, validate_persona
    from trials.llm import CallRecorder
    from trials.persona import PersonaError, load_persona

    if not 1 <= n_questions <= MAX_QUESTIONS:
        raise CheckError(f"--questions {n_questions}: ask 1 to {MAX_QUESTIONS} questions (at most "
                         f"{MAX_QUESTIONS}: the fixed list of standard questions that fills in for any "
                         "the judge fails to write has that many)")
    if not expectations.strip():
        raise CheckError("--expectations is empty; describe who the persona should be")
    try:
        persona = load_persona(path)
    except (PersonaError, OSError, ValueError) as exc:
        raise CheckError(str(exc)) from None
    cfg = compose_config(overrides)
    recorder = CallRecorder()
    llm, judge_llm = build_llms(cfg, recorder)
    interview = validate_persona(persona, expectations, llm=llm, judge_llm=judge_llm, n_questions=n_questions,
                                 seed=int((cfg.get("run") or {}).get("seed", 0)))
    stem = Path(path).name.split(".")[0]
    target = out or Path(f"{stem}.interview.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(interview.to_json())
    data["usage"] = _usage(recorder)
    data["persona_file"] = str(path)
    target.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return interview, target


def main(command: str, argv: list[str]) -> int:
    if command == "judge-check":
        ap = argparse.ArgumentParser(prog="trials judge-check", description="The judge on the shipped "
                                     "labelled persona-fit set: AUC and accuracy with 95% CIs.")
        ap.add_argument("--out", default="judge_check", help="output folder (default judge_check/)")
        ap.add_argument("--threshold", type=int, default=5, help="score >= threshold means 'fits' (default 5)")
        ap.add_argument("--items", default=None, help="a JSONL file of your own items (same keys)")
    else:
        ap = argparse.ArgumentParser(prog="trials validate-persona", description="Interview a persona and "
                                     "score it 0-9 against expectations.")
        ap.add_argument("persona_file")
        ap.add_argument("--expectations", required=True, help="who the persona should be, in words")
        ap.add_argument("--questions", type=int, default=5, help="number of interview questions, 1 to 10 (default 5)")
        ap.add_argument("--out", default=None, help="interview JSON path (default <persona>.interview.json)")
    ap.add_argument("overrides", nargs="*", help="Hydra-style config overrides, e.g. llm=scripted judge=openai")
    from trials.llm import LLMError

    a, extra = ap.parse_known_args(argv)  # overrides may come before or after the options
    a.overrides = [*a.overrides, *extra]
    try:
        if command == "judge-check":
            summary = judge_check(a.overrides, Path(a.out), a.threshold, a.items)
            print(format_judge_check(summary))
            print(f"wrote {Path(a.out) / 'judge_check.csv'} and judge_check.json")
            if summary["failure"]:  # the judge gave nothing to measure: the check cannot pass
                print(f"trials {command}: {summary['failure']}", file=sys.stderr)
                return 1
        else:
            interview, path = validate_persona_file(a.persona_file, a.expectations, a.questions, a.overrides,
                                                    Path(a.out) if a.out else None)
            score = "n/a" if interview.score is None else str(interview.score)
            print(f"score: {score}/9")
            if interview.score is None:
                print(f"no score: {interview.missing_reason}"
                      + (f" ({interview.missing_detail})" if interview.missing_detail else ""))
            else:
                print(f"justification: {interview.justification}")
            print(f"interview written to: {path}")
            if interview.score is None:  # the interview is kept, but a check without a score cannot pass
                print(f"trials {command}: no score ({interview.missing_reason}); the interview so far is in "
                      f"{path}", file=sys.stderr)
                return 1
    except CheckError as exc:
        print(f"trials {command}: {exc}", file=sys.stderr)
        return 2
    except LLMError as exc:  # e.g. the endpoint is down after its retries
        print(f"trials {command}: LLM error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
