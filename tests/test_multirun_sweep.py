"""Sweeps on real (small) studies: one row per job, resume, failure rows, a reused folder.

Each sweep runs `python run.py -m ...` inside this process (tests/support.run_sweep: runpy,
so Hydra sees run.py as the entry script exactly as from a shell), without the ~5 s
start-up a subprocess pays; still seconds per sweep, so slow. The subprocess paths
(joblib, submitit, a killed sweep) are in test_multirun_cli.py.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.results import MANIFEST, is_complete, job_key, load_records
from support import ROOT, SMALL_SWEEP, run_py, run_sweep

pytestmark = pytest.mark.slow


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_summary_holds_exactly_one_row_per_job(small_sweep):
    folder, _ = small_sweep
    manifest = json.loads((folder / MANIFEST).read_text())
    summary = pd.read_parquet(folder / "summary.parquet")
    assert manifest["total"] == 12 == len(summary)
    assert sorted(summary["overrides"].map(job_key)) == \
        sorted(job_key(job) for job in manifest["jobs"])
    assert sorted(summary["job_num"]) == list(range(12))
    assert (summary["status"] == "ok").all()
    assert len(pd.read_csv(folder / "summary.csv")) == 12
    assert "raw_times_s" in summary.columns and "raw_times_s" not in pd.read_csv(folder / "summary.csv")


def test_summary_rows_equal_the_job_records(small_sweep):
    folder, _ = small_sweep
    summary = pd.read_parquet(folder / "summary.parquet").set_index("job_dir")
    for path in folder.glob("*/records.parquet"):
        record = pd.read_parquet(path).iloc[0]
        row = summary.loc[path.parent.name]
        for column in ("fn", "method", "dtype", "max_abs_err", "median_ulp", "points_per_s"):
            assert row[column] == record[column]


def test_records_carry_launcher_and_workers(small_sweep):
    folder, _ = small_sweep
    summary = pd.read_parquet(folder / "summary.parquet")
    assert set(summary["launcher"]) == {"basic"}
    assert set(summary["n_workers"]) == {1}
    assert not summary["parallel"].any()
    finite = summary[summary["method"] == "finite"].iloc[0]
    assert json.loads(finite["method_params"]) == {"scheme": "central", "h": None}


def test_every_job_prints_one_line_with_index_config_and_numbers(small_sweep):
    folder, printed = small_sweep
    lines = [line for line in printed.splitlines() if line.startswith("[") and "[HYDRA]" not in line]
    assert len(lines) == 12
    assert lines[0].startswith("[1/12] fn=sin method=autograd dtype=float32: max |err| ")
    assert "points/s" in lines[0] and lines[-1].startswith("[12/12] fn=tanh method=finite")
    assert f"dydx: report.html: {folder / 'report.html'}" in printed


def test_resume_recomputes_exactly_the_missing_job(small_sweep, tmp_path, reference_cache):
    original, _ = small_sweep
    folder = tmp_path / "copy"
    shutil.copytree(original, folder)
    (folder / "4_sin_finite_float32" / "records.parquet").unlink()
    before = {job.name: folder_bytes(job) for job in folder.iterdir() if job.is_dir()}
    printed = run_sweep(folder, reference_cache, *SMALL_SWEEP)
    assert "11 already finished there and will be skipped" in printed
    assert printed.count("skipped, finished earlier in") == 11
    ran = [line for line in printed.splitlines() if line.startswith("[5/12]")]
    assert len(ran) == 1 and "max |err|" in ran[0] and "skipped" not in ran[0]
    assert is_complete(folder / "4_sin_finite_float32")
    for name, files in before.items():
        if name not in ("4_sin_finite_float32", "tables", "plots"):
            assert folder_bytes(folder / name) == files, name
    summary = pd.read_parquet(folder / "summary.parquet")
    assert len(summary) == 12 and summary["overrides"].is_unique


def test_resume_matches_jobs_by_overrides_not_order(small_sweep, tmp_path, reference_cache):
    original, _ = small_sweep
    folder = tmp_path / "reordered"
    shutil.copytree(original, folder)
    printed = run_sweep(folder, reference_cache, *reversed(SMALL_SWEEP))
    assert printed.count("skipped, finished earlier in") == 12
    assert len(pd.read_parquet(folder / "summary.parquet")) == 12


def test_a_partial_job_folder_never_reaches_the_summary(small_sweep, tmp_path):
    folder = tmp_path / "partial"
    shutil.copytree(small_sweep[0], folder)
    (folder / "0_sin_autograd_float32" / "records.parquet").unlink()
    records = load_records(folder)
    assert len(records) == 11 and "0_sin_autograd_float32" not in set(records["job_dir"])


def test_failed_jobs_become_status_rows_and_the_others_run(tmp_path, reference_cache,
                                                          monkeypatch):
    monkeypatch.chdir(ROOT)  # fn=py imports tests.userpkg from the working directory
    folder = tmp_path / "failing"
    printed = run_sweep(folder, reference_cache, "method=finite", "method.scheme=central,bogus",
                        "fn=sin,py", "fn.target=tests.userpkg.hostile:raises", "grid.n=50",
                        "timing.enabled=false")
    summary = pd.read_parquet(folder / "summary.parquet")
    assert len(summary) == 4
    user_code = summary["fn"] == "tests.userpkg.hostile:raises"
    bogus = summary["overrides"].str.contains("bogus")
    ok = summary[~user_code & ~bogus]
    assert list(ok["status"]) == ["ok"] and ok["max_abs_err"].iloc[0] > 0
    assert set(summary.loc[bogus, "status"]) == {"invalid"}
    assert summary.loc[bogus, "status_reason"].str.startswith("unknown method.scheme 'bogus'").all()
    error = summary[user_code & ~bogus].iloc[0]
    job_dir = folder / error["job_dir"]
    assert (error["status"], error["status_reason"]) == (
        "error", f"ValueError: my op is broken (traceback: {job_dir / 'traceback.txt'})")
    assert (error["method"], error["scheme"]) == ("finite", "central")
    assert 'raise ValueError("my op is broken")' in (job_dir / "traceback.txt").read_text()
    assert "dydx: 4 records: 1 ok, 2 invalid, 1 error" in printed
    assert "Traceback" not in printed
    report = (folder / "report.md").read_text()
    assert "## Jobs without numbers" in report and "my op is broken" in report


def test_a_network_job_with_a_method_without_a_network_form_is_an_invalid_row(tmp_path,
                                                                              reference_cache):
    folder = tmp_path / "network"
    printed = run_sweep(folder, reference_cache, "fn=tutorial_mlp",
                        "method=autograd,complex_step", "timing.enabled=false")
    summary = pd.read_parquet(folder / "summary.parquet").set_index("method")
    assert summary.loc["autograd", "status"] == "ok"
    assert (summary.loc["complex_step", "status"], summary.loc["complex_step", "fn"]) == \
        ("invalid", "tutorial_mlp")
    assert summary.loc["complex_step", "status_reason"] == (
        "method complex_step does not apply to networks (it needs an elementwise function); "
        "for networks choose one of: autograd, backward, finite, forward_ad, loop")
    assert "dydx: 2 records: 1 ok, 1 invalid" in printed


def test_a_reused_folder_of_another_sweep_is_not_overwritten(small_sweep, tmp_path,
                                                             reference_cache):
    folder = tmp_path / "reused"
    shutil.copytree(small_sweep[0], folder)
    before = folder_bytes(folder / "0_sin_autograd_float32")
    result = run_py("-m", "fn=sin", "method=autograd", "dtype=float32,float64", "grid.n=61",
                    "timing.enabled=false", f"hydra.sweep.dir={folder}",
                    f"reference.cache_dir={reference_cache}", "device=cpu")
    assert "not run:" in result.stderr and "holds a finished run of another job" in result.stderr
    assert folder_bytes(folder / "0_sin_autograd_float32") == before
    assert "0/2 jobs have a record" in result.stdout
    assert result.status == 6
    assert result.stderr.splitlines()[-1].startswith(
        "dydx: error: 2 of 2 jobs have no record (interrupted, or their folder holds another "
        "sweep's run): python ")
