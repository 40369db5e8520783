"""python -m harness.report FOLDER: rebuild tables, plots and reports from stored rows.

A run folder (with records.parquet) gets its plots and report.md; any other folder (a
sweep, or a parent of several) gets the sweep report over every finished run below it."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from harness.report.run_page import rebuild_run
from harness.report.sweep_page import EMBED_RUNS, write_sweep_report
from harness.results import RECORDS
from harness.study.record import OK


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.report",
        description="Rebuild tables, plots and reports from stored records. A run folder "
                    "(with records.parquet) gets its plots and report.md; any other folder gets "
                    "the sweep report over every finished run below it.")
    parser.add_argument("folder", type=Path, help="a run folder, a sweep folder, or a parent of several")
    parser.add_argument("--embed-runs", type=int, default=EMBED_RUNS, metavar="N",
                        help=f"embed each run's own plots when there are at most N runs "
                             f"(default {EMBED_RUNS})")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"dydx: error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    if (args.folder / f"{RECORDS}.parquet").exists():
        for path in rebuild_run(args.folder):
            print(f"wrote {path}")
        return 0
    try:
        outcome = write_sweep_report(args.folder, embed_runs=args.embed_runs)
    except FileNotFoundError as err:
        print(f"dydx: error: {err}", file=sys.stderr)
        return 2
    records = outcome.records
    ok = int((records["status"] == OK).sum())
    print(f"dydx: {len(records)} records ({ok} ok, {len(records) - ok} failed)")
    for name, path in outcome.paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
