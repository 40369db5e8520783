"""Tables on disk: atomic writes of CSV/parquet pairs, and loading every run under a folder.

Every write goes to a temporary file in the target folder and is then moved into place
with os.replace, so a killed run never leaves a half-written table. A run folder's
`records.parquet` is written last: its presence marks the run as complete.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd

RECORDS = "records"
POINTS = "points"
# Columns that only the parquet table keeps (lists do not belong in a CSV cell).
PARQUET_ONLY = ("raw_times_s",)


def atomic_write(path: Path, write: Callable[[str], object], suffix: str = "") -> Path:
    """Call write(tmp_path) on a temp file beside `path`, then move it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix or path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the permissions any new file gets.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_table(frame: pd.DataFrame, folder: Path, stem: str) -> None:
    """Write `stem.csv` then `stem.parquet` (the parquet last: it is the completion mark)."""
    folder = Path(folder)
    csv_frame = frame.drop(columns=[c for c in PARQUET_ONLY if c in frame.columns])
    atomic_write(folder / f"{stem}.csv", lambda tmp: csv_frame.to_csv(tmp, index=False))
    atomic_write(folder / f"{stem}.parquet", lambda tmp: frame.to_parquet(tmp, index=False))


def is_complete(run_dir: Path) -> bool:
    return (Path(run_dir) / f"{RECORDS}.parquet").exists()


def load_records(folder: Path) -> pd.DataFrame:
    """Every complete run's records under `folder` (recursively), one frame."""
    paths = sorted(Path(folder).rglob(f"{RECORDS}.parquet"))
    if not paths:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
