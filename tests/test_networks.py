"""harness.networks and harness.network_study: the vector-Jacobian product of a network.

Most behaviour is pinned on the small tutorial_mlp (milliseconds a run); the discriminator
(a float64 forward pass takes ~0.5 s here) is run once per module, on a few points.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from harness.config import ConfigError, FnConf, TimingConf
from harness.metrics import TOLERANCES, ulp
from harness.network_study import (LOOP_MAX_OUTPUTS, REFERENCE, TIMED_POINTS, VJP_METHODS,
                                   backward_vs_autograd, consistency_rows, consistency_table,
                                   consistency_words, cotangent, finite_with_kinks,
                                   float64_copy,
                                   network_run, network_study_args, penalty_gradient,
                                   run_network_study, vjp_autograd, vjp_backward, vjp_finite)
from harness.networks import (DISCRIMINATOR_KERNELS, NETWORKS, network_input,
                              prepare_network)

CONF_FN = Path(__file__).resolve().parent.parent / "conf" / "fn"
CPU = torch.device("cpu")
NO_TIMING = TimingConf(enabled=False)
DTYPES = {"float64": torch.float64, "float32": torch.float32}
# Columns every network record has beyond the runner's: the consistency results.
NETWORK_COLUMNS = ("v_kind", "train_mode", "bitwise_backward_vs_autograd",
                   "max_abs_diff_backward_vs_autograd", "forward_mode_rel_diff", "gp_rel_err",
                   "gp_max_abs", "n_outputs", "input_shape")


def study(name="tutorial_mlp", method="autograd", dtype="float64", **kwargs):
    return run_network_study(name, method, dtype, CPU, timing=kwargs.pop("timing", NO_TIMING),
                             **kwargs)


@pytest.fixture(scope="module")
def mlp():
    """Every VJP method x float64/float32 on tutorial_mlp, v = ones, eval mode; forward
    mode (one jvp per element, the slowest here) on 25 of the 100 input elements."""
    return {(m, d): study("tutorial_mlp", m, d, max_points=25 if m == "forward_ad" else None)
            for m in VJP_METHODS.names() for d in DTYPES}


@pytest.fixture(scope="module")
def disc_finite32():
    """The discriminator's float32 finite differences on 12 input elements."""
    return study("discriminator", "finite", "float32", max_points=12)


# --- presets ------------------------------------------------------------------------------

def test_presets_take_the_documented_inputs_and_give_the_documented_outputs():
    shapes = {}
    for name in NETWORKS:
        run = network_run(name, torch.float32, CPU, "ones", False, 0)
        shapes[name] = (tuple(run.x.shape), tuple(run.v.shape))
    assert shapes == {"tutorial_mlp": ((10, 1, 10), (10, 1, 10)),
                      "discriminator": ((10, 1, 2048), (10, 1))}


def test_discriminator_has_six_conv_branches_then_dropout_and_two_linear_layers():
    model = NETWORKS.get("discriminator").build(0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert [c.kernel_size[0] for c in convs] == list(DISCRIMINATOR_KERNELS) == \
        [5, 17, 33, 65, 129, 257]
    assert all(c.in_channels == 1 and c.out_channels == 4 for c in convs)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(1536, 64), (64, 1)]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.3]
    assert not model.training


def test_build_is_seeded_and_leaves_the_callers_rng_alone():
    preset = NETWORKS.get("tutorial_mlp")
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = preset.build(0), preset.build(0), preset.build(1)
    assert torch.equal(torch.rand(3), expected_next)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_network_input_is_one_float64_draw_rounded_to_the_dtype():
    preset = NETWORKS.get("tutorial_mlp")
    x64 = network_input(preset, torch.float64, CPU, 7)
    x32 = network_input(preset, torch.float32, CPU, 7)
    assert torch.equal(x32, x64.float())
    assert not torch.equal(x64, network_input(preset, torch.float64, CPU, 8))


