"""Effect sizes (Hedges' g, Cliff's delta, probability of superiority) and their bootstrap CIs.

The bootstrap is written with resampling *weights* (how many times each observation is drawn), so
the same vectorised code serves the ordinary bootstrap (observations drawn) and the cluster
bootstrap (whole sessions drawn, every agent of a drawn session gets its session's count).
"""

from __future__ import annotations

import numpy as np

NAN = float("nan")


def hedges_g(control: np.ndarray, treatment: np.ndarray) -> float:
    """Bias-corrected standardised mean difference (treatment - control) / pooled SD."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    nc, nt = len(c), len(t)
    if nc < 2 or nt < 2:
        return NAN
    sp2 = ((nc - 1) * c.var(ddof=1) + (nt - 1) * t.var(ddof=1)) / (nc + nt - 2)
    diff = t.mean() - c.mean()
    if sp2 == 0:
        return 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    j = 1 - 3 / (4 * (nc + nt) - 9)
    return float(j * diff / np.sqrt(sp2))


def cliffs_delta(control: np.ndarray, treatment: np.ndarray) -> float:
    """P(T > C) - P(T < C) over all treatment/control pairs."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    if len(c) == 0 or len(t) == 0:
        return NAN
    cs = np.sort(c)
    below = np.searchsorted(cs, t, side="left")  # control values < t
    above = len(cs) - np.searchsorted(cs, t, side="right")  # control values > t
    return float((below.sum() - above.sum()) / (len(c) * len(t)))


def prob_superiority(control: np.ndarray, treatment: np.ndarray) -> float:
    """P(T > C) + 0.5 P(T = C): the common-language effect size for ordinal scores."""
    d = cliffs_delta(control, treatment)
    return (d + 1) / 2 if np.isfinite(d) else NAN


def boot_weights(n: int, groups: np.ndarray | None, b: int, rng: np.random.Generator) -> np.ndarray:
    """(b x n) resampling counts; with `groups` (codes 0..k-1 per observation) whole groups are drawn."""
    if groups is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(float)
    k = int(groups.max()) + 1
    counts = rng.multinomial(k, np.full(k, 1.0 / k), size=b).astype(float)
    return counts[:, groups]


def _wmean_var(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = w.sum(axis=1)
    mean = w @ x / n
    var = (w @ (x * x) - n * mean**2) / np.maximum(n - 1, 1)
    return n, mean, np.maximum(var, 0.0)


def _weighted_delta(c: np.ndarray, t: np.ndarray, wc: np.ndarray, wt: np.ndarray) -> np.ndarray:
    uc, ic = np.unique(c, return_inverse=True)
    ut, it = np.unique(t, return_inverse=True)
    wcu = np.zeros((wc.shape[0], len(uc)))
    wtu = np.zeros((wt.shape[0], len(ut)))
    np.add.at(wcu.T, ic, wc.T)
    np.add.at(wtu.T, it, wt.T)
    sign = np.sign(ut[:, None] - uc[None, :])
    num = ((wtu @ sign) * wcu).sum(axis=1)
    return num / (wcu.sum(axis=1) * wtu.sum(axis=1))


MIN_BOOT_UNITS = 4


def bootstrap(control: np.ndarray, treatment: np.ndarray, *, groups_c: np.ndarray | None = None,
              groups_t: np.ndarray | None = None, n_boot: int = 2000, alpha: float = 0.05,
              rng: np.random.Generator | None = None) -> dict[str, float]:
    """Percentile bootstrap CIs for Hedges' g, Cliff's delta and the mean difference.

    Arms are resampled separately (stratified). Returns g_ci_*, delta_ci_* and diff_ci_* (the
    difference of means of the individual values). With fewer than MIN_BOOT_UNITS resampling units
    (sessions when clustered) in an arm the CIs are NaN: 2 sessions give only 3 distinct resamples,
    and percentiles of those are not a confidence interval.
    """
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    out = dict.fromkeys(("g_ci_low", "g_ci_high", "delta_ci_low", "delta_ci_high",
                         "diff_ci_low", "diff_ci_high"), NAN)
    units_c = len(np.unique(groups_c)) if groups_c is not None else len(c)
    units_t = len(np.unique(groups_t)) if groups_t is not None else len(t)
    if min(units_c, units_t) < MIN_BOOT_UNITS or n_boot < 10:
        return out
    rng = rng or np.random.default_rng(0)
    gs, ds, diffs = [], [], []
    chunk = max(50, min(n_boot, 4_000_000 // (len(c) + len(t))))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        wc = boot_weights(len(c), groups_c, b, rng)
        wt = boot_weights(len(t), groups_t, b, rng)
        nc, mc, vc = _wmean_var(c, wc)
        nt, mt, vt = _wmean_var(t, wt)
        sp = np.sqrt(((nc - 1) * vc + (nt - 1) * vt) / (nc + nt - 2))
        j = 1 - 3 / (4 * (nc + nt) - 9)
        with np.errstate(divide="ignore", invalid="ignore"):
            gs.append(np.where(sp > 0, j * (mt - mc) / sp, 0.0))
        ds.append(_weighted_delta(c, t, wc, wt))
        diffs.append(mt - mc)
        done += b
    g, d, diff = np.concatenate(gs), np.concatenate(ds), np.concatenate(diffs)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    out["g_ci_low"], out["g_ci_high"] = np.percentile(g, q)
    out["delta_ci_low"], out["delta_ci_high"] = np.percentile(d, q)
    out["diff_ci_low"], out["diff_ci_high"] = np.percentile(diff, q)
    return {k: float(v) for k, v in out.items()}
