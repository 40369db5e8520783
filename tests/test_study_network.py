"""harness.study.network: the vector-Jacobian product of a network, studied like any function.

Most behaviour is pinned on the small tutorial_mlp (milliseconds a run; the `mlp` fixture
holds every network method x float64/float32); the discriminator (a float64 forward pass
takes ~0.5 s here) is run once per session, on a few points (`disc_finite32`).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from harness.dtypes import facts
from harness.study.metrics import ulp
from harness.study.network import REFERENCE, TIMED_POINTS
from harness.study.settings import TimingConf
from support import VJP_METHODS, network_parts, run_network

# Columns every network record has beyond an elementwise one: the consistency results.
NETWORK_COLUMNS = ("v_kind", "train_mode", "bitwise_backward_vs_autograd",
                   "max_abs_diff_backward_vs_autograd", "forward_mode_rel_diff", "gp_rel_err",
                   "gp_max_abs", "n_outputs", "input_shape")
# The exact methods: every network method but the finite difference.
AD_METHODS = [m for m in VJP_METHODS if m != "finite"]


def test_records_carry_the_bitwise_result_for_every_method(mlp):
    assert sorted({method for method, _ in mlp}) == VJP_METHODS
    for outcome in mlp.values():
        assert outcome.record["bitwise_backward_vs_autograd"] is True
        assert outcome.record["max_abs_diff_backward_vs_autograd"] == 0.0


# --- accuracy against the float64 reference ---------------------------------------------------

def test_float64_autograd_is_the_reference_so_its_error_is_exactly_zero(mlp):
    record = mlp[("autograd", "float64")].record
    assert record["reference"] == REFERENCE == "float64-autograd"
    assert record["max_abs_err"] == 0.0 and record["rel_pass_rate"] == 1.0
    assert record["reference_backing"].startswith("float64 autograd of the same function or "
                                                  "network: no independent check")


@pytest.mark.parametrize("method", AD_METHODS)
def test_ad_methods_match_the_float64_reference_to_their_dtype(mlp, method):
    r64, r32 = mlp[(method, "float64")].record, mlp[(method, "float32")].record
    assert r64["status"] == r32["status"] == "ok"
    assert r64["norm_rel_err"] <= 1e-13 and r64["max_ulp"] <= 64
    assert 1e-9 < r32["norm_rel_err"] <= 1e-5
    assert r32["assert_close_rate"] == 1.0 and r32["n_wrong"] == 0
    # The loop and forward mode sum in another order: one entry of vᵀJ (-0.0067, from a
    # cancelling sum) lands 20-40 float32 ULPs off, past rtol 1.3e-6 relative, which
    # torch.testing's atol hides.
    assert r32["rel_pass_rate"] >= (1.0 if method in ("autograd", "backward") else 0.96)


def test_the_loop_sums_in_another_order_so_it_is_close_but_its_own_computation(mlp):
    record = mlp[("loop", "float64")].record
    assert 0 < record["max_abs_err"] <= 1e-15


def test_finite_differences_are_close_in_float64_and_visibly_worse_in_float32(mlp):
    r64, r32 = mlp[("finite", "float64")].record, mlp[("finite", "float32")].record
    assert r64["n_checked"] == r32["n_checked"] == 100
    assert 1e-13 < r64["norm_rel_err"] <= 1e-7
    assert r32["norm_rel_err"] > 1e-6 and r32["norm_rel_err"] > 100 * r64["norm_rel_err"]
    assert r64["h"] == pytest.approx(torch.finfo(torch.float64).eps ** (1 / 3))
    assert r64["scheme"] == "central" and r64["h_mode"] == "auto: eps^(1/3)*max(1,|x|)"


def test_finite_at_a_fixed_step_uses_it():
    record = run_network("tutorial_mlp", "finite", "float64", params={"h": 1e-3}).record
    assert (record["h"], record["h_mode"]) == (1e-3, "absolute")
    assert 1e-8 < record["norm_rel_err"] < 1e-4  # truncation h^2 dominates


def test_forward_mode_agrees_with_reverse_mode_along_a_random_direction(mlp):
    assert mlp[("autograd", "float64")].record["forward_mode_rel_diff"] <= 1e-14
    assert mlp[("autograd", "float32")].record["forward_mode_rel_diff"] <= 1e-5


def test_forward_mode_is_checked_on_its_subsample_only(mlp):
    outcome = mlp[("forward_ad", "float64")]
    assert (outcome.record["n"], outcome.record["n_checked"], len(outcome.points)) == (100, 25, 25)


# --- the discriminator: a big input, finite differences on a subsample, kinks -----------------

def test_discriminator_finite_runs_on_a_deterministic_subsample(disc_finite32):
    record, points = disc_finite32.record, disc_finite32.points
    assert (record["n"], record["n_checked"], len(points)) == (20480, 12, 12)
    assert points["index"].iloc[0] == 0 and points["index"].iloc[-1] == 20479
    assert np.all(np.diff(points["index"]) > 0)
    assert record["bitwise_backward_vs_autograd"] is True


def test_stencils_that_cross_a_kink_are_excluded_and_counted(disc_finite32):
    record, points = disc_finite32.record, disc_finite32.points
    crossed = points["excluded"] == "stencil"
    assert set(points["excluded"]) <= {"", "stencil"}
    assert record["n_excluded"] == record["n_excluded_stencil"] == int(crossed.sum())
    assert record["n_excluded"] < record["n_checked"]
    assert record["norm_rel_err"] < 1e-2


def test_gradient_penalty_of_a_piecewise_linear_network_is_exactly_zero(disc_finite32):
    assert disc_finite32.record["gp_rel_err"] == 0.0
    assert disc_finite32.record["gp_max_abs"] == 0.0


def test_gradient_penalty_double_backward_matches_finite_differences(mlp):
    record = mlp[("autograd", "float32")].record
    assert record["gp_max_abs"] > 1e-3
    assert record["gp_rel_err"] <= 1e-7
    assert record["gp_n_directions"] == 3


# --- train mode and v ---------------------------------------------------------------------

def test_train_mode_changes_nothing_in_a_network_without_stochastic_layers():
    train = run_network("tutorial_mlp", "autograd", "float32", train=True).points["df"]
    evaluate = run_network("tutorial_mlp", "autograd", "float32").points["df"]
    pd.testing.assert_series_equal(train, evaluate)


def test_a_random_v_run_is_reproducible_and_differs_from_ones():
    first = run_network(method="backward", dtype="float32", v_kind="random")
    again = run_network(method="backward", dtype="float32", v_kind="random")
    ones = run_network(method="backward", dtype="float32")
    assert first.record["v_kind"] == "random"
    pd.testing.assert_frame_equal(first.points, again.points)
    assert not np.array_equal(first.points["df"], ones.points["df"])


# --- the record ------------------------------------------------------------------------------

def recomputed(points: pd.DataFrame, dtype: torch.dtype) -> dict:
    """The record's error columns, from the points table alone."""
    used = points[points["excluded"] == ""]
    err = (used["df"] - used["df_ref"]).abs().to_numpy()
    ref = used["df_ref"].abs().to_numpy()
    rtol, atol = facts(dtype).rtol, facts(dtype).atol
    return {"n_checked": len(points), "n_excluded": int((points["excluded"] != "").sum()),
            "max_abs_err": err.max(), "mean_abs_err": err.mean(),
            "rms_err": math.sqrt(np.mean(err**2)),
            "max_rel_err": np.max(err[ref > 0] / ref[ref > 0]),
            "norm_rel_err": err.max() / ref.max(),
            "median_ulp": np.median(err / ulp(ref, dtype)),
            "max_ulp": np.max(err / ulp(ref, dtype)),
            "rel_pass_rate": np.mean(err <= rtol * ref),
            "assert_close_rate": np.mean(err <= atol + rtol * ref),
            "n_wrong": int(np.sum((err >= ref) & (ref > 0)))}


