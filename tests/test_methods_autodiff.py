"""harness.methods.autodiff: reverse and forward mode are exact to rounding, in any dtype."""
from __future__ import annotations

import subprocess
import sys

import mpmath
import numpy as np
import pytest
import torch

from harness.methods.autodiff import autograd, backward, forward_ad, loop, vmap_grad
from support import ROOT

GRID64 = torch.linspace(-10, 10, 81, dtype=torch.float64)
# Every mode of automatic differentiation the harness offers (compiled is autograd of a
# torch.compile'd f: its own tests are in test_methods_in_studies.py).
AD = pytest.mark.parametrize("method", [autograd, backward, loop, forward_ad, vmap_grad],
                             ids=lambda fn: fn.__name__)


def true_cos(xs: torch.Tensor) -> np.ndarray:
    """cos at the exact float values of xs, correctly rounded to float64 (mpmath, 40 digits)."""
    with mpmath.workdps(40):
        return np.array([float(mpmath.cos(mpmath.mpf(v))) for v in xs.double().tolist()])


@AD
def test_ad_derivative_of_sin_is_cos_to_one_ulp_in_float64(method):
    df = method(torch.sin, GRID64).numpy()
    truth = true_cos(GRID64)
    assert np.all(np.abs(df - truth) <= np.spacing(np.abs(truth)))


@AD
def test_every_mode_gives_autograds_values_bitwise(method):
    f = lambda t: t**2 * torch.sin(t)  # noqa: E731
    np.testing.assert_array_equal(method(f, GRID64).numpy(), autograd(f, GRID64).numpy())


@AD
def test_ad_of_a_function_independent_of_x_is_zero(method):
    df = method(lambda t: torch.full_like(t, 3.0), GRID64[:5])
    np.testing.assert_array_equal(df.numpy(), np.zeros(5))


@AD
def test_ad_keeps_the_dtype_and_leaves_the_input_untouched(method):
    x = torch.linspace(-1, 1, 5, dtype=torch.float32)
    before = x.clone()
    df = method(torch.exp, x)
    assert df.dtype == torch.float32 and df.shape == x.shape
    assert not x.requires_grad and x.grad is None
    assert torch.equal(x, before)
    torch.testing.assert_close(df, torch.exp(x), rtol=0, atol=0)




@pytest.mark.slow
def test_a_compiled_study_shows_no_warning_from_torchs_internals():
    # torch.compile's first compilation imports a module that warns that
    # torch.jit.script_method is deprecated; forward mode warns of torch.jit.script: both
    # are torch's business, not a line a user should see. A fresh process: the warning
    # comes once per process, at an import.
    code = ("import warnings, torch\n"
            "warnings.simplefilter('always')\n"
            "from harness.methods.autodiff import autograd, compile_function, forward_ad\n"
            "x = torch.linspace(0.5, 1.5, 8, dtype=torch.float64)\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    warnings.simplefilter('always')\n"
            "    autograd(compile_function(torch.sin), x)\n"
            "    forward_ad(torch.sin, x)\n"
            "print([str(w.message) for w in seen if 'jit' in str(w.message)])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
