"""Speed of the harness's own hot paths (pytest-benchmark).

    pytest benchmarks --benchmark-enable                      # measure
    pytest benchmarks --benchmark-enable --benchmark-autosave # keep results in .benchmarks/

Speed targets live here, never in the unit tests: the development machine is shared and
noisy. Each benchmark also asserts its result is right, so a fast wrong answer fails.
"""
import numpy as np
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


def test_metrics_summarize_1e6_points(benchmark):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(1_000_000)
    df = ref * (1 + 1e-16 * rng.standard_normal(ref.size))
    stats = benchmark(summarize, df, ref, np.zeros_like(ref), np.zeros(ref.size, bool),
                      torch.float64)
    assert stats["max_rel_err"] < 1e-15
