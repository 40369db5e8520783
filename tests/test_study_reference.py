"""harness.study.reference: double-double references against independent closed forms, and
the cache."""
from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch

from harness.config.validate import validate
from harness.functions.catalog import FUNCTIONS, resolve_function
from harness.study.reference import (autograd64_reference, cache_key, cached_mpmath_reference,
                               mpmath_reference)
from harness.study.flow import run_study

x = sp.Symbol("x", real=True)
XS = np.array([-7.25, -2.0, -0.1, 0.3, 1.0, 2.5, 9.75])
POSITIVE = np.array([1e-3, 0.3, 1.0, 2.5, 9.75])


def double_double_error(hi: np.ndarray, lo: np.ndarray, truth) -> list:
    """|hi + lo - truth| / |truth| per point, in 50-digit arithmetic."""
    with mpmath.workdps(50):
        return [abs((mpmath.mpf(h) + mpmath.mpf(l)) - t) / abs(t)
                for h, l, t in zip(hi, lo, truth)]


def closed_form(fn, xs: np.ndarray) -> list:
    with mpmath.workdps(50):
        return [fn(mpmath.mpf(float(v))) for v in xs]


@pytest.mark.parametrize("expr, derivative, xs", [
    (sp.sin(x), mpmath.cos, XS),
    (sp.exp(x), mpmath.exp, XS),
    (sp.tanh(x), lambda v: mpmath.sech(v) ** 2, XS),
    (sp.log(x), lambda v: 1 / v, POSITIVE),
    (x**3, lambda v: 3 * v**2, XS),
    (sp.erf(x), lambda v: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-v**2), XS),
    (1 / (1 + sp.exp(-x)), lambda v: mpmath.exp(-v) / (1 + mpmath.exp(-v)) ** 2, XS),
], ids=["sin", "exp", "tanh", "log", "cube", "erf", "sigmoid"])
def test_reference_matches_closed_form_to_double_double_precision(expr, derivative, xs):
    hi, lo = mpmath_reference(expr, xs, dps=50)
    assert max(double_double_error(hi, lo, closed_form(derivative, xs))) < 1e-30


def test_reference_hi_is_the_nearest_double_and_lo_the_rounded_rest():
    hi, lo = mpmath_reference(sp.sin(x), XS, dps=50)
    truth = closed_form(mpmath.cos, XS)
    np.testing.assert_array_equal(hi, [float(t) for t in truth])
    assert np.all(np.abs(lo) <= np.spacing(np.abs(hi)) / 2)
    assert np.any(lo != 0)


def test_reference_of_a_cancelling_formula_keeps_full_precision():
    # d/dx (x - sin x) = 1 - cos x loses ~24 digits to cancellation at x = 1e-12;
    # the dps-20 cross-check must trigger the 4*dps re-evaluation.
    xs = np.array([1e-12, 1e-10, 0.25])
    hi, lo = mpmath_reference(x - sp.sin(x), xs, dps=50)
    with mpmath.workdps(200):
        truth = [1 - mpmath.cos(mpmath.mpf(float(v))) for v in xs]
    assert max(double_double_error(hi, lo, truth)) < 1e-30


def test_sinc_derivative_at_zero_is_the_symbolic_limit_zero():
    hi, lo = mpmath_reference(FUNCTIONS.get("sinc").symbolic(), np.array([0.0, 0.5]), dps=50)
    assert (hi[0], lo[0]) == (0.0, 0.0)
    # d/dx sin(pi x)/(pi x) at 1/2 = (pi/2 cos(pi/2) - sin(pi/2)) / (pi/4) = -4/pi
    assert max(double_double_error(hi[1:], lo[1:], closed_form(lambda v: -4 / mpmath.pi,
                                                                  [0.5]))) < 1e-30


def test_removable_singularity_of_an_expression_takes_the_limit():
    hi, lo = mpmath_reference(resolve_function("expr", expr="sin(x)/x").symbolic(),
                              np.array([0.0]), dps=50)
    assert (hi[0], lo[0]) == (0.0, 0.0)


