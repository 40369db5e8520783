"""Results on disk: a run folder's data files and the one loader of stored records.

A run folder holds config.yaml, points.{csv,parquet} and records.{csv,parquet}; every
file is written atomically (harness.atomic), and `records.parquet` last: its presence
marks the run as complete, so a killed run is never taken for a finished one. A
records.parquet that cannot be read (a truncated copy, a full disk) counts as *not*
finished: the run is done again, never trusted and never a crash. Derived files (plots,
report.md) are the report layer's (harness.report).

A process writes into a folder only while it holds the folder's claim (harness.claims).
"""
from __future__ import annotations

import json
import shlex
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import pandas as pd
import pyarrow

from harness.atomic import atomic_write, atomic_write_text, temp_files
from harness.claims import LOCK, Claim
from harness.errors import FolderError

RECORDS = "records"
POINTS = "points"
CONFIG = "config.yaml"
MANIFEST = "sweep.json"
SUMMARY = "summary"
# A failed run's Python traceback (the record holds its one-line reason).
TRACEBACK = "traceback.txt"
# Every file a run writes into its folder (the views are harness.report's), so that an
# unfinished run can be removed without touching anything else there.
RUN_FILES = ("config.yaml", "points.csv", "points.parquet", "records.csv", "records.parquet",
             "report.md", "derivative.png", "error.png", TRACEBACK)
# Columns that only the parquet table keeps (lists do not belong in a CSV cell).
PARQUET_ONLY = ("raw_times_s", "raw_times_stalled", "forward_raw_times_s",
                "forward_raw_times_stalled", "time_process_medians_s")


def write_table(frame: pd.DataFrame, folder: Path, stem: str) -> None:
    """Write `stem.csv` then `stem.parquet` (the parquet last: it is the completion mark)."""
    folder = Path(folder)
    csv_frame = frame.drop(columns=[c for c in PARQUET_ONLY if c in frame.columns])
    atomic_write(folder / f"{stem}.csv", lambda tmp: csv_frame.to_csv(tmp, index=False))
    atomic_write(folder / f"{stem}.parquet", lambda tmp: frame.to_parquet(tmp, index=False))


def write_run_data(run_dir: Path, points: pd.DataFrame, config_yaml: str = "") -> None:
    """A run's config and points: everything but the record, which comes last."""
    run_dir = Path(run_dir)
    if config_yaml:
        atomic_write_text(run_dir / CONFIG, config_yaml)
    if not points.empty:
        write_table(points, run_dir, POINTS)


def write_traceback(run_dir: Path, text: str) -> Path:
    return atomic_write_text(Path(run_dir) / TRACEBACK, text)


def discard_unfinished(run_dir: Path, keep: frozenset[str] | set[str] = frozenset()) -> None:
    """Remove what an interrupted or refused run wrote (never a finished run, never a file
    it did not write, nor those named in `keep`), and the folder when nothing is left."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or is_complete(run_dir):
        return
    for path in [run_dir / name for name in RUN_FILES if name not in keep] + temp_files(run_dir):
        path.unlink(missing_ok=True)
    if not any(p.name != LOCK for p in run_dir.iterdir()):
        (run_dir / LOCK).unlink(missing_ok=True)
        run_dir.rmdir()


def write_record(run_dir: Path, record: dict) -> None:
    """The one-row records table: written last, it marks the run complete."""
    write_table(pd.DataFrame([record]), run_dir, RECORDS)


def overrides_text(overrides: list[str]) -> str:
    """A job's overrides as one string, quoted as a shell would need them, so that
    split_overrides gives back exactly the same list (the `overrides` column)."""
    return shlex.join(overrides)


def split_overrides(text: str) -> list[str]:
    """The `overrides` column back as a list (records written before quoting: split on
    blanks)."""
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: an old record's plain join
        return text.split()


def job_key(overrides: list[str] | str) -> str:
    """A job's identity: its exact task overrides, in any order. A string is a record's
    `overrides` column. Two overrides that differ in any character are different jobs
    (fn.expr="x - 1 + 2 * x" is not fn.expr="x - 2 + 1 * x")."""
    items = split_overrides(overrides) if isinstance(overrides, str) else list(overrides)
    return json.dumps(sorted(items))


def _record_frame(run_dir: Path) -> Optional[pd.DataFrame]:
    path = Path(run_dir) / f"{RECORDS}.parquet"
    if not path.is_file():
        return None
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pyarrow.ArrowException):
        return None
    return frame if len(frame) == 1 else None


def read_record(run_dir: Path) -> Optional[dict]:
    """One run's record, or None when the run has none or its records.parquet is damaged
    (truncated, not parquet, not one row): such a run is not finished."""
    frame = _record_frame(run_dir)
    return None if frame is None else frame.iloc[0].to_dict()


def is_complete(run_dir: Path) -> bool:
    return read_record(run_dir) is not None


def is_damaged(run_dir: Path) -> bool:
    """A records.parquet is there but cannot be read as one record."""
    return (Path(run_dir) / f"{RECORDS}.parquet").exists() and not is_complete(run_dir)


def load_record(run_dir: Path) -> dict:
    """One run's record, as a dict; FolderError when it has none that can be read."""
    record = read_record(run_dir)
    if record is None:
        raise FolderError(f"{run_dir} holds no finished run ({RECORDS}.parquet is "
                          f"{'damaged' if is_damaged(run_dir) else 'missing'})")
    return record


