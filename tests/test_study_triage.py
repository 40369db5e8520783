"""harness.study.triage: why a method disagrees with the reference, point by point."""
import numpy as np
import pytest
import sympy as sp

from harness.functions.nodes import X_SYMBOL
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


def test_classify_order_and_noise_floor_on_hand_made_points():
    abs_err = np.array([1e-20, 1e-3, 1e-15, 1e-15, 1e-15, 0.5])
    ulp_err = np.array([0.1, 1e10, 100.0, 100.0, 100.0, 1e15])
    excluded = np.array(["", "kink", "", "", "domain", ""], dtype=object)
    ref = np.array([1.0, 1.0, 1e-20, 1.0, 1.0, 1.0])
    terms = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    eps = 2.0 ** -52
    labels = triage.classify(abs_err, ulp_err, excluded, ref, eps, terms, None, None, None)
    assert list(labels) == ["", "kink", "cancellation", "roundoff", "domain_edge", "mismatch"]
    assert triage.counts(labels) == {"triage_kink": 1, "triage_domain_edge": 1,
                                     "triage_cancellation": 1, "triage_roundoff": 1,
                                     "triage_truncation": 0, "triage_mismatch": 1}


def test_stencil_bounds_use_the_exact_taylor_constant():
    x = np.array([0.3])
    higher = lambda m: triage.taylor_term(sp.sin(X_SYMBOL), x, m)  # noqa: E731
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