def test_pole_gives_a_non_finite_reference():
    hi, lo = mpmath_reference(sp.log(x), np.array([0.0, 2.0]), dps=50)
    assert np.isnan(hi[0]) and lo[0] == 0.0
    assert hi[1] == 0.5


def test_reference_outside_a_real_domain_is_nan_not_a_crash():
    hi, _ = mpmath_reference(FUNCTIONS.get("sqrt").symbolic(), np.array([-1.0, 4.0]), dps=50)
    assert np.isnan(hi[0]) and hi[1] == 0.25


def test_reference_is_evaluated_at_the_float32_rounded_x(compose_config, reference_cache,
                                                         tmp_path):
    cfg = compose_config("fn=sin", "method=autograd", "dtype=float32", "device=cpu",
                         "grid.start=0.1", "grid.stop=0.1", "grid.n=1",
                         "timing.enabled=false", f"reference.cache_dir={reference_cache}")
    points = run_study(validate(cfg), tmp_path, log=lambda _: None).points
    x32 = float(np.float32(0.1))
    assert points["x"].tolist() == [x32]
    with mpmath.workdps(50):
        at_x32 = float(mpmath.cos(mpmath.mpf(x32)))
        at_x64 = float(mpmath.cos(mpmath.mpf(0.1)))
    assert points["df_ref"].tolist() == [at_x32]
    assert at_x32 != at_x64  # they differ by sin(0.1) * 1.5e-9, ~1e6 float64 ulps


def test_autograd_fallback_reference_is_float64_autograd_with_zero_lo():
    hi, lo = autograd64_reference(torch.nn.PReLU().double(), np.array([-2.0, 3.0]))
    np.testing.assert_array_equal(hi, [0.25, 1.0])
    np.testing.assert_array_equal(lo, [0.0, 0.0])


# --- cache -----------------------------------------------------------------------------------

def test_second_call_hits_the_cache_and_returns_identical_arrays(tmp_path):
    first_hi, first_lo, first_hit = cached_mpmath_reference(sp.sin(x), XS, 50, tmp_path)
    second_hi, second_lo, second_hit = cached_mpmath_reference(sp.sin(x), XS, 50, tmp_path)
    assert (first_hit, second_hit) == (False, True)
    np.testing.assert_array_equal(second_hi, first_hi)
    np.testing.assert_array_equal(second_lo, first_lo)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{cache_key(sp.sin(x), XS, 50)}.npz"]


def test_cached_values_are_the_uncached_values(tmp_path):
    cached_mpmath_reference(sp.exp(x), XS, 50, tmp_path)
    hi, lo, hit = cached_mpmath_reference(sp.exp(x), XS, 50, tmp_path)
    fresh_hi, fresh_lo = mpmath_reference(sp.exp(x), XS, 50)
    assert hit
    np.testing.assert_array_equal(hi, fresh_hi)
    np.testing.assert_array_equal(lo, fresh_lo)


def test_no_cache_dir_means_no_cache():
    *_, hit = cached_mpmath_reference(sp.sin(x), XS[:2], 50, None)
    *_, hit_again = cached_mpmath_reference(sp.sin(x), XS[:2], 50, None)
    assert (hit, hit_again) == (False, False)


def test_cache_key_changes_with_digits():
    assert cache_key(sp.sin(x), XS, 50) != cache_key(sp.sin(x), XS, 60)


def test_cache_key_changes_with_one_ulp_of_one_x():
    moved = XS.copy()
    moved[3] = np.nextafter(moved[3], np.inf)
    assert cache_key(sp.sin(x), XS, 50) != cache_key(sp.sin(x), moved, 50)


def test_cache_key_changes_with_the_expression():
    assert cache_key(sp.sin(x), XS, 50) != cache_key(sp.cos(x), XS, 50)


def test_cache_key_is_stable_for_equal_inputs():
    assert cache_key(sp.sin(x), XS, 50) == cache_key(sp.sin(x), XS.copy(), 50)