def load_points(run_dir: Path) -> pd.DataFrame:
    """One run's points table (empty when the run stored none, or it cannot be read)."""
    path = Path(run_dir) / f"{POINTS}.parquet"
    try:
        return pd.read_parquet(path) if path.is_file() else pd.DataFrame()
    except (OSError, ValueError, pyarrow.ArrowException):
        return pd.DataFrame()


@dataclass(frozen=True)
class Gathered:
    """Every finished record under a folder, and the record files that could not be read."""

    records: pd.DataFrame
    damaged: list[Path] = field(default_factory=list)


def gather_records(folder: Path) -> Gathered:
    """Every finished record under `folder`, one row each, with `job_dir` relative to it.

    Only records.parquet counts: it is written last, so a job killed halfway contributes
    nothing (never a partial row); one that cannot be read is listed in `damaged`, never
    fatal. Rows are ordered by sweep position, then folder.
    """
    folder = Path(folder)
    frames, damaged = [], []
    for path in sorted(folder.rglob(f"{RECORDS}.parquet")):
        frame = _record_frame(path.parent)
        if frame is None:
            damaged.append(path)
            continue
        frame["job_dir"] = str(path.parent.relative_to(folder)) or "."
        frames.append(frame)
    if not frames:
        return Gathered(pd.DataFrame(), damaged)
    records = pd.concat(frames, ignore_index=True)
    order = [c for c in ("job_num", "job_dir") if c in records.columns]
    return Gathered(records.sort_values(order, kind="stable").reset_index(drop=True), damaged)


def load_records(folder: Path) -> pd.DataFrame:
    """gather_records(folder).records: every finished record under `folder`."""
    return gather_records(folder).records


def finished_runs(folder: Path) -> list[Path]:
    """Every complete run folder under `folder` (itself included), sorted."""
    return sorted(p.parent for p in Path(folder).rglob(f"{RECORDS}.parquet")
                  if is_complete(p.parent))


def read_records(source: Path) -> pd.DataFrame:
    """Records from a folder (every finished run below it, see load_records) or from a
    stored table: a sweep's summary.parquet/.csv or a run's records.parquet/.csv (as copied
    from another commit or host). Raises FileNotFoundError with a one-line message."""
    source = Path(source)
    if source.is_dir():
        records = load_records(source)
        if records.empty:
            raise FileNotFoundError(f"no finished runs under {source} (a run is finished "
                                    f"when its folder holds {RECORDS}.parquet)")
        return records
    if source.is_file() and source.suffix in (".parquet", ".csv"):
        return pd.read_parquet(source) if source.suffix == ".parquet" else pd.read_csv(source)
    raise FileNotFoundError(f"{source} is neither a folder of runs nor a stored table "
                            f"(summary.parquet, summary.csv, records.parquet or records.csv)")


def write_manifest(sweep_dir: Path, manifest: dict) -> Path:
    return atomic_write_text(Path(sweep_dir) / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def read_manifest(sweep_dir: Path) -> Optional[dict]:
    path = Path(sweep_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def holds_sweep(folder: Path) -> bool:
    """A sweep lives here: its manifest, its summary, or job folders with records."""
    folder = Path(folder)
    return (folder / MANIFEST).exists() or (folder / f"{SUMMARY}.parquet").exists() or \
        any(folder.glob(f"*/{RECORDS}.parquet"))


@contextmanager
def claimed_run(run_dir: Path, knob: str,
                discard_on: tuple[type[BaseException], ...] = (BaseException,)) -> Iterator[None]:
    """`run_dir`, held by this process alone while a run writes it: FolderError (naming
    `knob`) when it holds a finished run or a sweep, another process holds it, or it cannot
    be written, and then it is left exactly as it was. If the run stops with one of
    `discard_on`, what it wrote there is removed again."""
    refuse_occupied(run_dir, knob)
    with Claim(run_dir) as claim:
        refuse_occupied(run_dir, knob)  # again, now that no one else can be writing it
        claim.remove_temp_files()
        before = {p.name for p in run_dir.iterdir()}
        try:
            yield
        except discard_on:
            discard_unfinished(run_dir, keep=before)
            raise


def refuse_occupied(run_dir: Path, knob: str) -> None:
    """FolderError when `run_dir` holds a finished run or a sweep: a single run never
    writes there (it would replace their report.md and mix its files into theirs). `knob`
    is the setting that chose the folder (hydra.run.dir, out)."""
    if is_complete(run_dir):
        raise FolderError(f"{run_dir} already holds a finished run; nothing was changed. "
                          f"Choose another {knob}")
    if holds_sweep(run_dir):
        raise FolderError(f"{run_dir} holds a sweep; nothing was changed. Choose another "
                          f"{knob} (python -m harness.report {run_dir} rebuilds the sweep's "
                          f"report)")
