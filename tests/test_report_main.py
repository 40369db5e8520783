"""`python -m harness.report FOLDER` (harness.report.__main__): rebuild a sweep's or a run's
views from stored rows alone."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from harness.report.__main__ import main


@pytest.mark.slow
def test_rebuild_from_stored_rows_reproduces_the_report(small_sweep, tmp_path, capsys):
    built, _ = small_sweep
    folder = tmp_path / "copy" / built.name  # the title names the folder
    shutil.copytree(built, folder)
    for name in ("summary.csv", "summary.parquet", "report.md", "report.html"):
        (folder / name).unlink()
    shutil.rmtree(folder / "plots")
    shutil.rmtree(folder / "tables")
    assert main([str(folder)]) == 0
    printed = capsys.readouterr().out
    assert "dydx: 12 records (12 ok, 0 failed)" in printed
    assert f"report.html: {folder / 'report.html'}" in printed
    assert pd.read_parquet(folder / "summary.parquet").drop(columns="job_dir").equals(
        pd.read_parquet(built / "summary.parquet").drop(columns="job_dir"))
    assert (folder / "plots" / "frontier.png").is_file()
    strip = lambda t: t.replace(str(folder), "X").replace(str(built), "X")  # noqa: E731
    assert strip((folder / "report.md").read_text()) == strip((built / "report.md").read_text())


@pytest.mark.slow
def test_rebuilding_a_run_folder_rewrites_its_plots_and_report(small_sweep, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_sweep[0] / "1_sin_autograd_float64", run)
    records = (run / "records.parquet").read_bytes()
    for name in ("report.md", "derivative.png", "error.png"):
        (run / name).unlink()
    assert main([str(run)]) == 0
    assert {p.name for p in run.iterdir()} >= {"report.md", "derivative.png", "error.png"}
    assert (run / "records.parquet").read_bytes() == records
    assert f"wrote {run / 'report.md'}" in capsys.readouterr().out


def test_a_folder_without_finished_runs_is_an_error(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "points.csv").write_text("x\n1\n")
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"dydx: error: no finished runs under {tmp_path} (a run is "
                                       f"finished when its folder holds records.parquet)\n")
    assert main([str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"dydx: error: {tmp_path / 'missing'} is not a folder\n"
