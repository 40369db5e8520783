"""The methods beyond the tutorial, run as studies: complex step, Ridders, stencils,
forward mode, vmap, compiled, the scipy / numdifftools peers; order=2; half dtypes;
unsupported status."""
import numpy as np
import pytest
import torch

from harness.config.validate import validate
from harness.functions.catalog import FUNCTIONS
from harness.methods import METHODS
from harness.study.flow import run_study

CPU = torch.device("cpu")
# Every method that can take a second derivative (of sin, in float64 on the CPU).
SECOND_ORDER = [name for name in METHODS.names()
                if METHODS.get(name).supports(FUNCTIONS.get("sin"), torch.float64, CPU, 2) is None]


@pytest.mark.parametrize("fn", ["sin", "exp", "tanh"])
def test_complex_step_reaches_about_one_ulp_in_float64(run, fn):
    record = run(f"fn={fn}", "method=complex_step", "grid.n=400", "grid.start=-5", "grid.stop=5").record
    assert record["status"] == "ok"
    assert record["median_ulp"] <= 1.0
    assert record["max_ulp"] <= 8.0


def test_complex_step_beats_autograd_in_tanh_tails(run):
    tails = ("fn=tanh", "grid.n=200", "grid.start=6", "grid.stop=10")
    complex_step = run(*tails, "method=complex_step").record
    autograd = run(*tails, "method=autograd").record
    # 1 - tanh(x)^2 cancels in the tails; Im tanh(x+ih)/h does not.
    assert complex_step["max_ulp"] <= 8.0
    assert autograd["max_ulp"] > 1e5
    assert autograd["triage_cancellation"] > 0 and autograd["triage_mismatch"] == 0


@pytest.mark.parametrize("overrides", [("method=richardson",),
                                       ("method=stencil", "method.accuracy=8")])
@pytest.mark.parametrize("fn", ["sin", "exp", "tanh", "gelu"])
def test_extrapolation_and_order8_stencil_reach_1e13_relative(run, fn, overrides):
    record = run(f"fn={fn}", *overrides, "grid.n=300", "grid.start=-3", "grid.stop=3").record
    # "About 1e-13": at h = eps^(1/9) the order-8 stencil's round-off floor,
    # eps * sum|w_k| * |f| / h, is itself a few 1e-14.
    assert record["norm_rel_err"] < 2e-13


def test_stencil_error_falls_with_accuracy_order_at_fixed_h(run):
    errors = [run("fn=exp", "method=stencil", f"method.accuracy={p}", "method.h=0.05",
                  "grid.n=50", "grid.start=-1", "grid.stop=1").record["max_abs_err"]
              for p in (2, 4, 6)]
    assert errors[0] > 100 * errors[1] > 100 * 100 * errors[2] / 10


def test_richardson_error_estimate_is_recorded_and_calibrated(run):
    outcome = run("fn=sin", "method=richardson", "grid.n=200")
    record, points = outcome.record, outcome.points
    assert "err_estimate" in points
    used = points[points["excluded"] == ""]
    assert record["estimate_coverage"] == pytest.approx(
        float(np.mean(used["abs_err"] <= used["err_estimate"].abs())))
    assert record["err_estimate_max"] == pytest.approx(used["err_estimate"].abs().max())


def test_second_derivatives_are_offered_by_ad_and_the_difference_methods():
    assert SECOND_ORDER == ["autograd", "backward", "finite", "forward_ad", "loop",
                            "richardson", "stencil", "vmap_grad"]


@pytest.mark.parametrize("method", SECOND_ORDER)
def test_second_derivative_of_sin_is_minus_sin(run, method):
    outcome = run("fn=sin", f"method={method}", "order=2", "grid.n=60")
    points = outcome.points
    assert outcome.record["order"] == 2
    np.testing.assert_allclose(points["df_ref"], -np.sin(points["x"]), rtol=0, atol=1e-15)
    tolerance = {"finite": 1e-6, "stencil": 1e-8, "richardson": 1e-10}.get(method, 1e-15)
    assert outcome.record["max_abs_err"] < tolerance


@pytest.mark.parametrize("overrides,reason", [
    (("fn=relu", "method=complex_step"), "complex_step: relu is not analytic"),
    (("fn=sin", "method=complex_step", "dtype=float16"), "complex_step: torch has no complex dtype"),
    (("fn=sin", "method=complex_step", "order=2"), "complex_step: complex step has no cancellation-free"),
    (("fn=sin", "method=scipy", "order=2"), "scipy: first derivatives only in this harness"),
    (("fn=sin", "method=compiled", "order=2"), "compiled: torch.compile's AOTAutograd does not support"),
    (("fn=erf", "method=complex_step"), "complex_step: \"erf_vml_cpu\" not implemented for 'ComplexDouble'"),
])
def test_unsupported_combinations_are_recorded_not_crashed(run, overrides, reason):
    outcome = run(*overrides, "grid.n=20")
    assert outcome.record["status"] == "unsupported"
    assert outcome.record["status_reason"].startswith(reason)
    assert outcome.points.empty


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_dtypes_run_with_steps_from_their_epsilon(run, dtype):
    record = run("fn=exp", "method=finite", f"dtype={dtype}", "grid.n=64", "grid.start=-2",
                 "grid.stop=2").record
    torch_dtype = getattr(torch, dtype)
    # The step is computed in the run's dtype, so it is eps^(1/3) rounded to that dtype.
    expected = float(torch.tensor(torch.finfo(torch_dtype).eps ** (1 / 3), dtype=torch_dtype))
    assert record["status"] == "ok" and record["dtype"] == dtype
    assert record["h"] == expected
    assert record["max_ulp"] > 1  # a difference quotient in half precision is not exact


def test_autograd_in_bfloat16_is_within_an_ulp_for_sin(run):
    record = run("fn=sin", "method=autograd", "dtype=bfloat16", "grid.n=64").record
    assert record["max_ulp"] <= 1.0


@pytest.mark.parametrize("method", ["scipy", "numdifftools"])
def test_peer_tools_are_scored_like_any_method(run, method):
    outcome = run("fn=exp", f"method={method}", "grid.n=50", "grid.start=-2", "grid.stop=2")
    record = outcome.record
    assert record["status"] == "ok"
    assert record["norm_rel_err"] < 1e-10
    assert np.isfinite(record["err_estimate_median"])


def test_forward_mode_and_vmap_equal_autograd_bitwise_for_sin(run):
    values = {m: run("fn=sin", f"method={m}", "grid.n=100").points["df"].to_numpy()
              for m in ("autograd", "backward", "forward_ad", "vmap_grad")}
    for method in ("backward", "forward_ad", "vmap_grad"):
        np.testing.assert_array_equal(values["autograd"], values[method])


@pytest.mark.slow
def test_compiled_derivative_matches_autograd_and_records_compile_time(compose_config,
                                                                     reference_cache, tmp_path):
    cfg = compose_config("fn=sin", "method=compiled", "device=cpu", "grid.n=256",
                         "timing.min_run_time=0.05",
                         f"reference.cache_dir={reference_cache}")
    record = run_study(validate(cfg), tmp_path, log=lambda line: None).record
    assert record["status"] == "ok"
    assert record["max_ulp"] <= 1.0
    # Compilation happens in the first call only.
    assert record["time_first_call_s"] > 10 * record["time_median_s"]
