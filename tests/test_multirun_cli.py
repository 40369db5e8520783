"""Sweeps through a real `python run.py -m ...` subprocess: the joblib and submitit
launchers, --help (kills and resumes: test_kill_resume.py). Each subprocess pays ~5-10 s of
Python start-up, so these are marked slow.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.multirun.launchers import available_cpus

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "run.py"), *args]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_joblib_runs_in_parallel_and_marks_the_timings(tmp_path, reference_cache):
    folder = tmp_path / "joblib"
    result = run("-m", "hydra/launcher=joblib", "fn=sin,tanh", "method=autograd,loop",
                 "grid.n=60", "timing.min_run_time=0.02", "timing.max_run_time=0.1",
                 f"hydra.sweep.dir={folder}",
                 f"reference.cache_dir={reference_cache}")
    assert result.returncode == 0, result.stderr
    summary = pd.read_parquet(folder / "summary.parquet")
    workers = min(4, available_cpus())
    assert len(summary) == 4 and set(summary["launcher"]) == {"joblib"}
    assert set(summary["n_workers"]) == {workers}
    assert set(summary["parallel"]) == {workers > 1}
    # 60 points: timed on one thread (the default below 32768 points), whatever the share.
    assert set(summary["num_threads"]) == {1}
    assert set(summary["num_threads_rule"]) == {"auto: 1 below 32768 points"}
    if workers > 1:
        assert "†" in (folder / "report.md").read_text()
        assert "timings taken in parallel are contended" in result.stdout
    assert sorted(line.split("]")[0] for line in result.stdout.splitlines()
                  if line[:1] == "[" and "[HYDRA]" not in line) == ["[1/4", "[2/4", "[3/4", "[4/4"]
    # joblib's own per-job lines ("#0 : fn=sin ...") would double dydx's.
    assert not re.search(r"\[HYDRA\]\s+#\d+ :", result.stdout)


def test_submitit_local_runs_the_same_jobs_and_echoes_them(tmp_path, reference_cache):
    folder = tmp_path / "submitit"
    result = run("-m", "hydra/launcher=submitit_local", "fn=sin,tanh", "grid.n=60",
                 "timing.enabled=false", f"hydra.sweep.dir={folder}",
                 f"reference.cache_dir={reference_cache}")
    assert result.returncode == 0, result.stderr
    summary = pd.read_parquet(folder / "summary.parquet")
    assert sorted(summary["fn"]) == ["sin", "tanh"]
    assert set(summary["launcher"]) == {"submitit_local"} and set(summary["n_workers"]) == {2}
    assert "dydx: [1] sin | autograd | float64 | cpu | n=60: max |err| " in result.stdout
    assert "dydx: 2/2 jobs have a record" in result.stdout
    logs = list((folder / ".submitit").glob("*/*_log.out"))
    assert any("[1/2] fn=sin: max |err|" in log.read_text() for log in logs)


@pytest.fixture(scope="module")
def help_result() -> subprocess.CompletedProcess:
    """`python run.py --help`, run once for the tests below (each run pays the start-up)."""
    return run("--help")


def test_help_lists_the_presets_and_launchers(help_result):
    result = help_result
    assert result.returncode == 0, result.stderr
    for name in ("atlas", "methods", "scaling", "stepsize"):
        assert f"\n  {name:<16}" in result.stdout
    assert "  stepsize        Error against step size: every finite-difference scheme" in result.stdout
    for launcher in ("basic", "joblib", "slurm", "submitit_local"):
        assert f"\n  {launcher:<16}" in result.stdout
    assert "  joblib          Parallel on this machine, one job per CPU" in result.stdout


def test_help_lists_every_torch_op_from_the_registry(help_result):
    from harness.functions.torch_ops import TORCH_OPS

    result = help_result
    assert result.returncode == 0, result.stderr
    assert "== Torch ops (python run.py fn=torch fn.name=NAME" in result.stdout
    assert ", ".join(TORCH_OPS.names()) in result.stdout


def test_an_unknown_preset_fails_before_any_job():
    result = run("-m", "+sweep=nope")
    assert result.returncode == 2
    assert result.stderr == ("dydx: error: unknown sweep 'nope'; choose one of: atlas, "
                             "methods, scaling, stepsize\n")
