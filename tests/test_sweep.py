"""Sweeps on real (small) studies: aggregation, resume, failure rows, launcher context.

Each sweep runs `python run.py -m ...` inside this process (runpy, so Hydra sees run.py
as the entry script exactly as from a shell), without the ~5 s start-up a subprocess pays.
The subprocess paths (joblib, submitit, a killed sweep) are in test_sweep_cli.py.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from harness import sweep
from harness.results import is_complete
from support import run_sweep

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["fn=sin,tanh", "method=autograd,loop,finite", "dtype=float32,float64", "grid.n=60",
         "timing.min_run_time=0.02"]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory, reference_cache) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("sweeps") / "small"
    return folder, run_sweep(folder, reference_cache, *SMALL)


def test_summary_holds_exactly_one_row_per_job(small):
    folder, _ = small
    manifest = json.loads((folder / sweep.MANIFEST).read_text())
    summary = pd.read_parquet(folder / "summary.parquet")
    assert manifest["total"] == 12 == len(summary)
    assert sorted(summary["overrides"].map(sweep.job_key)) == \
        sorted(sweep.job_key(job) for job in manifest["jobs"])
    assert sorted(summary["job_num"]) == list(range(12))
    assert (summary["status"] == "ok").all()
    assert len(pd.read_csv(folder / "summary.csv")) == 12
    assert "raw_times_s" in summary.columns and "raw_times_s" not in pd.read_csv(folder / "summary.csv")


def test_summary_rows_equal_the_job_records(small):
    folder, _ = small
    summary = pd.read_parquet(folder / "summary.parquet").set_index("job_dir")
    for path in folder.glob("*/records.parquet"):
        record = pd.read_parquet(path).iloc[0]
        row = summary.loc[path.parent.name]
        for column in ("fn", "method", "dtype", "max_abs_err", "median_ulp", "points_per_s"):
            assert row[column] == record[column]


def test_records_carry_launcher_and_workers(small):
    folder, _ = small
    summary = pd.read_parquet(folder / "summary.parquet")
    assert set(summary["launcher"]) == {"basic"}
    assert set(summary["n_workers"]) == {1}
    assert not summary["parallel"].any()
    finite = summary[summary["method"] == "finite"].iloc[0]
    assert json.loads(finite["method_params"]) == {"scheme": "central", "h": None}


def test_every_job_prints_one_line_with_index_config_and_numbers(small):
    _, printed = small
    lines = [line for line in printed.splitlines() if line.startswith("[") and "[HYDRA]" not in line]
    assert len(lines) == 12
    assert lines[0].startswith("[1/12] fn=sin method=autograd dtype=float32: max |err| ")
    assert "points/s" in lines[0] and lines[-1].startswith("[12/12] fn=tanh method=finite")
    assert f"dydx: report.html: {small[0] / 'report.html'}" in printed


def test_sweep_folder_holds_tables_plots_and_both_reports(small):
    folder, _ = small
    for name in ("summary.csv", "summary.parquet", "report.md", "report.html",
                 "tables/accuracy.csv", "tables/throughput.csv", "tables/error_vs_best.csv",
                 "tables/per_point_vs_autograd.csv", "plots/frontier.png"):
        assert (folder / name).is_file(), name


def test_accuracy_pivot_cells_are_the_records_values(small):
    folder, _ = small
    records = sweep.gather(folder)
    table = sweep.accuracy_table(records)
    assert list(table.index.names) == ["fn", "dtype"]
    assert list(dict.fromkeys(table.columns.get_level_values("variant"))) == \
        ["autograd", "loop", "finite"]
    for _, record in records.iterrows():
        key = (record["fn"], record["dtype"])
        assert table.loc[key, (record["method"], "max_abs_err")] == record["max_abs_err"]
        assert table.loc[key, (record["method"], "median_ulp")] == record["median_ulp"]
    speed = sweep.throughput_table(records)
    record = records[(records["fn"] == "tanh") & (records["method"] == "loop")
                     & (records["dtype"] == "float64")].iloc[0]
    assert speed.loc[("tanh", "float64"), ("loop", "points_per_s")] == record["points_per_s"]
    assert speed.loc[("tanh", "float64"), ("loop", "cost_vs_forward")] == record["cost_vs_forward"]


def test_error_vs_best_divides_by_the_row_minimum(small):
    records = sweep.gather(small[0])
    ratios = sweep.error_vs_best(records)
    errors = sweep.accuracy_table(records).xs("max_abs_err", axis=1, level="metric")
    row = ("sin", "float64")
    assert ratios.loc[row].min() == 1.0
    assert ratios.loc[row, "finite"] == errors.loc[row, "finite"] / errors.loc[row].min()


def test_per_point_slowdown_is_autograd_over_loop_throughput(small):
    records = sweep.gather(small[0])
    slow = sweep.per_point_slowdown(records).set_index(["fn", "dtype"])
    assert list(slow["per_point_method"].unique()) == ["loop"]
    pick = lambda m: records[(records["fn"] == "sin") & (records["dtype"] == "float32")  # noqa: E731
                             & (records["method"] == m)]["points_per_s"].iloc[0]
    assert slow.loc[("sin", "float32"), "slowdown"] == pick("autograd") / pick("loop")


def test_resume_recomputes_exactly_the_missing_job(small, tmp_path, reference_cache):
    original, _ = small
    folder = tmp_path / "copy"
    shutil.copytree(original, folder)
    (folder / "4_sin_finite_float32" / "records.parquet").unlink()
    before = {job.name: folder_bytes(job) for job in folder.iterdir() if job.is_dir()}
    printed = run_sweep(folder, reference_cache, *SMALL)
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


def test_resume_matches_jobs_by_overrides_not_order(small, tmp_path, reference_cache):
    original, _ = small
    folder = tmp_path / "reordered"
    shutil.copytree(original, folder)
    printed = run_sweep(folder, reference_cache, *reversed(SMALL))
    assert printed.count("skipped, finished earlier in") == 12
    assert len(pd.read_parquet(folder / "summary.parquet")) == 12


def test_a_partial_job_folder_never_reaches_the_summary(small, tmp_path):
    folder = tmp_path / "partial"
    shutil.copytree(small[0], folder)
    (folder / "0_sin_autograd_float32" / "records.parquet").unlink()
    records = sweep.gather(folder)
    assert len(records) == 11 and "0_sin_autograd_float32" not in set(records["job_dir"])


def test_failed_jobs_become_status_rows_and_the_others_run(tmp_path, reference_cache):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    folder = tmp_path / "failing"
    printed = run_sweep(folder, reference_cache, "method=finite", "method.scheme=central,bogus",
                        f"reference.cache_dir={reference_cache},{not_a_folder}", "grid.n=50",
                        "timing.enabled=false")
    summary = pd.read_parquet(folder / "summary.parquet")
    assert len(summary) == 4
    broken_cache = summary["overrides"].str.contains(str(not_a_folder))
    bogus = summary["overrides"].str.contains("bogus")
    ok = summary[~broken_cache & ~bogus]
    assert list(ok["status"]) == ["ok"] and ok["max_abs_err"].iloc[0] > 0
    assert set(summary.loc[bogus, "status"]) == {"invalid"}
    assert summary.loc[bogus, "status_reason"].str.startswith("unknown method.scheme 'bogus'").all()
    error = summary[broken_cache & ~bogus].iloc[0]
    assert error["status"] == "error"
    assert error["status_reason"].startswith("FileExistsError: ")
    assert (error["fn"], error["method"], error["scheme"]) == ("sin", "finite", "central")
    assert "dydx: 4 records: 1 ok, 2 invalid, 1 error" in printed
    report = (folder / "report.md").read_text()
    assert "## Jobs without numbers" in report and "FileExistsError" in report


def test_a_reused_folder_of_another_sweep_is_not_overwritten(small, tmp_path, reference_cache):
    folder = tmp_path / "reused"
    shutil.copytree(small[0], folder)
    before = folder_bytes(folder / "0_sin_autograd_float32")
    printed = run_sweep(folder, reference_cache, "fn=sin", "method=autograd",
                        "dtype=float32,float64", "grid.n=61", "timing.enabled=false")
    assert "not run:" in printed and "holds a finished run of another job" in printed
    assert folder_bytes(folder / "0_sin_autograd_float32") == before
    assert "0/2 jobs have a record" in printed


def test_stepsize_preset_finds_the_optimum_near_eps_cube_root(tmp_path, reference_cache):
    folder = tmp_path / "stepsize"
    run_sweep(folder, reference_cache, "+sweep=stepsize", "method.scheme=central",
              "method.h=1e-3,1e-4,1e-5,1e-6,1e-7,1e-8,1e-9", "dtype=float64", "grid.n=101")
    records = sweep.gather(folder)
    assert len(records) == 7 and set(records["h"]) == {10.0 ** -k for k in range(3, 10)}
    assert records["n_timed"].eq(0).all()  # the preset turns timing off
    table, models = sweep.stepsize_table(records, folder)
    (row,) = table.to_dict("records")
    eps = np.finfo(np.float64).eps
    assert eps ** (1 / 3) / 10 <= row["h_best"] <= eps ** (1 / 3) * 10
    assert row["C"] == pytest.approx(1 / 6, rel=1e-3)  # max |f'''| / 6 for sin on [-10, 10]
    assert row["h_model"] == pytest.approx((eps * row["F"] / (2 * row["C"])) ** (1 / 3))
    assert (folder / "tables" / "stepsize.csv").is_file()
    assert len(list((folder / "plots").glob("stepsize_*.png"))) == 1
    assert sweep.autograd_errors(records, "sin") == {}

    # autograd run into the same folder: the V plot gets its reference line.
    run_sweep(folder, reference_cache, "method=autograd", "dtype=float64", "grid.n=101",
              "timing.enabled=false")
    records = sweep.gather(folder)
    autograd = records[records["method"] == "autograd"]["max_abs_err"].iloc[0]
    assert sweep.autograd_errors(records, "sin") == {"float64": autograd}
    assert len(sweep.stepsize_rows(records)) == 7


def test_heartbeat_reports_a_long_block_until_it_ends():
    import time

    said = []
    with sweep.heartbeat(said.append, every_s=0.05):
        time.sleep(0.28)
    count = len(said)
    time.sleep(0.12)
    assert count >= 3 and len(said) == count
    assert said[0] == "still running (0 s)"


def test_step_model_optimum_solves_its_derivative():
    model = sweep.StepModel(p=2, order=1, C=1 / 6, F=1.0, eps=2.0 ** -52)
    assert model.h_opt == pytest.approx((3 * 2.0 ** -52) ** (1 / 3))
    h = model.h_opt
    assert model.error(np.array([h * 1.01]))[0] > model.err_opt
    assert model.error(np.array([h / 1.01]))[0] > model.err_opt
    assert math.isnan(sweep.StepModel(p=1, order=1, C=0.0, F=1.0, eps=1e-16).h_opt)


def test_job_key_ignores_override_order():
    assert sweep.job_key(["fn=sin", "dtype=float32"]) == sweep.job_key("dtype=float32 fn=sin")


def _hydra(launcher: dict, choice: str) -> object:
    return OmegaConf.create({"runtime": {"choices": {"hydra/launcher": choice}},
                             "launcher": launcher})


@pytest.mark.parametrize("launcher, choice, total, expected", [
    ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, "basic", 9,
     sweep.LauncherInfo("basic", 1, True)),
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
      "n_jobs": -1}, "joblib", 9, sweep.LauncherInfo("joblib", 4, True)),
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
      "n_jobs": -1}, "joblib", 3, sweep.LauncherInfo("joblib", 3, True)),
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
      "n_jobs": -2}, "joblib", 9, sweep.LauncherInfo("joblib", 3, True)),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"},
     "submitit_local", 5, sweep.LauncherInfo("submitit_local", 5, True)),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
      "array_parallelism": 64}, "slurm", 500, sweep.LauncherInfo("slurm", 64, False)),
])
def test_launcher_info_counts_concurrent_jobs(launcher, choice, total, expected):
    assert sweep.launcher_info(_hydra(launcher, choice), total, cpus=4) == expected


def test_local_parallel_jobs_share_the_cpus_as_threads():
    assert sweep.job_threads(sweep.LauncherInfo("joblib", 2, True), cpus=8) == 4
    assert sweep.job_threads(sweep.LauncherInfo("joblib", 16, True), cpus=8) == 1
    assert sweep.job_threads(sweep.LauncherInfo("basic", 1, True), cpus=8) is None
    assert sweep.job_threads(sweep.LauncherInfo("slurm", 64, False), cpus=8) is None


def test_slurm_preset_has_overridable_partition_time_and_gpus(compose_config):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                 "hydra.launcher.timeout_min=30",
                                 "hydra.launcher.gpus_per_node=1"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node) == ("gpu", 30, 1)
    assert launcher.submitit_folder.endswith("/.submitit/%j")
    info = sweep.launcher_info(cfg.hydra, total=10, cpus=2)
    assert info == sweep.LauncherInfo("slurm", 10, False)
    # What Hydra will build from it (no cluster needed until jobs are submitted).
    built = instantiate(launcher)
    assert (built.params["partition"], built.params["timeout_min"], built.params["gpus_per_node"],
            built.params["cpus_per_task"]) == ("gpu", 30, 1, 4)


def test_presets_are_global_packages_with_sweeper_params():
    for name in ("stepsize", "methods", "scaling"):
        text = (ROOT / "conf" / "sweep" / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_\n")
        assert OmegaConf.create(text).hydra.sweeper.params
    stepsize = OmegaConf.load(ROOT / "conf" / "sweep" / "stepsize.yaml").hydra.sweeper.params
    assert [float(h) for h in stepsize["method.h"].split(",")] == [10.0 ** -k for k in range(1, 16)]
    assert stepsize["method.scheme"].split(",") == ["central", "forward", "backward"]
