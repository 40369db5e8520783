"""python -m harness.report FOLDER: rebuild tables, plots and reports from stored rows.

A run folder (with records.parquet) gets its plots and report.md; any other folder (a
sweep, or a parent of several) gets the sweep report over every finished run below it.
Damaged record files are left out with a warning; a problem is one line on stderr with
the exit status of harness.errors.EXIT (2: nothing was written, 6: not everything was).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from harness.claims import Claim, check_writable
from harness.errors import EXIT, DydxError, FolderError, Incomplete
from harness.report.run_page import rebuild_run
from harness.report.sweep_page import EMBED_RUNS, write_sweep_report
from harness.results import RECORDS
from harness.study.record import OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.report",
        description="Rebuild tables, plots and reports from stored records. A run folder "
                    "(with records.parquet) gets its plots and report.md; any other folder gets "
                    "the sweep report over every finished run below it.")
    parser.add_argument("folder", type=Path, help="a run folder, a sweep folder, or a parent of several")
    parser.add_argument("--embed-runs", type=int, default=EMBED_RUNS, metavar="N",
                        help=f"embed each run's own plots when there are at most N runs "
                             f"(default {EMBED_RUNS})")

    def error(message: str) -> None:  # argparse would print its usage: several lines
        raise DydxError(f"{message}; usage: python -m harness.report FOLDER [--embed-runs N]")

    parser.error = error
    return parser


def rebuild(folder: Path, embed_runs: int = EMBED_RUNS) -> None:
    """Rebuild a run's or a sweep's views, printing what was written; DydxError if not."""
    if not folder.is_dir():
        raise FolderError(f"{folder} is not a folder")
    check_writable(folder)
    with Claim(folder):  # not while a run or a sweep is writing there
        if (folder / f"{RECORDS}.parquet").exists():
            return _rebuild_run(folder)
        outcome = write_sweep_report(folder, embed_runs=embed_runs)
    for path in outcome.damaged:
        print(f"dydx: warning: {path} is damaged (cannot be read) and was left out; rerun "
              f"its job to replace it", file=sys.stderr)
    records = outcome.records
    ok = int((records["status"] == OK).sum())
    print(f"dydx: {len(records)} records ({ok} ok, {len(records) - ok} failed)")
    for name, path in outcome.paths.items():
        print(f"{name}: {path}")


def _rebuild_run(folder: Path) -> None:
    written, problem = rebuild_run(folder)
    for path in written:
        print(f"wrote {path}")
    if problem:
        raise Incomplete(problem)


def main(argv: Optional[list[str]] = None) -> int:
    try:
        args = _parser().parse_args(argv)
        rebuild(args.folder, args.embed_runs)
    except FileNotFoundError as err:  # a folder without finished runs
        print(f"dydx: error: {err}", file=sys.stderr)
        return EXIT["usage"]
    except DydxError as err:
        print(f"dydx: error: {err}", file=sys.stderr)
        return err.exit_status
    except OSError as err:
        print(f"dydx: error: cannot write the report in {err.filename or 'the folder'}: "
              f"{err.strerror or err}", file=sys.stderr)
        return EXIT["incomplete"]
    return EXIT["ok"]


if __name__ == "__main__":
    raise SystemExit(main())
