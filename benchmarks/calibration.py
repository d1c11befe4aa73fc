"""Calibration of the analysis defaults by simulation; prints rates measured in this run.

1. False-positive rate at alpha 0.05 on null data with session clustering (ICC 0.3, 5 agents per
   session): the default test (session means) vs the naive per-agent Welch test; vectorised.
2. Predicted (analysis.power) vs simulated power of the default test.
3. The full `analysis.compare` pipeline on null tables: FPR of every p-value column it reports.

    python benchmarks/calibration.py [--sims 4000] [--compare-sims 300]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from analysis import compare
from analysis.calibration import Design, false_positive_rates, power_check
from analysis.simulate import clustered_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=4000)
    ap.add_argument("--compare-sims", type=int, default=300)
    args = ap.parse_args()
    se = np.sqrt(0.05 * 0.95 / args.sims)
    print(f"== null false-positive rate at alpha 0.05, {args.sims} simulated experiments (MC SE {se:.3f})")
    designs = {"10 sessions/arm x 5 agents, ICC 0.3": Design(),
               "24 sessions/arm x 4 agents, ICC 0.3": Design(n_sessions=24, cluster_size=4),
               "10 sessions/arm x 5 agents, ICC 0.1": Design(icc=0.1),
               "paired (60% shared session effect), ICC 0.3": Design(paired_corr=0.6)}
    for name, d in designs.items():
        r = false_positive_rates(d, args.sims)
        print(f"{name:48s} default {r['default']:.3f}   naive per-agent Welch {r['naive_agent_welch']:.3f}")
    print(f"\n== predicted vs simulated power of the default test ({args.sims} experiments)")
    checks = {"at MDE, 10 x 5, ICC 0.3": (Design(), None),
              "effect 0.6, 6 x 5, ICC 0.1": (Design(n_sessions=6, icc=0.1), 0.6),
              "effect 0.5, 24 x 4, ICC 0.3": (Design(n_sessions=24, cluster_size=4), 0.5),
              "at MDE, paired, ICC 0.3": (Design(paired_corr=0.6), None)}
    for name, (d, eff) in checks.items():
        r = power_check(d, eff, args.sims)
        print(f"{name:30s} effect {r['effect']:.3f}  predicted {r['predicted']:.3f}  simulated {r['simulated']:.3f}"
              f"  gap {100 * (r['simulated'] - r['predicted']):+.1f} points")

    n = args.compare_sims
    print(f"\n== analysis.compare on {n} null tables (10 sessions/arm x 5 agents, ICC 0.3, personas reused)")
    cols = ["p_value", "p_welch", "p_mannwhitney", "p_permutation", "p_mixed", "p_cluster_boot"]
    hits = {c: 0 for c in cols}
    rng = np.random.default_rng(7)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n):
            eff = compare(clustered_table(rng), n_boot=400, n_perm=400, seed=i).iloc[0]
            for c in cols:
                hits[c] += bool(eff[c] < 0.05)
    dt = time.perf_counter() - t0
    se_c = np.sqrt(0.05 * 0.95 / n)
    for c in cols:
        print(f"{c:16s} false-positive rate {hits[c] / n:.3f}  (MC SE {se_c:.3f})")
    print(f"({dt / n * 1000:.0f} ms per compare call)")


if __name__ == "__main__":
    main()
