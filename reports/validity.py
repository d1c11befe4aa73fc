"""The report's "Validity" section: simulated vs human answers (analysis/validation.csv,
validation_answers.csv, validation.json) with a side-by-side figure and a plain verdict, and the
judge's agreement with itself (analysis/judge_reliability.csv), with a warning below alpha 0.667.
Reads the analysis tables only; draws nothing when they are absent."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.io import read_csv_labels
from reports import fmt
from reports.document import Block, Callout, Figure, Para, Table

ALPHA_MIN = 0.667  # Krippendorff (2004): lowest limit for tentative conclusions


def _read(path: Path) -> pd.DataFrame | None:
    return read_csv_labels(path) if path.is_file() else None


def _num(v: float, digits: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def distributions_figure(answers: pd.DataFrame, path: Path) -> Path | None:
    """Shares of each answer, simulated vs human side by side, one panel per arm (group "all")."""
    from reports.figures import _save, plt

    rows = answers[answers["group"].astype(str) == "all"]
    if rows.empty:
        return None
    arms = list(dict.fromkeys(rows["arm"].astype(str)))
    fig, axes = plt.subplots(1, len(arms), figsize=(5.5 * len(arms), 3.4), squeeze=False)
    for ax, arm in zip(axes[0], arms):
        sub = rows[rows["arm"].astype(str) == arm]
        cats = sorted(sub["answer"].unique(), key=lambda v: (isinstance(v, str), v))
        x = np.arange(len(cats))
        for offset, side, color in ((-0.2, "human", "#8c8c8c"), (0.2, "sim", "#4c72b0")):
            s = sub[sub["side"] == side].set_index("answer")["count"]
            total = s.sum()
            shares = [s.get(c, 0) / total if total else 0 for c in cats]
            ax.bar(x + offset, shares, width=0.4, color=color,
                   label=f"{'people' if side == 'human' else 'simulation'} (n={int(total)})")
        ax.set_xticks(x, [f"{c:g}" if isinstance(c, float) else str(c) for c in cats])
        ax.set_ylabel("share of answers")
        ax.set_title(f"{arm}: simulated vs human answers" if len(arms) > 1 else "Simulated vs human answers")
        ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def validation_blocks(analysis_dir: Path, fig_dir: Path) -> list[Block]:
    table = _read(analysis_dir / "validation.csv")
    if table is None or table.empty:
        return []
    settings_path = analysis_dir / "validation.json"
    settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
    blocks: list[Block] = []
    overall = table[table["group"].astype(str) == "all"]
    verdicts = [f"{r.arm}: {r.verdict} (simulated mean {_num(r.mean_sim)} vs human {_num(r.mean_human)}, "
                f"difference {_num(r.diff)} [95% CI {_num(r.ci_low)}, {_num(r.ci_high)}], sd ratio "
                f"{_num(r.sd_ratio)})" for r in overall.itertuples()]
    scale = settings.get("scale")
    blocks.append(Para(f"Metric {settings.get('metric', '?')!r} compared with column {settings.get('column', '?')!r} "
                       f"of {settings.get('human_file', '?')}"
                       + (f" on the {scale[0]:g}-{scale[1]:g} scale, equivalence margin +-{settings.get('margin'):g}"
                          if scale else "") + "."))
    compressed = [r.arm for r in overall.itertuples() if r.sd_ratio < 0.8]
    level = "info" if all(str(v).startswith("equivalent") for v in overall["verdict"]) else "warning"
    items = verdicts + ([f"Variance compression: the simulation's answers spread less than people's (sd ratio "
                         f"< 0.8) in {', '.join(map(str, compressed))}."] if compressed else [])
    blocks.append(Callout("Verdict", items, level))
    answers = _read(analysis_dir / "validation_answers.csv")
    if answers is not None and (path := distributions_figure(answers, fig_dir / "validation.png")):
        blocks.append(Figure(path, "Answers of the simulation and of real people, as shares of each group "
                             "(validation_answers.csv).", "760px"))
    cols = ["arm", "group", "n_sim", "n_human", "mean_sim", "mean_human", "diff", "ci_low", "ci_high", "sd_ratio",
            "ks_stat", "ks_p", "wasserstein", "chi2_p_perm", "p_tost", "extreme_sim", "extreme_human", "verdict"]
    rows = [[str(r[c]) if c in ("arm", "group", "verdict") else
             fmt.integer(r[c]) if c.startswith("n_") else _num(r[c], 3 if "p" in c.split("_") else 2)
             for c in cols] for _, r in table.iterrows()]
    blocks.append(Table(cols, rows, "validation.csv: diff = simulated - human with Welch's 95% CI; sd_ratio = "
                        "sd_sim / sd_human; KS and Wasserstein compare the distributions; chi2_p_perm is the "
                        "permutation p of the chi-square on answer categories; p_tost tests equivalence within "
                        "the margin; extreme_* = share of answers at either end of the scale.",
                        numeric=set(range(2, len(cols) - 1))))
    notes = [f"{r.arm} / {r.group}: {r.notes}" for r in table.itertuples() if isinstance(r.notes, str) and r.notes]
    if notes:
        blocks.append(Para("Notes: " + "; ".join(notes)))
    return blocks


def reliability_blocks(analysis_dir: Path) -> list[Block]:
    rel = _read(analysis_dir / "judge_reliability.csv")
    if rel is None or rel.empty:
        return []
    rows = [[str(r.proposition), fmt.integer(r.n_items), fmt.integer(r.k), _num(r.alpha_ordinal),
             _num(r.share_disagree_3plus), _num(r.mean_sd), str(r.notes) if isinstance(r.notes, str) else ""]
            for r in rel.itertuples()]
    blocks: list[Block] = [Table(["Proposition", "Items", "k", "Krippendorff's alpha (ordinal)",
                                  "Share of items with repeats >= 3 apart", "Mean SD", "Notes"], rows,
                                 "judge_reliability.csv: the judge's agreement with itself over k repeated "
                                 "judgements of each item.", numeric={1, 2, 3, 4, 5})]
    low = [f"{r.proposition} (alpha {_num(r.alpha_ordinal)})" for r in rel.itertuples()
           if not math.isnan(r.alpha_ordinal) and r.alpha_ordinal < ALPHA_MIN]
    if low:
        blocks.append(Callout("Unreliable judge", [
            f"Krippendorff's alpha below {ALPHA_MIN} for {', '.join(low)}: the judge disagrees with itself too "
            "often for these scores to support conclusions (Krippendorff 2004). Use a stronger judge model "
            "(judge=openai ...) or check it first with `trials judge-check`."]))
    return blocks


def section_blocks(analysis_dir: Path, fig_dir: Path) -> list[Block]:
    """Blocks of the "Validity" section; empty when the run has neither table."""
    return [*validation_blocks(analysis_dir, fig_dir), *reliability_blocks(analysis_dir)]
