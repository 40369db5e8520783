"""harness.results: atomic writes, CSV/parquet pairs, loading runs, the completion mark."""
from __future__ import annotations

import math
import os
import stat

import pandas as pd
import pytest

from harness.results import (PARQUET_ONLY, atomic_write, atomic_write_text, is_complete,
                             load_records, write_table)


def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    atomic_write(target, lambda tmp: open(tmp, "w").write("new\n"))
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_failed_write_keeps_the_previous_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "records.parquet"
    target.write_bytes(b"finished run")

    def half_then_crash(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(b"half a tab")
        raise OSError("disk full")

    with pytest.raises(OSError, match="^disk full$"):
        atomic_write(target, half_then_crash)
    assert target.read_bytes() == b"finished run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.parquet"]


def test_failed_first_write_creates_no_file(tmp_path):
    with pytest.raises(ValueError, match="^bad$"):
        atomic_write(tmp_path / "new.csv", lambda tmp: (_ for _ in ()).throw(ValueError("bad")))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_creates_missing_parent_folders(tmp_path):
    target = tmp_path / "a" / "b" / "report.md"
    atomic_write_text(target, "# report\n")
    assert target.read_text(encoding="utf-8") == "# report\n"


def test_written_file_gets_ordinary_permissions_not_mkstemps_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "report.md", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o644


def test_temp_file_lives_beside_the_target_with_its_suffix(tmp_path):
    seen = []
    atomic_write(tmp_path / "cache.npz", lambda tmp: seen.append(tmp) or open(tmp, "w").close(),
                 suffix=".npz")
    (tmp,) = seen
    assert os.path.dirname(tmp) == str(tmp_path)
    assert os.path.basename(tmp).startswith(".cache.") and tmp.endswith(".npz")


# --- CSV / parquet pairs ---------------------------------------------------------------------

FRAME = pd.DataFrame({
    "fn": ["sin", "tanh"], "method": ["autograd", "finite"], "h": [math.nan, 1e-7],
    "max_abs_err": [5.551115123125783e-17, 1.2345678901234567e-09], "n": [2000, 100000],
    "raw_times_s": [[1e-4, 2e-4], [3e-4]],
})


def test_write_table_writes_csv_and_parquet_with_the_same_rows(tmp_path):
    write_table(FRAME, tmp_path, "records")
    csv = pd.read_csv(tmp_path / "records.csv")
    parquet = pd.read_parquet(tmp_path / "records.parquet")
    pd.testing.assert_frame_equal(csv, parquet.drop(columns=["raw_times_s"]))
    assert csv["max_abs_err"].tolist() == FRAME["max_abs_err"].tolist()  # full precision


def test_raw_times_are_kept_only_in_the_parquet(tmp_path):
    assert PARQUET_ONLY == ("raw_times_s",)
    write_table(FRAME, tmp_path, "records")
    assert "raw_times_s" not in pd.read_csv(tmp_path / "records.csv").columns
    assert [list(v) for v in pd.read_parquet(tmp_path / "records.parquet")["raw_times_s"]] == \
        [[1e-4, 2e-4], [3e-4]]


def test_write_table_leaves_only_the_two_files(tmp_path):
    write_table(FRAME.drop(columns=["raw_times_s"]), tmp_path, "points")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points.csv", "points.parquet"]


def test_parquet_is_written_after_the_csv(tmp_path, monkeypatch):
    # records.parquet marks a run complete, so it must be the last file to appear.
    order = []
    real = atomic_write

    def spy(path, write, suffix=""):
        order.append(path.name)
        return real(path, write, suffix)

    monkeypatch.setattr("harness.results.atomic_write", spy)
    write_table(FRAME, tmp_path, "records")
    assert order == ["records.csv", "records.parquet"]


# --- completion and loading -----------------------------------------------------------------

def test_run_is_complete_only_once_records_parquet_exists(tmp_path):
    assert not is_complete(tmp_path)
    (tmp_path / "records.csv").write_text("fn\nsin\n")
    assert not is_complete(tmp_path)
    (tmp_path / "records.parquet").write_bytes(b"")
    assert is_complete(tmp_path)


def test_load_records_finds_runs_at_any_depth(tmp_path):
    write_table(FRAME.iloc[:1], tmp_path / "runs" / "a", "records")
    write_table(FRAME.iloc[1:], tmp_path / "sweeps" / "s1" / "0_tanh", "records")
    write_table(FRAME, tmp_path / "runs" / "a", "points")       # not a records table
    (tmp_path / "runs" / "killed").mkdir()
    (tmp_path / "runs" / "killed" / "records.csv").write_text("fn\ncos\n")  # no parquet
    loaded = load_records(tmp_path)
    assert sorted(loaded["fn"]) == ["sin", "tanh"]
    assert len(loaded) == 2
    assert list(loaded.index) == [0, 1]


def test_load_records_of_an_empty_folder_is_an_empty_frame(tmp_path):
    loaded = load_records(tmp_path)
    assert isinstance(loaded, pd.DataFrame) and loaded.empty
