"""Results on disk: a run folder's data files, and the one loader of stored records.

A run folder holds config.yaml, points.{csv,parquet} and records.{csv,parquet}; every
file is written atomically (harness.atomic), and `records.parquet` last: its presence
marks the run as complete, so a killed run is never taken for a finished one. Derived
files (plots, report.md) are the report layer's (harness.report).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pandas as pd

from harness.atomic import atomic_write, atomic_write_text

RECORDS = "records"
POINTS = "points"
CONFIG = "config.yaml"
MANIFEST = "sweep.json"
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


def write_record(run_dir: Path, record: dict) -> None:
    """The one-row records table: written last, it marks the run complete."""
    write_table(pd.DataFrame([record]), run_dir, RECORDS)


def job_key(overrides: list[str] | str) -> str:
    """A job's identity: its task overrides, order-free ("fn=sin dtype=float32" == reversed)."""
    text = overrides if isinstance(overrides, str) else " ".join(overrides)
    return " ".join(sorted(token for token in text.split(" ") if token))


def is_complete(run_dir: Path) -> bool:
    return (Path(run_dir) / f"{RECORDS}.parquet").exists()


def load_record(run_dir: Path) -> dict:
    """One run's record, as a dict."""
    return pd.read_parquet(Path(run_dir) / f"{RECORDS}.parquet").iloc[0].to_dict()


def load_points(run_dir: Path) -> pd.DataFrame:
    """One run's points table (empty when the run stored none)."""
    path = Path(run_dir) / f"{POINTS}.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def finished_runs(folder: Path) -> list[Path]:
    """Every complete run folder under `folder` (itself included), sorted."""
    return sorted(p.parent for p in Path(folder).rglob(f"{RECORDS}.parquet"))


def load_records(folder: Path) -> pd.DataFrame:
    """Every finished record under `folder`, one row each, with `job_dir` relative to it.

    Only records.parquet counts: it is written last, so a job killed halfway contributes
    nothing (never a partial row). Rows are ordered by sweep position, then folder.
    """
    folder = Path(folder)
    frames = []
    for run_dir in finished_runs(folder):
        frame = pd.read_parquet(run_dir / f"{RECORDS}.parquet")
        frame["job_dir"] = str(run_dir.relative_to(folder)) or "."
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    records = pd.concat(frames, ignore_index=True)
    order = [c for c in ("job_num", "job_dir") if c in records.columns]
    return records.sort_values(order, kind="stable").reset_index(drop=True)


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
