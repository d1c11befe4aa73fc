"""Peak memory and time of `analysis.compare` on a large table (issue 12, defect 10: the old Cliff's
delta bootstrap asked 466 GiB for 10^6 rows).

    python benchmarks/analysis_memory.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import pandas as pd

from analysis import compare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    n = ap.parse_args().rows
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"arm": np.where(np.arange(n) < 0.4 * n, "control", "treatment"), "metric": "score",
                       "value": rng.normal(size=n), "level": "session", "scale": "real"})
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = compare(df, n_boot=200, mixed=False).iloc[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{n} rows: {time.perf_counter() - t0:.0f} s, peak RSS {peak:.2f} GiB; "
          f"delta {row['cliffs_delta']:+.4f} [{row['delta_ci_low']:+.4f}, {row['delta_ci_high']:+.4f}]")


if __name__ == "__main__":
    main()
