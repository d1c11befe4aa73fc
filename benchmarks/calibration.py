"""Calibration of the analysis by simulation; prints rates measured in this run (seeded).

1. Null false-positive rate at alpha 0.05 of the headline p (`p_value`) from the full
   `analysis.compare` pipeline, for balanced, unbalanced (unequal session sizes), few-session,
   skewed-count, ordinal and paired designs (target [0.03, 0.07]); beside it the rates of
   secondary p-values where they matter.
2. Coverage of the 95% intervals (target 93-97 %) under a real effect with a known true value:
   headline CI of diff, noncentral-t CI of Hedges' g, Cliff's delta CI, cluster bootstrap-t CI, rate
   ratio; true values of the skewed-count and ordinal designs from their exact pmfs. Designs of
   fewer than 8 sessions per arm get no g / delta / bootstrap interval (printed as such).
3. Power of the design that ran: design-based MDE (analysis.power.design_mde) vs agent-by-agent
   simulation, and what the old mean-cluster-size formula promised.

    python benchmarks/calibration.py [--sims 400] [--cover-sims 1000] [--power-sims 4000] [--mixed-sims 200]
                                     [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
from scipy import stats

from analysis import compare
from analysis.calibration import design_power_check
from analysis.simulate import CUTS_0_9, clustered_table, ordinal_table, skewed_counts_table, unequal_table

NULL = {
    "balanced 10 v 10 sessions x 5, ICC 0.3": (lambda r: clustered_table(r, 10, 5, 0.3), {}, ["p_cluster_boot"]),
    "unbalanced 6 v 14 sessions x 2-8, ICC 0.3": (lambda r: unequal_table(r, 6, 14), {}, []),
    "few sessions 4 v 4 x 5, ICC 0.3": (lambda r: clustered_table(r, 4, 5, 0.3), {}, []),
    "skewed counts 4 v 16 sessions": (lambda r: skewed_counts_table(r, 4, 16), {}, ["p_count"]),
    "skewed counts 8 v 8 sessions": (lambda r: skewed_counts_table(r, 8, 8), {}, ["p_count"]),
    "ordinal 0-9, 8 v 8 sessions x 4, ICC 0.2": (lambda r: ordinal_table(r, 8, 4), {}, ["p_ordinal"]),
    "paired 8 pairs x 5 (60% shared), ICC 0.3": (lambda r: clustered_table(r, 8, 5, 0.3, paired_corr=0.6),
                                                 {"paired_design": True}, []),
}
E = 0.5
DELTA = 2 * stats.norm.cdf(E / math.sqrt(2)) - 1  # agent values: T - C ~ N(E, 2) (total SD 1 per arm)


def _pmf_truth(pc: np.ndarray, pt: np.ndarray, n_c: int, n_t: int) -> dict[str, float]:
    """True diff, g (diff / the pooled SD the estimate targets) and Cliff's delta of two score pmfs."""
    k = np.arange(len(pc))
    mc, mt = (k * pc).sum(), (k * pt).sum()
    vc, vt = ((k - mc) ** 2 * pc).sum(), ((k - mt) ** 2 * pt).sum()
    sd = math.sqrt(((n_c - 1) * vc + (n_t - 1) * vt) / (n_c + n_t - 2))
    cdf_c = np.cumsum(pc)
    delta = (pt * (np.r_[0.0, cdf_c[:-1]] - (1 - cdf_c))).sum()  # P(C < T) - P(C > T)
    return {"": mt - mc, "g": (mt - mc) / sd, "delta": float(delta)}


def _ordinal_pmf(shift: float) -> np.ndarray:
    """pmf of the 0-9 score: number of CUTS_0_9 below a N(shift, 1) latent value."""
    upper = np.r_[1.0, stats.norm.sf(CUTS_0_9 - shift)]  # P(score >= k), k = 0..9
    return upper - np.r_[upper[1:], 0.0]


def _count_pmf(mean: float, shape: float = 0.7, top: int = 4000) -> np.ndarray:
    """pmf of a gamma-Poisson (negative binomial) count, as simulate.skewed_counts_table draws it."""
    return stats.nbinom.pmf(np.arange(top), shape, shape / (shape + mean))


ORD = _pmf_truth(_ordinal_pmf(0.0), _ordinal_pmf(E), 32, 32)
CNT = _pmf_truth(_count_pmf(5.0), _count_pmf(7.5), 8, 16)
CLUSTER = {"": E, "g": E, "delta": DELTA, "cluster_boot": E}
COVER = {  # name: (table, compare kwargs, {column prefix: true value})
    "8 v 8 sessions x 4, ICC 0.2, effect 0.5": (lambda r: clustered_table(r, 8, 4, 0.2, E), {}, CLUSTER),
    "16 v 16 sessions x 4, ICC 0.2, effect 0.5": (lambda r: clustered_table(r, 16, 4, 0.2, E), {}, CLUSTER),
    "unbalanced 8 v 16 x 2-8, ICC 0.3, effect 0.5": (lambda r: unequal_table(r, 8, 16, effect=E), {}, CLUSTER),
    "skewed counts 8 v 16, mean 5, ratio 1.5": (lambda r: skewed_counts_table(r, 8, 16, ratio=1.5), {},
                                                {"": CNT[""], "g": CNT["g"], "delta": CNT["delta"], "rr": 1.5}),
    "paired 8 pairs x 5, ICC 0.3, effect 0.5": (lambda r: clustered_table(r, 8, 5, 0.3, E, paired_corr=0.6),
                                                {"paired_design": True}, {"": E, "g": E}),
    "ordinal 0-9, 8 v 8 x 4, ICC 0.2, shift 0.5": (lambda r: ordinal_table(r, 8, 4, effect=E), {},
                                                   {"": ORD[""], "g": ORD["g"], "delta": ORD["delta"],
                                                    "cluster_boot": ORD[""]}),
    "few sessions 4 v 4 x 5, ICC 0.3, effect 0.5": (lambda r: clustered_table(r, 4, 5, 0.3, E), {}, CLUSTER),
}
CI = {"": ("ci_low", "ci_high"), "g": ("g_ci_low", "g_ci_high"), "delta": ("delta_ci_low", "delta_ci_high"),
      "cluster_boot": ("cluster_boot_ci_low", "cluster_boot_ci_high"), "rr": ("rr_ci_low", "rr_ci_high")}