def test_prepared_network_has_the_run_dtype_and_mode():
    model = prepare_network(NETWORKS.get("discriminator"), torch.float64, CPU, 0, train=True)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert all(m.training for m in model.modules())


# --- out.backward(v) and torch.autograd.grad(out, x, grad_outputs=v) ------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["tutorial_mlp", "discriminator"])
def test_backward_and_autograd_grad_agree_bitwise(name, dtype):
    run = network_run(name, DTYPES[dtype], CPU, "random", False, 0)
    assert backward_vs_autograd(run.model, run.x, run.v) == {
        "bitwise_backward_vs_autograd": True, "max_abs_diff_backward_vs_autograd": 0.0}


def test_backward_leaves_neither_weight_gradients_nor_the_input_touched():
    run = network_run("tutorial_mlp", torch.float64, CPU, "ones", False, 0)
    before = run.x.clone()
    vjp_backward(run.model, run.x, run.v)
    vjp_backward(run.model, run.x, run.v)
    assert all(p.grad is None for p in run.model.parameters())
    assert torch.equal(run.x, before) and run.x.grad is None and not run.x.requires_grad


def test_records_carry_the_bitwise_result_for_every_method(mlp):
    for outcome in mlp.values():
        assert outcome.record["bitwise_backward_vs_autograd"] is True
        assert outcome.record["max_abs_diff_backward_vs_autograd"] == 0.0


# --- accuracy against the float64 reference ---------------------------------------------------

def test_float64_autograd_is_the_reference_so_its_error_is_exactly_zero(mlp):
    record = mlp[("autograd", "float64")].record
    assert record["reference"] == REFERENCE == "float64-autograd"
    assert record["max_abs_err"] == 0.0 and record["pass_rate"] == 1.0


@pytest.mark.parametrize("method", ["autograd", "backward", "loop", "forward_ad"])
def test_ad_methods_match_the_float64_reference_to_their_dtype(mlp, method):
    r64, r32 = mlp[(method, "float64")].record, mlp[(method, "float32")].record
    assert r64["status"] == r32["status"] == "ok"
    assert r64["norm_rel_err"] <= 1e-13 and r64["max_ulp"] <= 64
    assert 1e-9 < r32["norm_rel_err"] <= 1e-5
    assert r32["pass_rate"] == 1.0


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


def test_a_one_sided_difference_is_less_accurate_than_the_central_one():
    run = network_run("tutorial_mlp", torch.float64, CPU, "ones", False, 0)
    idx = np.arange(0, 100, 5)
    ref = vjp_autograd(run.model, run.x, run.v).reshape(-1)[idx]
    errors = {scheme: float((vjp_finite(run.model, run.x, run.v, idx, scheme=scheme) - ref)
                            .abs().max()) for scheme in ("central", "forward")}
    assert errors["forward"] > 100 * errors["central"]


def test_finite_at_a_fixed_step_uses_it():
    record = study("tutorial_mlp", "finite", "float64", params={"h": 1e-3}).record
    assert (record["h"], record["h_mode"]) == (1e-3, "absolute")
    assert 1e-8 < record["norm_rel_err"] < 1e-4  # truncation h^2 dominates


def test_forward_mode_agrees_with_reverse_mode_along_a_random_direction(mlp):
    assert mlp[("autograd", "float64")].record["forward_mode_rel_diff"] <= 1e-14
    assert mlp[("autograd", "float32")].record["forward_mode_rel_diff"] <= 1e-5


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


def test_a_relu_kink_inside_the_stencil_is_detected_and_one_outside_is_not():
    model = nn.Sequential(nn.ReLU())
    x = torch.tensor([1e-3, 1.0, -1.0])  # float32 step ~ 4.9e-3 reaches across 0 from 1e-3
    values, crossed = finite_with_kinks(model, x, torch.ones(3), np.arange(3))
    assert crossed.tolist() == [True, False, False]
    assert values[1:].tolist() == [1.0, 0.0]


def test_gradient_penalty_of_a_piecewise_linear_network_is_exactly_zero(disc_finite32):
    assert disc_finite32.record["gp_rel_err"] == 0.0
    assert disc_finite32.record["gp_max_abs"] == 0.0


