"""harness.study.triage: why a method disagrees with the reference, point by point."""
import numpy as np
import pytest
import sympy as sp

from harness.functions.nodes import x_symbol
from harness.study import triage
from support import user


# --- triage ------------------------------------------------------------------------------

def test_planted_wrong_backward_is_classified_mismatch(run):
    outcome = run(*user("WrongCube"), "grid.n=100", "grid.start=0.5", "grid.stop=3")
    record = outcome.record
    assert record["reference"] == "float64-richardson"
    assert record["triage_mismatch"] == 100
    # 3.03 x^2 instead of 3 x^2: the error is exactly 1% of the derivative.
    np.testing.assert_allclose(outcome.points["abs_err"], 0.01 * outcome.points["df_ref"],
                               rtol=1e-9)


def test_correct_custom_backward_has_no_mismatch(run):
    record = run(*user("GoodCube"), "grid.n=200").record
    assert record["triage_mismatch"] == 0
    assert record["norm_rel_err"] < 1e-12


def test_finite_difference_of_a_wrong_backward_is_not_fooled(run):
    # A difference quotient never calls backward, so the planted bug does not show.
    record = run(*user("WrongCube"), "method=finite", "grid.n=100").record
    assert record["triage_mismatch"] == 0
    assert record["norm_rel_err"] < 1e-9


def test_large_step_errors_are_truncation(run):
    outcome = run("fn=sin", "method=finite", "method.h=1e-2", "grid.n=100", "grid.start=0.1",
                  "grid.stop=1.4")
    assert outcome.record["triage_truncation"] == 100
    # Central difference: error ~ h^2/6 |f'''| = 1e-4/6 |cos x|.
    used = outcome.points
    np.testing.assert_allclose(used["abs_err"], 1e-4 / 6 * np.abs(np.cos(used["x"])), rtol=1e-3)


def test_tiny_step_errors_are_roundoff(run):
    record = run("fn=sin", "method=finite", "method.h=1e-12", "grid.n=100", "grid.start=0.1",
                 "grid.stop=1.4").record
    assert record["triage_roundoff"] > 90 and record["triage_truncation"] == 0
    assert record["triage_mismatch"] == 0


def test_autograd_tails_of_tanh_are_cancellation(run):
    record = run("fn=tanh", "method=autograd", "dtype=float32", "grid.n=100", "grid.start=4",
                 "grid.stop=9").record
    assert record["triage_cancellation"] > 50 and record["triage_mismatch"] == 0


def test_kinks_and_domain_edges_are_their_own_classes(run):
    relu = run("fn=relu", "method=finite", "grid.n=101", "grid.start=-1", "grid.stop=1").record
    assert relu["triage_kink"] == relu["n_excluded_kink"] + relu["n_excluded_stencil"] == 1
    log = run("fn=log", "method=autograd", "grid.n=100", "grid.start=-1", "grid.stop=1").record
    assert log["triage_domain_edge"] == log["n_excluded_domain"] == 50


def test_the_tutorial_tanh_correct_formula_in_both_dtypes_is_never_mismatch(run):
    # torch's tanh backward 1 - tanh^2 cancels in the tails, in every dtype.
    for dtype in ("float32", "float64"):
        record = run("fn=tanh", "method=autograd", f"dtype={dtype}", "grid.n=200").record
        assert record["triage_mismatch"] == 0, dtype


def test_gelus_float64_tail_is_cancellation_not_mismatch(run):
    # The issue's grid: torch computes gelu' as 0.5 (1 + erf(x/sqrt 2)) + x phi(x); the
    # first term cancels, partly down to x = -8.3 and wholly beyond, in both dtypes.
    record = run("fn=gelu", "grid.start=-30", "grid.stop=-5", "grid.step=0.1").record
    assert record["triage_mismatch"] == 0
    assert record["triage_cancellation"] > 200
    assert record["n_uncertified"] == 0 and record["n_wrong"] == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_unstable_but_correct_user_backward_is_cancellation_not_mismatch(run, dtype):
    # 1 - 1/(1 + e^x) is sigmoid(x), computed with cancellation for x << 0; as user code
    # dydx knows no formula, and the label must not depend on knowing one.
    outcome = run(*user("CancellingSoftplus"), f"dtype={dtype}", "grid.start=-30",
                  "grid.stop=-1", "grid.n=100")
    record = outcome.record
    assert record["triage_mismatch"] == 0
    assert record["triage_cancellation"] > 60
    cancelled = outcome.points[outcome.points["triage"] == "cancellation"]
    assert cancelled["x"].max() < -5  # where e^x is below the dtype's eps


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_backward_that_returns_zero_in_a_tail_is_wrong_and_mismatch_there(run, dtype):
    outcome = run(*user("ZeroTailTanh"), f"dtype={dtype}", "grid.start=-9", "grid.stop=9",
                  "grid.n=100")
    points = outcome.points
    tail = (points["x"].abs() > 5).to_numpy()
    assert outcome.record["n_wrong"] == tail.sum() == 44
    assert (points["verdict"][tail] == "wrong").all()
    assert (points["triage"][tail] == "mismatch").all()
    assert (points["triage"][~tail] != "mismatch").all()
    # torch.testing's absolute tolerance passes some of the zeros (where |f'| <= atol).
    assert outcome.record["assert_close_rate"] > 56 / 100


def test_cancellation_inside_a_complex_kernel_has_its_own_class(run):
    # tanhshrink(z) = z - tanh(z): Im is h - h sech^2(x), cancelling near 0 inside the
    # complex kernel, though the complex step itself never subtracts.
    for dtype in ("float32", "float64"):
        outcome = run("fn=tanhshrink", "method=complex_step", f"dtype={dtype}",
                      "grid.start=-0.5", "grid.stop=0.5", "grid.n=50")
        record = outcome.record
        assert record["triage_complex_kernel"] >= 5 and record["triage_mismatch"] == 0
        kernel = outcome.points[outcome.points["triage"] == "complex_kernel"]
        assert kernel["x"].abs().max() < 0.1