LABEL = {"": "diff", "g": "g", "delta": "delta", "cluster_boot": "boot-t", "rr": "rate ratio"}


def run(make, kwargs: dict, n: int, seed: int, mixed: bool = False):
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n):
            yield compare(make(rng), n_boot=999, n_perm=2000, seed=i, mixed=mixed, **kwargs).iloc[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=400, help="simulated tables per design (null block)")
    ap.add_argument("--cover-sims", type=int, default=1000, help="simulated tables per design (coverage block)")
    ap.add_argument("--seed", type=int, default=0, help="added to every design's seed (another set of tables)")
    ap.add_argument("--only", default="", help="run only the designs whose name contains this text")
    ap.add_argument("--power-sims", type=int, default=4000)
    ap.add_argument("--mixed-sims", type=int, default=200, help="tables for the MixedLM check (slow)")
    args = ap.parse_args()
    n, t0 = args.sims, time.perf_counter()
    if n < 1 or args.cover_sims < 1:
        ap.error("--sims and --cover-sims must be >= 1 (--power-sims 0 and --mixed-sims 0 skip those blocks)")
    se = math.sqrt(0.05 * 0.95 / n)
    print(f"== 1. null false-positive rate at alpha 0.05, analysis.compare on {n} tables per design (MC SE {se:.3f})")
    for k, (name, (make, kw, extra)) in enumerate(NULL.items()):
        if args.only not in name:
            continue
        rows = list(run(make, kw, n, 100 + k + args.seed))
        methods = {str(r["p_method"]).split(" on ")[0].split(" (")[0] for r in rows}
        def rate(col: str) -> str:  # over the tables where the p-value exists (NaN: method not applicable)
            ok = [r[col] < 0.05 for r in rows if np.isfinite(r[col])]
            return "n/a" if not ok else f"{np.mean(ok):.3f}" + ("" if len(ok) == len(rows) else f" ({len(ok)})")

        more = "  ".join(f"{c} {rate(c)}" for c in ["p_welch", *extra])
        print(f"{name:44s} p_value {rate('p_value')}   [{'; '.join(sorted(methods))}]   {more}")
    if args.mixed_sims and not args.only:
        rows = list(run(NULL["unbalanced 6 v 14 sessions x 2-8, ICC 0.3"][0], {}, args.mixed_sims, 200 + args.seed, mixed=True))
        fit = np.mean([np.isfinite(r["p_mixed"]) for r in rows])
        print(f"{'p_mixed, unbalanced 6 v 14 x 2-8':44s} p_mixed {np.nanmean([r['p_mixed'] < 0.05 for r in rows]):.3f}"
              f"   (finite fit in {fit:.0%} of {args.mixed_sims} tables)")

    nc = args.cover_sims
    se = math.sqrt(0.95 * 0.05 / nc)
    print(f"\n== 2. coverage of 95% intervals, {nc} tables per design (MC SE {se:.3f}; "
          f"outside [{0.95 - 1.96 * se:.3f}, {0.95 + 1.96 * se:.3f}] is a real miss of 0.95 at 5%)")
    for k, (name, (make, kw, truth)) in enumerate(COVER.items()):
        if args.only not in name:
            continue
        t1 = time.perf_counter()
        rows = list(run(make, kw, nc, 300 + k + args.seed))
        cells = []
        for key, true in truth.items():
            lo, hi = CI[key]
            ok = [r for r in rows if np.isfinite(r[lo])]
            if not ok:
                cells.append(f"{LABEL[key]} no CI (< 8 units per arm)")
                continue
            cov = np.mean([r[lo] <= true <= r[hi] for r in ok])
            cells.append(f"{LABEL[key]} {cov:.3f}" + ("" if len(ok) == nc else f" ({len(ok)}/{nc} with CI)"))
        print(f"{name:46s} " + "   ".join(cells) + f"   ({time.perf_counter() - t1:.0f} s)", flush=True)

    print(f"\n== 3. power at the design's MDE: design-based (target 0.80) vs agent-by-agent simulation ({args.power_sims})")
    rng = np.random.default_rng(9)
    designs = {"10 v 10 sessions x 2-8 agents, ICC 0.3": (rng.integers(2, 9, 10), rng.integers(2, 9, 10)),
               "4 v 4 sessions x 5 agents, ICC 0.3": (np.full(4, 5), np.full(4, 5)),
               "6 v 14 sessions x 2-8 agents, ICC 0.3": (rng.integers(2, 9, 6), rng.integers(2, 9, 14))}
    for name, (sc, st) in designs.items():
        if (args.only and args.only not in name) or args.power_sims < 1:
            continue
        r = design_power_check(sc, st, 0.3, args.power_sims)
        print(f"{name:40s} MDE {r['effect']:.3f}  predicted {r['predicted']:.3f}  simulated {r['simulated']:.3f}"
              f"  (old mean-size formula promised {r['old_formula']:.3f})")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