def test_gradient_penalty_double_backward_matches_finite_differences(mlp):
    record = mlp[("autograd", "float32")].record
    assert record["gp_max_abs"] > 1e-3
    assert record["gp_rel_err"] <= 1e-7
    assert record["gp_n_directions"] == 3


def test_penalty_gradient_is_the_exact_double_backward():
    # out = x^3: g = 3x^2, P = sum 9x^4, dP/dx = 36x^3.
    x = torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64)
    np.testing.assert_allclose(penalty_gradient(lambda t: t**3, x).numpy(), 36 * x.numpy()**3,
                               rtol=1e-15)


# --- train mode and v ---------------------------------------------------------------------

def test_train_mode_is_reproducible_and_differs_from_eval_when_dropout_is_present():
    def vjp(train, seed=0):
        run = network_run("discriminator", torch.float32, CPU, "ones", train, seed)
        return vjp_autograd(run.model, run.x, run.v)

    train = vjp(True)
    assert torch.equal(train, vjp(True))
    assert not torch.equal(train, vjp(False))
    assert not torch.equal(train, vjp(True, seed=1))


def test_train_mode_reference_sees_the_same_dropout_mask():
    run = network_run("discriminator", torch.float32, CPU, "ones", True, 0)
    vjp32 = vjp_autograd(run.model, run.x, run.v).double()
    vjp64 = vjp_autograd(float64_copy(run.model), run.x.double(), run.v.double())
    assert float((vjp32 - vjp64).abs().max() / vjp64.abs().max()) <= 1e-5


def test_train_mode_changes_nothing_in_a_network_without_stochastic_layers():
    train = study("tutorial_mlp", "autograd", "float32", train=True).points["df"]
    evaluate = study("tutorial_mlp", "autograd", "float32").points["df"]
    pd.testing.assert_series_equal(train, evaluate)


def test_random_v_is_seeded_and_ones_is_ones():
    shape = torch.Size([10, 1])
    assert torch.equal(cotangent(shape, "ones", torch.float32, CPU, 0), torch.ones(shape))
    a = cotangent(shape, "random", torch.float32, CPU, 0)
    assert torch.equal(a, cotangent(shape, "random", torch.float32, CPU, 0))
    assert not torch.equal(a, cotangent(shape, "random", torch.float32, CPU, 1))
    assert torch.equal(a, cotangent(shape, "random", torch.float64, CPU, 0).float())


def test_a_random_v_run_is_reproducible_and_differs_from_ones():
    first = study(method="backward", dtype="float32", v_kind="random")
    again = study(method="backward", dtype="float32", v_kind="random")
    ones = study(method="backward", dtype="float32")
    assert first.record["v_kind"] == "random"
    pd.testing.assert_frame_equal(first.points, again.points)
    assert not np.array_equal(first.points["df"], ones.points["df"])


# --- the record ------------------------------------------------------------------------------

def recomputed(points: pd.DataFrame, dtype: torch.dtype) -> dict:
    """The record's error columns, from the points table alone."""
    used = points[points["excluded"] == ""]
    err = (used["df"] - used["df_ref"]).abs().to_numpy()
    ref = used["df_ref"].abs().to_numpy()
    rtol, atol = TOLERANCES[dtype]
    return {"n_checked": len(points), "n_excluded": int((points["excluded"] != "").sum()),
            "max_abs_err": err.max(), "mean_abs_err": err.mean(),
            "rms_err": math.sqrt(np.mean(err**2)),
            "max_rel_err": np.max(err[ref > 0] / ref[ref > 0]),
            "norm_rel_err": err.max() / ref.max(),
            "median_ulp": np.median(err / ulp(ref, dtype)),
            "max_ulp": np.max(err / ulp(ref, dtype)), "pass_rate": np.mean(err <= atol + rtol * ref)}


