"""harness.study.reference and harness.study.certify: the certified (Arb) reference and the
mpmath fallback against independent closed forms, what backs each record, and the cache."""
from __future__ import annotations

import math
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch

from harness.config.validate import validate
from harness.functions.catalog import FUNCTIONS, Function, resolve_function
from harness.functions.expr import parse_expression
from harness.functions.nodes import PRIMITIVES, Apply, Primitive, X
from harness.study import certify
from harness.study.reference import (arb_reference, autograd64_reference, cache_key,
                                     cached_mpmath_reference, function_reference,
                                     mpmath_reference)
from harness.study.flow import run_study
from support import ROOT

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


# --- the certified reference (Arb) -----------------------------------------------------------

def certified(name_or_expr: str, xs, n: int = 1):
    """The certified f^(n) of a builtin (by name) or an expression, uncached."""
    function = FUNCTIONS.get(name_or_expr) if name_or_expr in FUNCTIONS \
        else resolve_function("expr", expr=name_or_expr)
    return arb_reference(function.node, np.asarray(xs, dtype=np.float64), n, None)[0]


@pytest.mark.parametrize("name, derivative, xs", [
    ("sin", mpmath.cos, XS),
    ("exp", mpmath.exp, XS),
    ("tanh", lambda v: mpmath.sech(v) ** 2, XS),
    ("log", lambda v: 1 / v, POSITIVE),
    ("cube", lambda v: 3 * v**2, XS),
    ("erf", lambda v: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-v**2), XS),
    ("sigmoid", lambda v: mpmath.exp(-v) / (1 + mpmath.exp(-v)) ** 2, XS),
    ("gelu", lambda v: mpmath.ncdf(v) + v * mpmath.npdf(v), XS),
])
def test_certified_reference_matches_closed_forms_to_double_double_precision(name, derivative,
                                                                            xs):
    ref = certified(name, xs)
    assert ref.kind == "arb" and not ref.uncertified.any()
    assert max(double_double_error(ref.hi, ref.lo, closed_form(derivative, xs))) < 1e-30
    # Each point's stated uncertainty is a true bound, and at most 2^-106 relative (plus the
    # double-double's own rounding).
    with mpmath.workdps(50):
        truth = closed_form(derivative, xs)
        assert all(abs(mpmath.mpf(h) + mpmath.mpf(l) - t) <= u
                   for h, l, t, u in zip(ref.hi, ref.lo, truth, ref.uncertainty))
    assert np.all(ref.uncertainty <= 2.0**-105 * np.abs(ref.hi))


# Points away from every builtin's kinks (0, +-0.5, +-1, +-3, 6) and tan's poles.
PRIMITIVE_XS = np.array([-3.7, -1.3, -0.45, 0.2, 0.9, 2.6, 7.1])


def sympy_derivative(prim: Primitive, xs: np.ndarray, n: int) -> list:
    """d^n/dx^n of the primitive's sympy form, by mpmath at 120 digits: independent of its
    ball form."""
    d = sp.diff(prim.sympy_fn(x), x, n)
    fn = sp.lambdify([x], d, modules="mpmath")
    with mpmath.workdps(120):
        return [fn(mpmath.mpf(float(v))) for v in xs]


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("name", [p for p in PRIMITIVES.names() if PRIMITIVES.get(p).arb])
def test_every_primitives_ball_form_matches_its_symbolic_derivative(name, n):
    prim = PRIMITIVES.get(name)
    xs = PRIMITIVE_XS if prim.domain is None else PRIMITIVE_XS[prim.domain(PRIMITIVE_XS)]
    ref = arb_reference(Apply(prim, X()), xs, n, None)[0]
    assert not ref.uncertified.any()
    with mpmath.workdps(120):
        for h, l, truth in zip(ref.hi, ref.lo, sympy_derivative(prim, xs, n)):
            if truth == 0:
                assert (h, l) == (0.0, 0.0)
            else:
                assert abs((mpmath.mpf(h) + mpmath.mpf(l) - truth) / truth) < 1e-28


GELU_TAIL = np.arange(-30, -5, 0.1)  # the grid: grid.start=-30 grid.stop=-5 step 0.1


