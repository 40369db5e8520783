"""harness.results: CSV/parquet pairs, the completion mark, loading runs and the manifest."""
from __future__ import annotations

import math

import pandas as pd

from harness.atomic import atomic_write
from harness.results import (PARQUET_ONLY, is_complete, is_damaged, job_key, load_points, load_record,
                             load_records, read_manifest, write_manifest, write_record,
                             write_run_data, write_table)


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
    assert PARQUET_ONLY == ("raw_times_s", "raw_times_stalled", "forward_raw_times_s",
                            "forward_raw_times_stalled", "time_process_medians_s")
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

def test_run_is_complete_only_once_a_readable_records_parquet_exists(tmp_path):
    assert not is_complete(tmp_path)
    (tmp_path / "records.csv").write_text("fn\nsin\n")
    assert not is_complete(tmp_path)
    (tmp_path / "records.parquet").write_bytes(b"")  # a killed copy: damaged, not finished
    assert not is_complete(tmp_path) and is_damaged(tmp_path)
    write_record(tmp_path, {"fn": "sin"})
    assert is_complete(tmp_path) and not is_damaged(tmp_path)


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


def test_load_records_orders_rows_by_sweep_position_and_names_their_folders(tmp_path):
    for num, name in ((2, "c"), (0, "b"), (1, "a")):
        write_record(tmp_path / name, {"fn": name, "job_num": num})
    loaded = load_records(tmp_path)
    assert loaded["fn"].tolist() == ["b", "a", "c"]
    assert loaded["job_dir"].tolist() == ["b", "a", "c"]


def test_a_run_folder_round_trips_its_record_points_and_config(tmp_path):
    points = pd.DataFrame({"x": [0.5, 1.5], "df": [1.0, 2.0]})
    write_run_data(tmp_path, points, "fn:\n  name: sin\n")
    assert not is_complete(tmp_path)  # the record comes last
    write_record(tmp_path, {"fn": "sin", "max_abs_err": 2.0 ** -53})
    assert is_complete(tmp_path)
    assert load_record(tmp_path) == {"fn": "sin", "max_abs_err": 2.0 ** -53}
    pd.testing.assert_frame_equal(load_points(tmp_path), points)
    assert (tmp_path / "config.yaml").read_text() == "fn:\n  name: sin\n"


def test_a_run_without_points_loads_an_empty_points_table(tmp_path):
    write_run_data(tmp_path, pd.DataFrame())
    write_record(tmp_path, {"fn": "sin", "status": "invalid"})
    assert load_points(tmp_path).empty
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.csv", "records.parquet"]


# --- the manifest and job identity ---------------------------------------------------------

def test_manifest_round_trips_and_a_missing_or_broken_one_reads_as_none(tmp_path):
    assert read_manifest(tmp_path) is None
    write_manifest(tmp_path, {"total": 2, "jobs": [["fn=sin"], ["fn=tanh"]]})
    assert read_manifest(tmp_path) == {"total": 2, "jobs": [["fn=sin"], ["fn=tanh"]]}
    (tmp_path / "sweep.json").write_text("{half")
    assert read_manifest(tmp_path) is None


def test_job_key_ignores_override_order():
    assert job_key(["fn=sin", "dtype=float32"]) == job_key("dtype=float32 fn=sin") == \
        '["dtype=float32", "fn=sin"]'
