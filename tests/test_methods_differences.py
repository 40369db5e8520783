"""harness.methods.differences and base: finite differences converge at their order, step
as represented, the default step per dtype, stencil weights, parameter checks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.methods.base import fornberg, roundoff_factor, truncation_terms, weights
from harness.methods.differences import (SCHEMES, check_finite, check_stencil, default_step,
                                         describe_finite, finite, finite_reach)

EPS64 = torch.finfo(torch.float64).eps
EPS32 = torch.finfo(torch.float32).eps


# --- finite differences: the tutorial's bug ------------------------------------------------

def test_finite_difference_of_sin_at_2_is_cos_2_not_the_tutorials_cos_sin_2():
    # The tutorial evaluated f(sin(x)) in its difference quotient, so it plotted
    # cos(sin(x))*cos(x). dydx must difference f itself.
    df = finite(torch.sin, torch.tensor([2.0], dtype=torch.float64)).item()
    assert abs(df - math.cos(2.0)) < 1e-9
    tutorial = math.cos(math.sin(2.0)) * math.cos(2.0)
    assert abs(df - tutorial) > 0.1


# --- finite differences: convergence order --------------------------------------------------

X1 = torch.tensor([1.0], dtype=torch.float64)


def fd_error(scheme: str, h: float) -> float:
    """Signed error of the difference quotient of exp at x = 1 (f' = f'' = f''' = e)."""
    return finite(torch.exp, X1, scheme=scheme, h=h).item() - math.e


def test_central_difference_error_drops_100x_when_h_drops_10x():
    ratio = fd_error("central", 1e-2) / fd_error("central", 1e-3)
    assert 99 < ratio < 101


@pytest.mark.parametrize("scheme", ["forward", "backward"])
def test_one_sided_difference_error_drops_10x_when_h_drops_10x(scheme):
    ratio = fd_error(scheme, 1e-2) / fd_error(scheme, 1e-3)
    assert 9.9 < ratio < 10.1


@pytest.mark.parametrize("scheme, leading", [
    ("central", lambda h: h**2 / 6 * math.e),    # (f(x+h) - f(x-h)) / 2h = f' + h^2 f'''/6
    ("forward", lambda h: h / 2 * math.e),       # (f(x+h) - f(x)) / h = f' + h f''/2
    ("backward", lambda h: -h / 2 * math.e),     # (f(x) - f(x-h)) / h = f' - h f''/2
])
def test_difference_error_matches_its_leading_taylor_term(scheme, leading):
    for h in (1e-2, 1e-3):
        assert fd_error(scheme, h) == pytest.approx(leading(h), rel=0.01)


def test_linear_function_is_differenced_exactly_for_any_step():
    # The quotient divides by the step as represented, so for f(x) = x (no truncation, no
    # rounding in f) it must be exactly 1, also at binade edges where x - h rounds.
    x = torch.linspace(-10, 10, 2001, dtype=torch.float32)
    for h in (1e-3, 0.1, 0.3):
        for scheme in SCHEMES:
            df = finite(lambda t: t, x, scheme=scheme, h=h)
            assert torch.equal(df, torch.ones_like(x)), (scheme, h)


# --- finite differences: the default step ------------------------------------------------------

def test_default_central_step_is_cube_root_of_eps_times_max_1_abs_x():
    x = torch.tensor([-5.0, -0.5, 0.0, 0.3, 2.0, 1e3], dtype=torch.float64)
    expected = EPS64 ** (1 / 3) * np.maximum(1.0, np.abs(x.numpy()))
    np.testing.assert_array_equal(default_step(x, "central").numpy(), expected)


@pytest.mark.parametrize("scheme", ["forward", "backward"])
def test_default_one_sided_step_is_sqrt_eps_times_max_1_abs_x(scheme):
    x = torch.tensor([-5.0, -0.5, 0.0, 0.3, 2.0, 1e3], dtype=torch.float64)
    expected = EPS64 ** 0.5 * np.maximum(1.0, np.abs(x.numpy()))
    np.testing.assert_array_equal(default_step(x, scheme).numpy(), expected)


def test_default_step_follows_the_dtype():
    x = torch.tensor([0.5, 4.0], dtype=torch.float32)
    np.testing.assert_allclose(default_step(x, "central").numpy(),
                               EPS32 ** (1 / 3) * np.array([1.0, 4.0]), rtol=EPS32)


def test_default_central_reach_spans_x_minus_and_plus_the_step():
    x = torch.tensor([-4.0, 0.25], dtype=torch.float64)
    lo, hi = finite_reach(x, scheme="central")
    step = EPS64 ** (1 / 3) * np.array([4.0, 1.0])
    np.testing.assert_allclose(lo.numpy(), x.numpy() - step, rtol=EPS64, atol=0)
    np.testing.assert_allclose(hi.numpy(), x.numpy() + step, rtol=EPS64, atol=0)


@pytest.mark.parametrize("scheme, lo_offset, hi_offset", [
    ("forward", 0.0, 0.5), ("backward", -0.5, 0.0), ("central", -0.5, 0.5)])
def test_reach_with_absolute_step_touches_the_right_side(scheme, lo_offset, hi_offset):
    x = torch.tensor([2.0], dtype=torch.float64)
    lo, hi = finite_reach(x, scheme=scheme, h=0.5)
    assert (lo.item(), hi.item()) == (2.0 + lo_offset, 2.0 + hi_offset)


def test_auto_step_is_described_in_the_record():
    assert describe_finite(torch.float64) == {
        "scheme": "central", "h": EPS64 ** (1 / 3), "h_mode": "auto: eps^(1/3)*max(1,|x|)"}
    assert describe_finite(torch.float32, scheme="forward") == {
        "scheme": "forward", "h": float(np.float32(EPS32 ** 0.5)),
        "h_mode": "auto: eps^(1/2)*max(1,|x|)"}


def test_absolute_step_is_described_in_the_record():
    assert describe_finite(torch.float32, scheme="backward", h=1e-3) == {
        "scheme": "backward", "h": 1e-3, "h_mode": "absolute"}


def test_step_that_rounds_away_gives_a_non_finite_point():
    # 1e8 + 1e-10 == 1e8 in float64: the quotient is 0/0, reported as nan, never as 0.
    x = torch.tensor([1e8, 1.0], dtype=torch.float64)
    df = finite(torch.sin, x, h=1e-10)
    assert math.isnan(df[0].item())
    assert abs(df[1].item() - math.cos(1.0)) < 1e-5


def test_step_below_float32_resolution_gives_a_non_finite_point():
    df = finite(torch.sin, torch.tensor([1.0], dtype=torch.float32), scheme="forward", h=1e-9)
    assert math.isnan(df.item())


# --- parameter checks ---------------------------------------------------------------------

def test_unknown_scheme_message_lists_the_schemes():
    assert check_finite(scheme="upwind") == (
        "unknown method.scheme 'upwind'; choose one of: central, forward, backward")


@pytest.mark.parametrize("h, shown", [(0.0, "0.0"), (-1e-3, "-0.001"), (math.inf, "inf"),
                                      (math.nan, "nan")])
def test_step_must_be_finite_and_positive(h, shown):
    assert check_finite(h=h) == (
        f"method.h must be a finite number > 0 (or null for the dtype's default), got {shown}")


@pytest.mark.parametrize("scheme, h", [("central", None), ("forward", 1e-7), ("backward", 2.0)])
def test_valid_finite_parameters_pass_the_check(scheme, h):
    assert check_finite(scheme=scheme, h=h) is None


def test_unknown_stencil_accuracy_lists_the_accuracies():
    assert check_stencil(accuracy=3) == "unknown method.accuracy 3; choose one of: 2, 4, 6, 8"
    assert check_stencil(accuracy=8) is None


# --- stencil weights and their error model (methods.base) -------------------------------------

@pytest.mark.parametrize("offsets", [(-1, 1), (0, 1), (-1, 0), (-1, 0, 1), (0, 1, 2), (-2, -1, 0),
                                     (-2, -1, 1, 2), (-3, -2, -1, 1, 2, 3), (0, 1, 2, 3, 4),
                                     (-4, -3, -2, -1, 1, 2, 3, 4)])
def test_fornbergs_exact_weights_are_sympys_for_every_order(offsets):
    import sympy as sp  # an independent implementation of the same recursion

    for n in range(len(offsets)):
        expected = sp.finite_diff_weights(n, list(offsets), 0)[n][-1]
        assert [(w.numerator, w.denominator) for w in fornberg(n, offsets)] == \
            [(int(e.p), int(e.q)) for e in expected], (n, offsets)


def test_stencil_weights_are_the_textbook_ones():
    assert weights(1, [-2, -1, 0, 1, 2]) == pytest.approx([1 / 12, -2 / 3, 0, 2 / 3, -1 / 12])
    assert weights(2, [-1, 0, 1]) == [1.0, -2.0, 1.0]


@pytest.mark.parametrize("n, offsets, factor", [
    (1, [-1, 1], 1.0), (1, [0, 1], 2.0), (1, [-1, 0], 2.0), (2, [-1, 0, 1], 4.0),
    (1, [-2, -1, 0, 1, 2], 1 / 12 + 2 / 3 + 2 / 3 + 1 / 12)])
def test_roundoff_factor_is_the_sum_of_absolute_weights(n, offsets, factor):
    assert roundoff_factor(n, offsets) == pytest.approx(factor, rel=1e-15)


@pytest.mark.parametrize("n, offsets, terms", [
    (1, [-1, 1], [(3, 1 / 6), (5, 1 / 120)]),      # (f(x+h) - f(x-h)) / 2h
    (1, [0, 1], [(2, 1 / 2), (3, 1 / 6)]),         # (f(x+h) - f(x)) / h
    (2, [-1, 0, 1], [(4, 1 / 12), (6, 1 / 360)]),  # (f(x+h) - 2f(x) + f(x-h)) / h^2
    (1, [-2, -1, 0, 1, 2], [(5, 1 / 30), (7, 1 / 252)]),
])
def test_truncation_terms_are_the_first_two_nonzero_taylor_terms(n, offsets, terms):
    got = truncation_terms(n, offsets)
    assert [m for m, _ in got] == [m for m, _ in terms]
    assert [c for _, c in got] == pytest.approx([c for _, c in terms], rel=1e-12)