def run_of(abs_err, ulp_err, eps, gain=None) -> triage.DtypeRun:
    return triage.DtypeRun(np.asarray(abs_err, dtype=float), np.asarray(ulp_err, dtype=float),
                           eps, gain)


F64, F32 = 2.0**-52, 2.0**-23


def test_an_error_that_scales_with_precision_is_dependent_and_a_constant_one_is_not():
    # Point 0: 1e-16 in float64 but 6e-8 (and 500 float32 ULPs) in float32: rounding.
    # Point 1: 1% in both: a wrong formula. Point 2: float32 within its noise floor.
    run = run_of([1e-16, 0.01, 1e-12], [1e4, 1e14, 1e4], F64)
    other = run_of([6e-8, 0.01, 1e-8], [500.0, 1e5, 1.0], F32)
    assert list(triage.precision_dependent(run, other)) == [True, False, False]
    assert triage.precision_dependent(run, None) is None


def evidence(**changes) -> triage.Evidence:
    """Five hand-made float64 points (see the test below)."""
    values = dict(
        run=run_of([1e-20, 1e-3, 1e-15, 5e-15, 0.5], [0.1, 1e10, 100.0, 100.0, 1e15], F64),
        df_abs=np.array([1.0, 1.0, 1e-20, 1.0, 1.5]), f_abs=np.ones(5),
        ref_abs=np.array([1.0, 1.0, 1e-20, 1.0, 1.0]), tiny=2.0**-1022, huge=1.8e308,
        x_abs=np.ones(5))
    return triage.Evidence(**{**values, **changes})


def test_classify_order_and_noise_floor_on_hand_made_points():
    excluded = np.array(["", "kink", "", "domain", ""], dtype=object)
    labels = triage.classify(excluded, np.zeros(5, bool), evidence())
    # Within the floor; a kink; 1e-15 next to unit-size terms where f' = 1e-20 (absorbed);
    # outside the domain; an error of 0.5 that nothing explains.
    assert list(labels) == ["", "kink", "cancellation", "domain_edge", "mismatch"]
    assert triage.counts(labels) == {
        "triage_kink": 1, "triage_domain_edge": 1, "triage_roundoff": 0,
        "triage_truncation": 0, "triage_cancellation": 1, "triage_underflow": 0,
        "triage_overflow": 0, "triage_complex_kernel": 0, "triage_mismatch": 1}


def test_reference_limited_points_are_not_triaged():
    limited = np.array([False, False, True, False, True])
    labels = triage.classify(np.full(5, "", dtype=object), limited, evidence())
    assert list(labels) == ["", "mismatch", "", "roundoff", ""]


def test_an_overflow_in_the_narrower_comparison_run_is_no_evidence_of_precision_loss():
    # A float64 backward wrong by 2x where float32 overflows (sinh'(500)): the float32 inf
    # is float32's range, not a sign that the float64 error is rounding.
    run, other = run_of([5e216], [1e16], F64), run_of([np.inf], [np.inf], F32)
    assert not triage.precision_dependent(run, other)[0]
    # The run's own nan/inf, recovered by a wider dtype, is still precision-dependent.
    assert triage.precision_dependent(run_of([np.inf], [np.inf], F32),
                                      run_of([1e-12], [1e4], F64))[0]


def test_precision_loss_is_named_by_its_symptom():
    # One point, lost to precision (a float32 run, the float64 run recovers it), with
    # three symptoms: a subnormal result, a nan result, and through the complex step.
    def label(df_abs, abs_err, **changes):
        e = triage.Evidence(run=run_of([abs_err], [1e6], F32), df_abs=np.array([df_abs]),
                            f_abs=np.ones(1), ref_abs=np.array([1e-3]), tiny=2.0**-126,
                            huge=3.4e38, other=run_of([1e-12], [1e4], F64), **changes)
        return triage.classify(np.array([""], dtype=object), np.zeros(1, bool), e)[0]

    assert label(1.001e-3, 1e-6) == "cancellation"
    assert label(1e-40, 1e-3) == "underflow"
    assert label(np.nan, np.inf) == "overflow"
    assert label(1.001e-3, 1e-6, complex_input=True) == "complex_kernel"


def test_stencil_bounds_use_the_exact_taylor_constant():
    x = np.array([0.3])
    higher = lambda m: triage.taylor_term(sp.sin(x_symbol()), x, m)  # noqa: E731
    roundoff, truncation = triage.stencil_bounds(higher, np.array([1.0]), 1, 2.0 ** -52,
                                                 np.array([1e-2]), [-1, 1])
    # The first two Taylor terms of the central difference: h^2/3! |f'''| + h^4/5! |f^(5)|.
    assert truncation[0] == pytest.approx(1e-4 / 6 * np.cos(0.3) + 1e-8 / 120 * np.cos(0.3))
    assert roundoff[0] == pytest.approx(2.0 ** -52 / 1e-2)


def test_one_sided_round_off_carries_the_sum_of_absolute_weights():
    # (f(x+h) - f(x)) / h: weights -1, 1, so two rounded values of f over h.
    roundoff, _ = triage.stencil_bounds(lambda m: np.array([1.0]), np.array([3.0]), 1,
                                        2.0 ** -52, np.array([2.0 ** -20]), [0, 1])
    assert roundoff[0] == 2 * 2.0 ** -52 * 3.0 / 2.0 ** -20