def test_gelus_tail_is_certified_where_the_50_digit_path_returned_zero():
    old, _ = mpmath_reference(FUNCTIONS.get("gelu").symbolic(), GELU_TAIL, dps=50)
    assert np.all(old[GELU_TAIL <= -15.5] == 0.0)  # today's path: 146 silent zeros
    ref = certified("gelu", GELU_TAIL)
    truth = closed_form(lambda v: mpmath.ncdf(v) + v * mpmath.npdf(v), GELU_TAIL)
    assert not ref.uncertified.any() and np.all(ref.hi < 0)
    assert certified("gelu", [-20.0]).hi[0] == -1.1014360483133464e-86  # the value
    assert max(double_double_error(ref.hi, ref.lo, truth)) < 1e-30


def test_a_cancelling_expression_is_certified_where_the_old_path_returned_zero():
    # d/dx (x - log(e^x + 1)) = 1 - e^x / (e^x + 1) = 1 / (1 + e^x): the two terms cancel
    # to e^-200 = 1.4e-87 (and e^-700) below 50 digits, so 50 and 30 digits agree on 0.
    expr, xs = "x - log(exp(x) + 1)", np.array([40.0, 200.0, 700.0])
    old, _ = mpmath_reference(resolve_function("expr", expr=expr).symbolic(), xs, dps=50)
    assert list(old[1:]) == [0.0, 0.0]
    ref = certified(expr, xs)
    with mpmath.workdps(400):
        truth = [1 / (1 + mpmath.exp(mpmath.mpf(v))) for v in xs]
        assert all(abs(mpmath.mpf(h) + mpmath.mpf(l) - t) <= u
                   for h, l, t, u in zip(ref.hi, ref.lo, truth, ref.uncertainty))
    assert max(double_double_error(ref.hi[:2], ref.lo[:2], truth[:2])) < 1e-30
    # At 1e-304 the low double is subnormal: the double-double keeps ~20 digits, and the
    # stated uncertainty (one subnormal) says so.
    assert ref.hi[2] == float(truth[2]) == 9.85967654375977e-305
    assert ref.bits > certify.START_BITS  # raised per point until the bound was tight


def test_a_derivative_that_is_exactly_zero_is_certified_as_zero_within_an_absolute_bound():
    ref = certified("sin(x)**2 + cos(x)**2", [0.3, 2.0])
    assert list(ref.hi) == list(ref.lo) == [0.0, 0.0]
    # The bound (<= 2^-1100) is stored rounded up to float64: the smallest subnormal.
    assert list(ref.uncertainty) == [5e-324, 5e-324] and not ref.uncertified.any()
    assert ref.bits >= 1100


def test_a_point_that_cannot_be_certified_by_the_cap_is_flagged_never_given_a_value():
    # f' = 1 exactly, but the ball form cancels e^5000 (7214 bits) against itself: more
    # than CAP_BITS can resolve. At x = 1 a few bits suffice.
    ref = certified("x + exp(x) - exp(x)", [1.0, 5000.0])
    assert list(ref.uncertified) == [False, True]
    assert ref.hi[0] == 1.0 and math.isnan(ref.hi[1])


def test_uncertified_points_are_excluded_counted_and_said(run):
    outcome = run("fn=expr", "fn.expr='x + exp(x) - exp(x)'", "grid.start=4990",
                  "grid.stop=5000", "grid.n=3")
    record, points = outcome.record, outcome.points
    assert (record["n_uncertified"], record["n_excluded"], record["n_used"]) == (3, 3, 0)
    assert list(points["excluded"]) == ["uncertified"] * 3
    assert list(points["verdict"]) == ["excluded"] * 3


def test_a_series_division_arb_cannot_do_is_escalated_not_a_crash():
    # gelu_tanh at -1e300 divides by 1 + e^(1e300), beyond Arb's range at low precision
    # (arb_series raises ValueError); raising the precision certifies f' = 0 there.
    ref = certified("gelu_tanh", [-1e300, 1e300])
    assert list(ref.hi) == [0.0, 1.0] and not ref.uncertified.any()


def test_points_outside_the_domain_are_not_evaluated_and_not_uncertified():
    ref = certified("log", [-1.0, 0.0, 2.0])
    assert list(ref.uncertified) == [False, False, False]
    assert math.isnan(ref.hi[0]) and math.isnan(ref.hi[1]) and ref.hi[2] == 0.5


