"""`trials analyze <run_dir | metrics.csv/.parquet | TinyTroupe .json> [--out DIR] [--control NAME] [--all-pairs]
[--equivalence-margin M] [--factors a,b]`."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from analysis.io import Table, load_table
from analysis.result import AnalysisResult, analyze
from analysis.tradeoff import fmt_effect, signed
from analysis.validate import TableError


#: fewest bootstrap resamples `trials analyze` accepts (see --n-boot's help)
MIN_N_BOOT = 1000


def default_out(table: Table) -> Path:
    """<run_dir>/analysis/ for a run directory, else <stem>_analysis/ beside the table."""
    src = Path(table.source)
    return src / "analysis" if src.is_dir() else src.with_name(f"{src.stem}_analysis")


def _p(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.2g}" if x < 0.001 else f"{x:.3f}"


def render(res: AnalysisResult) -> str:
    """Compact text table (metric, control, treatment, diff [CI], g, p, p_holm, method) and trade-off lines."""
    alpha = res.summary.get("alpha")  # the CIs' level follows --alpha
    ci = f"{round(100 * (1 - alpha), 6):g}% CI" if isinstance(alpha, float) else "CI"
    head = ("metric", "control", "treatment", f"diff [{ci}]", "g", "p", "p_holm", "method")
    body = []
    for r in res.effects.itertuples():
        ci = fmt_effect("", r.diff, r.ci_low, r.ci_high).strip()
        g = signed(r.hedges_g) if math.isfinite(r.hedges_g) else "n/a"
        method = str(r.p_method) if r.estimable and isinstance(r.p_method, str) and r.p_method else "not estimable"
        body.append((str(r.metric), str(r.control), str(r.treatment), ci, g, _p(r.p_value), _p(r.p_holm), method))
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [head, *body]]
    if not body:
        lines = ["(no comparisons)"]
    lines.append("")
    lines.append(f"family: {res.family}")
    lines += [f"trade-off {t}: {line}" for t, ls in res.tradeoffs.items() for line in ls]
    lines += [f"equivalence {r.metric} ({r.treatment}): |diff| < {r.equivalence_margin:g}, TOST p = {_p(r.p_tost)}"
              for r in res.effects.itertuples() if math.isfinite(r.p_tost)]
    lines += [f"note: {n}" for n in res.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `trials analyze`; returns the exit code (2 for a bad table or argument)."""
    parser = argparse.ArgumentParser(prog="trials analyze", description="Effect sizes and significance "
                                     "for a run directory, a metric table, or a TinyTroupe result JSON.")
    parser.add_argument("input", help="run directory, metrics .csv/.parquet, or TinyTroupe .json")
    parser.add_argument("--out", help="output directory (default: <run_dir>/analysis or <stem>_analysis)")
    parser.add_argument("--control", help="control arm (default: the run's control, else 'control')")
    parser.add_argument("--all-pairs", action="store_true", help="compare every pair of arms")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--n-boot", type=int, default=2000,
                        help=f"bootstrap resamples (default 2000, at least {MIN_N_BOOT}: the cluster bootstrap's "
                             "p-value cannot go below 1/(n_boot+1) and its 95%% interval rests on the 2.5%% tails, "
                             "which Efron & Tibshirani (1993, ch. 13 & 19) put at >= 1000 resamples)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--equivalence-margin", type=float, default=None, metavar="M",
                        help="equivalence margin in the metric's units: adds p_tost (two one-sided tests of "
                             "|diff| >= M on the headline estimand)")
    parser.add_argument("--factors", help="comma-separated factor columns for factorial.csv "
                                          "(default: every factor_* column of the table)")
    pairing = parser.add_mutually_exclusive_group()
    pairing.add_argument("--paired", dest="paired", action="store_const", const=True,
                         help="treat replicate r of every arm as a pair (same personas and seed)")
    pairing.add_argument("--unpaired", dest="paired", action="store_const", const=False)
    args = parser.parse_args(argv)
    if args.equivalence_margin is not None and not (math.isfinite(args.equivalence_margin)
                                                    and args.equivalence_margin > 0):
        print(f"error: --equivalence-margin must be a finite number > 0 in the metric's units "
              f"(got {args.equivalence_margin:g})", file=sys.stderr)
        return 2
    if args.n_boot < MIN_N_BOOT:
        print(f"error: --n-boot must be at least {MIN_N_BOOT} (got {args.n_boot}): fewer resamples give a "
              f"bootstrap p-value floor of 1/(n_boot+1) and a 95% interval from a handful of tail draws. "
              f"Fix: leave the default 2000 or pass --n-boot {MIN_N_BOOT} or more.", file=sys.stderr)
        return 2
    if not 0 < args.alpha < 1:
        print("error: --alpha must be between 0 and 1", file=sys.stderr)
        return 2
    try:
        table = load_table(args.input, paired=args.paired)
        res = analyze(table, control=args.control, comparisons="all_pairs" if args.all_pairs else "vs_control",
                      alpha=args.alpha, n_boot=args.n_boot, seed=args.seed,
                      equivalence_margin=args.equivalence_margin,
                      factors=[f.strip() for f in args.factors.split(",")] if args.factors else None)
    except TableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = res.write(Path(args.out) if args.out else default_out(table))
    if table.kind == "run":  # judge_k >= 2: agreement of the repeated judgements
        from analysis.judge_reliability import write_judge_reliability

        write_judge_reliability(table.source, out)
    print(render(res))
    print(f"analysis written to: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