@pytest.mark.parametrize("method", ["autograd", "backward", "loop", "finite", "forward_ad"])
def test_record_errors_equal_a_recomputation_from_the_points_table(mlp, method):
    outcome = mlp[(method, "float32")]
    assert list(outcome.points.columns) == ["index", "x", "df", "df_ref", "df_ref_lo", "abs_err",
                                            "ulp_err", "excluded"]
    for key, value in recomputed(outcome.points, torch.float32).items():
        assert outcome.record[key] == pytest.approx(value, rel=1e-12, abs=0), key


def test_discriminator_record_errors_equal_a_recomputation_from_its_points(disc_finite32):
    for key, value in recomputed(disc_finite32.points, torch.float32).items():
        assert disc_finite32.record[key] == pytest.approx(value, rel=1e-12, abs=0), key


def test_points_table_holds_the_dtype_rounded_input_values(mlp):
    run = network_run("tutorial_mlp", torch.float32, CPU, "ones", False, 0)
    points = mlp[("autograd", "float32")].points
    np.testing.assert_array_equal(points["x"], run.x.reshape(-1).double().numpy())
    assert (points["df_ref_lo"] == 0).all()


def test_network_records_have_every_column_a_function_record_has(mlp, compose_config,
                                                                  reference_cache, tmp_path):
    from harness.config import validate
    from harness.runner import run_study

    cfg = compose_config("fn=sin", "grid.n=3", "timing.enabled=false",
                         f"reference.cache_dir={reference_cache}")
    core = run_study(validate(cfg), tmp_path, log=lambda _: None).record
    network = mlp[("autograd", "float64")].record
    # The failure triage models the rounding of elementwise functions; it has no model of a
    # network's accumulated rounding, so network records carry no triage_* counts.
    assert {c for c in set(core) - set(network) if not c.startswith("triage_")} == set()
    assert set(NETWORK_COLUMNS) <= set(network)
    assert (network["fn"], network["fn_source"], network["n"], network["n_excluded"]) == \
        ("tutorial_mlp", "network", 100, 0)


def test_timing_columns_when_timed():
    timing = TimingConf(min_run_time=0.01)
    whole = study(method="autograd", timing=timing).record
    per_point = study(method="finite", timing=timing).record
    assert whole["n_timed"] == 100 and whole["time_median_s"] > 0
    assert per_point["n_timed"] == TIMED_POINTS
    assert per_point["points_per_s"] == pytest.approx(TIMED_POINTS / per_point["time_median_s"])
    assert whole["cost_vs_forward"] > 0 and len(whole["raw_times_s"]) >= 1


def test_an_elementwise_method_is_recorded_unsupported_with_the_choices():
    record = study(method="stencil").record
    assert record["status"] == "unsupported"
    assert record["status_reason"] == (
        "stencil: not a vector-Jacobian method for networks; unknown method 'stencil'; "
        "choose one of: autograd, backward, finite, forward_ad, loop")


def test_the_loop_is_refused_for_large_outputs_only():
    supports = VJP_METHODS.get("loop").supports
    assert supports(LOOP_MAX_OUTPUTS) is None
    assert supports(LOOP_MAX_OUTPUTS + 1) == (
        "the output has 1001 elements; the loop does one backward pass per element and is "
        "run only up to 1000")


# --- configuration ---------------------------------------------------------------------------

def test_fn_files_exist_for_every_network_and_name_it():
    files = {p.stem: OmegaConf.load(p) for p in CONF_FN.glob("*.yaml")}
    networks = {stem: conf for stem, conf in files.items() if conf.kind == "network"}
    assert sorted(networks) == NETWORKS.names()
    for stem, conf in networks.items():
        assert (conf.name, conf.label, conf.expr, conf.v, conf.train) == \
            (stem, stem, None, "ones", False)


def network_cfg(**fn):
    return OmegaConf.create({
        "fn": {"kind": "network", "name": "discriminator", "v": "ones", "train": False,
               "max_points": None, **fn},
        "method": {"name": "finite", "scheme": "central", "h": None}, "order": 1,
        "dtype": {"name": "float32"}, "device": {"name": "cpu"}, "seed": 3,
        "timing": {"enabled": True, "min_run_time": 0.5, "num_threads": None}})


