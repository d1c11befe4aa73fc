"""`trials report <run_dir | metrics table | TinyTroupe .json | multirun dir> [--out DIR] [--control ARM]
[--paired | --unpaired] [--force]`."""

from __future__ import annotations

import argparse
import logging
import sys

from reports.load import ReportError
from reports.render import render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trials report",
        description="Render report.md + a self-contained report.html (with figures/) for a run directory, "
                    "a metrics .csv/.parquet, a TinyTroupe result .json, or a sweep's multirun directory.")
    parser.add_argument("path", help="run directory, metrics table, TinyTroupe .json, or multirun directory")
    parser.add_argument("--out", default=None,
                        help="output directory (default: the run directory; ./<name>_report for a file)")
    parser.add_argument("--control", default=None,
                        help="control arm (as `trials analyze --control`; recomputes the analysis tables)")
    pairing = parser.add_mutually_exclusive_group()
    pairing.add_argument("--paired", dest="paired", action="store_const", const=True,
                         help="treat replicate r of every arm as a pair (recomputes the analysis tables)")
    pairing.add_argument("--unpaired", dest="paired", action="store_const", const=False)
    parser.add_argument("--force", action="store_true",
                        help="with --control/--paired/--unpaired and no --out: replace the run's own analysis/ "
                             "and report.html with the re-analysis")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        paths = render(args.path, args.out, control=args.control, paired=args.paired, force=args.force)
    except ReportError as exc:  # load() wraps analysis errors in ReportError, keeping their message
        print(f"trials report: {exc}", file=sys.stderr)
        return 2
    print(f"report: {paths.markdown}")
    print(f"report: {paths.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
