"""harness.analysis.stepsize: the V of error against h, and its model
E(h) = C h^p + eps R F / h^n from the stencil's exact weights."""
from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis.stepsize import (StepModel, derivative_maxima, leading_term,
                                       step_model, stepsize_rows, stepsize_table)
from harness.analysis.tables import autograd_errors
from harness.results import load_records
from support import run_sweep

EPS64 = 2.0 ** -52


def test_step_model_optimum_solves_its_derivative():
    model = StepModel(p=2, n=1, C=1 / 6, F=1.0, eps=EPS64)
    assert model.R == 1.0
    assert model.h_opt == pytest.approx((3 * EPS64) ** (1 / 3))
    h = model.h_opt
    assert model.error(np.array([h * 1.01]))[0] > model.err_opt
    assert model.error(np.array([h / 1.01]))[0] > model.err_opt
    assert math.isnan(StepModel(p=1, n=1, C=0.0, F=1.0, eps=1e-16).h_opt)


@pytest.mark.parametrize("scheme, n, term", [
    ("central", 1, (3, 1 / 6)), ("forward", 1, (2, 1 / 2)), ("backward", 1, (2, 1 / 2)),
    ("central", 2, (4, 1 / 12)), ("forward", 2, (3, 1.0))])
def test_leading_term_is_the_schemes_first_taylor_term(scheme, n, term):
    m, c = leading_term(scheme, n)
    assert m == term[0] and c == pytest.approx(term[1], rel=1e-12)


@pytest.mark.parametrize("scheme, n, p, C, R", [
    # f with max|f| = 2 and max|f^(m)| = 4 for every m: C = c_m * 4, R = sum |w_k|.
    ("central", 1, 2, 4 / 6, 1.0),
    ("forward", 1, 1, 4 / 2, 2.0),
    ("backward", 1, 1, 4 / 2, 2.0),
    ("central", 2, 2, 4 / 12, 4.0),
])
def test_step_model_takes_truncation_and_round_off_from_the_stencils_weights(scheme, n, p, C, R):
    model = step_model(scheme, n, "float64", {0: 2.0, 2: 4.0, 3: 4.0, 4: 4.0})
    assert (model.p, model.n, model.F, model.eps) == (p, n, 2.0, EPS64)
    assert model.C == pytest.approx(C, rel=1e-12) and model.R == pytest.approx(R, rel=1e-12)


def test_a_one_sided_optimum_balances_h_against_twice_the_rounding():
    # forward, f' : E = C h + 2 eps F / h, minimal at h = sqrt(2 eps F / C).
    model = step_model("forward", 1, "float64", {0: 1.0, 2: 2.0})
    assert model.h_opt == pytest.approx(math.sqrt(2 * EPS64 * 1.0 / 1.0), rel=1e-12)


def test_step_model_needs_the_function_and_its_leading_derivative():
    assert step_model("central", 1, "float32", {0: 1.0}) is None
    assert step_model("central", 1, "float32", {3: 1.0}) is None


def test_derivative_maxima_come_from_the_symbolic_form_over_the_grid():
    maxima = derivative_maxima("sin", "builtin", np.array([0.0, 0.5, np.pi / 2]), (0, 3))
    assert maxima == pytest.approx({0: 1.0, 3: 1.0}, rel=1e-15)
    assert derivative_maxima("tests.userpkg.ops:swish", "py", np.array([0.0]), (0, 3)) == {}


@pytest.mark.slow
def test_stepsize_preset_finds_the_optimum_near_eps_cube_root(tmp_path, reference_cache):
    folder = tmp_path / "stepsize"
    run_sweep(folder, reference_cache, "+sweep=stepsize", "method.scheme=central",
              "method.h=1e-3,1e-4,1e-5,1e-6,1e-7,1e-8,1e-9", "dtype=float64", "grid.n=101")
    records = load_records(folder)
    assert len(records) == 7 and set(records["h"]) == {10.0 ** -k for k in range(3, 10)}
    assert records["n_timed"].eq(0).all()  # the preset turns timing off
    table, models = stepsize_table(records, folder)
    (row,) = table.to_dict("records")
    assert EPS64 ** (1 / 3) / 10 <= row["h_best"] <= EPS64 ** (1 / 3) * 10
    assert row["C"] == pytest.approx(1 / 6, rel=1e-3)  # max |f'''| / 6 for sin on [-10, 10]
    assert row["F"] == pytest.approx(1.0, rel=1e-3)    # max |sin| on [-10, 10]
    # Central: E = C h^2 + eps F / h (sum |w| = 1), minimal at h = (eps F / 2C)^(1/3).
    assert row["h_model"] == pytest.approx((EPS64 * row["F"] / (2 * row["C"])) ** (1 / 3))
    assert (folder / "tables" / "stepsize.csv").is_file()
    assert len(list((folder / "plots").glob("stepsize_*.png"))) == 1
    assert autograd_errors(records, "sin") == {}

    # autograd run into the same folder: the V plot gets its reference line.
    run_sweep(folder, reference_cache, "method=autograd", "dtype=float64", "grid.n=101",
              "timing.enabled=false")
    records = load_records(folder)
    autograd = records[records["method"] == "autograd"]["max_abs_err"].iloc[0]
    assert autograd_errors(records, "sin") == {"float64": autograd}
    assert len(stepsize_rows(records)) == 7
