"""Speed of the harness's own hot paths (pytest-benchmark).

    pytest benchmarks --benchmark-enable                      # measure
    pytest benchmarks --benchmark-enable --benchmark-autosave # keep results in .benchmarks/

Speed targets live here, never in the unit tests: the development machine is shared and
noisy. Each benchmark also asserts its result is right, so a fast wrong answer fails.
The harness itself: a default run's work after the imports (`python run.py` in this
process), a sweep's cost per job with timing off (1 job and 8 jobs: the difference / 7
is what each further job costs), and the reference's throughput (points/s in extra_info).
The whole-process numbers (wall against `import torch`, +sweep=methods) are in
benchmarks/done_means.py.
"""
import contextlib
import io
import itertools
import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from harness.functions.catalog import FUNCTIONS
from harness.methods import METHODS
from harness.study.metrics import summarize
from harness.study.reference import mpmath_reference

N = 100_000
# Measured apart: the per-point loop (test_loop_per_point_cost), torch.compile (its first
# call compiles) and the NumPy peers.
APART = ("compiled", "scipy", "numdifftools")
FAST = [name for name in METHODS.names()
        if not METHODS.get(name).per_point and name not in APART]


@pytest.fixture(scope="module")
def grid():
    return torch.linspace(-10, 10, N, dtype=torch.float64)


@pytest.mark.parametrize("name", FAST)
def test_method_throughput_sin_float64(benchmark, grid, name):
    f = FUNCTIONS.get("sin").callable_for(torch.float64, "cpu")
    result = benchmark(METHODS.get(name).fn, f, grid)
    value = result[0] if isinstance(result, tuple) else result
    assert torch.allclose(value, torch.cos(grid), rtol=0, atol=1e-8)


def test_loop_per_point_cost(benchmark):
    x = torch.linspace(-3, 3, 500, dtype=torch.float64)
    f = FUNCTIONS.get("tanh").callable_for(torch.float64, "cpu")
    result = benchmark(METHODS.get("loop").fn, f, x)
    assert torch.allclose(result, 1 - torch.tanh(x) ** 2, rtol=0, atol=1e-15)


def test_mpmath_reference_2000_points(benchmark):
    x = np.arange(-10, 10, 0.01)
    hi, _ = benchmark(mpmath_reference, FUNCTIONS.get("gelu").symbolic(), x, 50)
    assert hi.shape == x.shape and np.all(np.isfinite(hi))
    if benchmark.stats:  # None when benchmarks are disabled (a plain test run)
        benchmark.extra_info["points_per_s"] = x.size / benchmark.stats.stats.median


def test_metrics_summarize_1e6_points(benchmark):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(1_000_000)
    df = ref * (1 + 1e-16 * rng.standard_normal(ref.size))
    stats = benchmark(summarize, df, ref, np.zeros_like(ref), np.zeros(ref.size, bool),
                      torch.float64)
    assert stats["max_rel_err"] < 1e-15


# --- the harness around a study -------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
COUNTER = itertools.count()


def run_py(*args: str) -> str:
    """`python run.py args` in this process (imports already paid); what it printed."""
    out, saved = io.StringIO(), sys.argv
    sys.argv = [str(ROOT / "run.py"), *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
    except SystemExit as exit_:
        assert not exit_.code, out.getvalue()
    finally:
        sys.argv = saved
    return out.getvalue()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-reference-cache")


def test_default_run_after_imports(benchmark, tmp_path, cache):
    """What `python run.py` does beyond importing: compose, study, timing, files, plots."""
    def once():
        folder = tmp_path / f"run{next(COUNTER)}"
        run_py(f"hydra.run.dir={folder}", f"reference.cache_dir={cache}", "device=cpu")
        return folder

    run_py(f"hydra.run.dir={tmp_path / 'warm'}", f"reference.cache_dir={cache}", "device=cpu")
    folder = benchmark.pedantic(once, rounds=3, iterations=1)
    record = pd.read_parquet(folder / "records.parquet").iloc[0]
    assert record["status"] == "ok" and record["max_ulp"] <= 1.0 and record["time_median_s"] > 0


SWEEP = ("fn=sin,tanh", "method=autograd,finite", "dtype=float32,float64")


@pytest.mark.parametrize("jobs", [1, 8])
def test_sweep_with_timing_off(benchmark, tmp_path, cache, jobs):
    """An in-process sweep of 1 or 8 jobs, timing off: (8 jobs - 1 job) / 7 per job."""
    overrides = SWEEP if jobs == 8 else ("fn=sin", "method=autograd", "dtype=float64")

    def once():
        folder = tmp_path / f"sweep{next(COUNTER)}"
        run_py("-m", *overrides, "timing.enabled=false", "device=cpu",
               f"reference.cache_dir={cache}", f"hydra.sweep.dir={folder}")
        return folder

    once()  # the reference cache, and the first plots' font caches
    folder = benchmark.pedantic(once, rounds=3, iterations=1)
    summary = pd.read_parquet(folder / "summary.parquet")
    assert len(summary) == jobs and (summary["status"] == "ok").all()
    if benchmark.stats:
        benchmark.extra_info["seconds_per_job"] = benchmark.stats.stats.median / jobs