def test_network_study_args_from_a_config():
    args = network_study_args(network_cfg(v="random", train=True, max_points=16))
    assert {k: v for k, v in args.items() if k != "timing"} == {
        "name": "discriminator", "method": "finite", "dtype": torch.float32, "device": CPU,
        "v_kind": "random", "train": True, "seed": 3, "max_points": 16,
        "params": {"scheme": "central", "h": None}}


@pytest.mark.parametrize("change, message", [
    ({"fn": {"v": "twos"}}, "unknown fn.v 'twos'; choose one of: ones, random"),
    ({"fn": {"train": "yes"}}, "fn.train must be true or false, got 'yes'"),
    ({"fn": {"max_points": 1}}, "fn.max_points must be >= 2, got 1"),
    ({"fn": {"name": "resnet"}}, "unknown network 'resnet'; choose one of: discriminator, "
                                 "tutorial_mlp"),
    ({"order": 2}, "networks: order must be 1 (the vector-Jacobian product; the "
                   "gradient-penalty check covers second order), got 2"),
    ({"method": {"scheme": "upwind"}}, "unknown method.scheme 'upwind'; choose one of: "
                                       "central, forward, backward"),
])
def test_network_config_errors_are_one_exact_line(change, message):
    cfg = network_cfg(**change.pop("fn", {}))
    cfg.merge_with(change)
    with pytest.raises(ConfigError) as caught:
        network_study_args(cfg)
    assert str(caught.value) == message


@pytest.mark.skipif("v" not in {f.name for f in dataclasses.fields(FnConf)},
                    reason="FnConf has no network fields (v, train) yet")
def test_fn_discriminator_composes_into_network_arguments(compose_config):
    cfg = compose_config("fn=discriminator", "method=finite", "dtype=float32", "fn.v=random")
    args = network_study_args(cfg)
    assert (args["name"], args["v_kind"], args["train"], args["max_points"]) == \
        ("discriminator", "random", False, None)


# --- for reports -------------------------------------------------------------------------------

def test_consistency_table_and_words_summarize_network_records(mlp):
    records = pd.DataFrame([o.record for o in mlp.values()])
    table = consistency_table(records)
    assert list(table["dtype"]) == ["float32", "float64"]
    assert table["bitwise_backward_vs_autograd"].tolist() == [True, True]
    assert table["finite_norm_rel_err"].tolist() == [
        mlp[("finite", d)].record["norm_rel_err"] for d in ("float32", "float64")]
    words = consistency_words(table)
    assert words[1].startswith("tutorial_mlp (float64, cpu, v=ones): out.backward(v) and "
                               "torch.autograd.grad agree bitwise; forward mode within ")
    assert consistency_rows(mlp[("finite", "float64")].record)[2] == (
        "out.backward(v) == autograd.grad(out, x, v), bitwise", True)
    assert consistency_table(pd.DataFrame({"fn": ["sin"], "fn_source": ["builtin"],
                                           "status": ["ok"]})).empty


def test_network_figures_draw_entries_against_the_reference_and_errors_per_element(
        disc_finite32):
    from harness.network_plots import vjp_error_figure, vjp_figure

    record, points = disc_finite32.record, disc_finite32.points
    scatter = vjp_figure(points, record).axes[0]
    assert scatter.get_xlabel() == "reference entry of vᵀJ"
    assert any("excluded" in t.get_text() for t in scatter.get_legend().get_texts())
    errors = vjp_error_figure(points, record).axes[0]
    assert errors.get_xlabel() == "input element (flat index)"
    assert errors.get_title().endswith("float32 on cpu — v=ones")


def test_kink_watching_leaves_no_hooks_behind():
    run = network_run("discriminator", torch.float32, CPU, "ones", False, 0)
    finite_with_kinks(run.model, run.x, run.v, np.array([0]))
    assert all(not m._forward_hooks for m in run.model.modules())