@pytest.mark.parametrize("method", VJP_METHODS)
def test_record_errors_equal_a_recomputation_from_the_points_table(mlp, method):
    outcome = mlp[(method, "float32")]
    assert list(outcome.points.columns) == ["index", "x", "df", "df_ref", "df_ref_lo", "abs_err",
                                            "ulp_err", "excluded", "verdict"]
    for key, value in recomputed(outcome.points, torch.float32).items():
        assert outcome.record[key] == pytest.approx(value, rel=1e-12, abs=0), key


def test_discriminator_record_errors_equal_a_recomputation_from_its_points(disc_finite32):
    for key, value in recomputed(disc_finite32.points, torch.float32).items():
        assert disc_finite32.record[key] == pytest.approx(value, rel=1e-12, abs=0), key


def test_points_table_holds_the_dtype_rounded_input_values(mlp):
    parts = network_parts("tutorial_mlp", "float32")
    points = mlp[("autograd", "float32")].points
    np.testing.assert_array_equal(points["x"], parts.x.reshape(-1).double().numpy())
    assert (points["df_ref_lo"] == 0).all()


def test_network_records_have_every_column_a_function_record_has(mlp, run):
    core = run("fn=sin", "grid.n=3").record
    network = mlp[("autograd", "float64")].record
    # The failure triage models the rounding of elementwise functions; it has no model of a
    # network's accumulated rounding, so network records carry no triage_* counts. The
    # worst-case hunt searches an elementwise function's x; a network has none to search.
    hunt = {"n_hunt", "n_wrong_hunt", "n_wrong_found", "worst_x", "value_at_worst",
            "reference_at_worst", "worst_ulp", "worst_triage", "ulp_at_worst_autograd",
            "ulp_at_worst_forward_ad", "ulp_at_worst_complex_step"}
    assert {c for c in set(core) - set(network) if not c.startswith("triage_")} == hunt
    assert set(NETWORK_COLUMNS) <= set(network)
    assert (network["fn"], network["fn_source"], network["n"], network["n_excluded"]) == \
        ("tutorial_mlp", "network", 100, 0)


def test_timing_columns_when_timed():
    timing = TimingConf(min_run_time=0.01, max_run_time=0.1)
    whole = run_network(method="autograd", timing=timing).record
    per_point = run_network(method="finite", timing=timing).record
    assert whole["n_timed"] == 100 and whole["time_median_s"] > 0
    assert per_point["n_timed"] == TIMED_POINTS
    assert per_point["points_per_s"] == pytest.approx(TIMED_POINTS / per_point["time_median_s"])
    assert whole["cost_vs_forward"] > 0 and len(whole["raw_times_s"]) >= 1


def test_the_loop_on_a_network_with_too_many_outputs_is_recorded_unsupported(monkeypatch):
    monkeypatch.setattr("harness.methods.vjp.LOOP_MAX_OUTPUTS", 99)
    outcome = run_network(method="loop")
    assert outcome.record["status"] == "unsupported" and outcome.points.empty
    assert outcome.record["status_reason"] == (
        "loop: the output has 100 elements; the loop does one backward pass per element and "
        "is run only up to 99")