def test_a_primitive_without_a_ball_form_falls_back_to_mpmath_and_the_record_says_why():
    mycos = Primitive("mycos", torch.cos, sp.cos)  # no arb form
    function = Function("mycos", "builtin", Apply(mycos, X()))
    assert function.reference_kind == "mpmath"
    ref = function_reference(function, XS, 1, 50, None)
    assert ref.kind == "mpmath"
    assert ref.backing.endswith("(50 digits, checked at 30); used because mycos has no Arb form")
    assert max(double_double_error(ref.hi, ref.lo,
                                   closed_form(lambda v: -mpmath.sin(v), XS))) < 1e-30


def test_every_record_states_its_reference_engine_and_largest_bound(run):
    record = run("fn=gelu", "grid.n=50").record
    assert record["reference"] == "arb"
    assert record["reference_backing"].startswith("Arb ball arithmetic (python-flint)")
    assert 0 < record["reference_rel_bound_max"] <= 2.0**-105
    user = run("fn=py", "fn.target=tests.userpkg.ops:swish", "grid.n=50").record
    assert user["reference"] == "float64-richardson"
    assert user["reference_backing"].startswith("float64 Ridders extrapolation")
    assert user["reference_rel_bound_max"] > 1e-16  # an estimate, shown as such


# --- cache -----------------------------------------------------------------------------------

def test_second_call_hits_the_cache_and_returns_identical_arrays(tmp_path):
    first_hi, first_lo, first_hit = cached_mpmath_reference(sp.sin(x), XS, 50, tmp_path)
    second_hi, second_lo, second_hit = cached_mpmath_reference(sp.sin(x), XS, 50, tmp_path)
    assert (first_hit, second_hit) == (False, True)
    np.testing.assert_array_equal(second_hi, first_hi)
    np.testing.assert_array_equal(second_lo, first_lo)
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        [f"{cache_key('mpmath', sp.srepr(sp.sin(x)), XS, '50')}.npz"]


def test_a_certified_reference_is_cached_with_its_bounds(tmp_path):
    node = FUNCTIONS.get("tanh").node
    first, first_hit = arb_reference(node, XS, 1, tmp_path)
    second, second_hit = arb_reference(node, XS, 1, tmp_path)
    assert (first_hit, second_hit) == (False, True)
    for name in ("hi", "lo", "uncertainty", "uncertified"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    assert second.bits == first.bits == certify.START_BITS


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


def test_cache_key_changes_with_the_engine_its_settings_and_the_order():
    key = cache_key("mpmath", "sin(x)", XS, "50")
    assert key != cache_key("mpmath", "sin(x)", XS, "60")
    assert key != cache_key("arb", "sin(x)", XS, "50")
    assert key != cache_key("mpmath", "sin(x)", XS, "50", n=2)


def test_cache_key_changes_with_one_ulp_of_one_x():
    moved = XS.copy()
    moved[3] = np.nextafter(moved[3], np.inf)
    assert cache_key("arb", "sin(x)", XS, "") != cache_key("arb", "sin(x)", moved, "")


def test_cache_key_changes_with_the_expression():
    assert cache_key("arb", "sin(x)", XS, "") != cache_key("arb", "cos(x)", XS, "")


def test_cache_key_is_stable_for_equal_inputs():
    assert cache_key("arb", "sin(x)", XS, "") == cache_key("arb", "sin(x)", XS.copy(), "")


@pytest.mark.parametrize("text, key", [
    ("sin(x)", "sin(x)"),
    ("x**3", "(x ** Integer(3))"),
    ("-tanh(0.1*x) + pi", "((-tanh((Rational(1, 10) * x))) + pi)"),
])
def test_an_expression_trees_key_names_each_primitive_and_each_exact_constant(text, key):
    assert parse_expression(text).key() == key


def test_the_builtin_cube_and_the_expression_x_cubed_share_one_cache_entry():
    # The catalog's cube holds a Python int, the parser a sympy Integer: the same number.
    assert FUNCTIONS.get("cube").node.key() == parse_expression("x**3").key()


def test_a_certified_reference_needs_no_sympy():
    code = ("import sys; import numpy as np; from harness.functions.catalog import FUNCTIONS; "
            "from harness.study.reference import arb_reference; "
            "arb_reference(FUNCTIONS.get('tanh').node, np.array([0.5, 2.0]), 1, None); "
            "print(sorted(m for m in ('sympy', 'mpmath') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.stdout.strip() == "[]", done.stderr
