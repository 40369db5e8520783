"""harness.study.flow and its pieces (grid, record): one pipeline, whatever the subject."""
from __future__ import annotations

import dataclasses

import mpmath
import numpy as np
import pandas as pd
import pytest
import torch

from harness.config.validate import validate
from harness.methods import METHODS
from harness.study.grid import check_indices, grid_size, make_grid
from harness.study.flow import run_study, time_study
from harness.study.record import unsupported_reason
from harness.study.settings import GridConf, TimingConf
from support import network_study, run_network

CUDA = torch.device("cuda")


# --- the grid -------------------------------------------------------------------------------

def test_float16_grid_is_rounded_once_and_reference_sees_the_rounded_values(run):
    points = run("fn=sin", "method=autograd", "dtype=float16", "grid.n=32").points
    x = points["x"].to_numpy()
    exact = np.linspace(-10, 10, 32)
    # One rounding, float64 -> float16 (to nearest), of the float64 grid ...
    np.testing.assert_array_equal(x, exact.astype(np.float16).astype(np.float64))
    assert not np.array_equal(x, exact)
    # ... and the reference is cos at those rounded values, not at the grid's float64 ones.
    with mpmath.workdps(40):
        truth = np.array([float(mpmath.cos(mpmath.mpf(float(v)))) for v in x])
    np.testing.assert_array_equal(points["df_ref"], truth)


def test_make_grid_is_the_tutorials_arange_or_a_linspace():
    arange = make_grid(GridConf(), torch.float64, torch.device("cpu"))
    np.testing.assert_array_equal(arange.numpy(), np.arange(-10.0, 10.0, 0.01))
    linspace = make_grid(GridConf(start=-1.0, stop=1.0, n=5), torch.float32, torch.device("cpu"))
    assert linspace.dtype == torch.float32 and linspace.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]


@pytest.mark.parametrize("grid, size", [(GridConf(), 2000), (GridConf(n=7), 7),
                                        (GridConf(start=0.0, stop=1.0, step=0.3), 4)])
def test_grid_size_counts_the_points_without_building_the_grid(grid, size):
    assert grid_size(grid) == size


def test_checked_points_are_all_of_a_small_grid_and_a_strided_sample_with_both_ends():
    assert check_indices(5, 10).tolist() == [0, 1, 2, 3, 4]
    assert check_indices(10, 4).tolist() == [0, 3, 6, 9]


# --- the record --------------------------------------------------------------------------------

def test_points_table_has_one_row_per_checked_point_with_values_errors_and_reasons(run):
    outcome = run("fn=relu", "method=finite", "grid.n=5", "grid.start=-1", "grid.stop=1")
    assert list(outcome.points.columns) == ["index", "x", "f", "df", "df_ref", "df_ref_lo",
                                            "abs_err", "ulp_err", "excluded", "verdict",
                                            "df_ref_uncertainty", "triage"]
    assert outcome.points["excluded"].tolist() == ["", "", "kink", "", ""]
    assert outcome.points["verdict"].tolist() == ["accurate", "accurate", "excluded",
                                                  "accurate", "accurate"]
    assert outcome.record["n_checked"] == 5 and outcome.record["n_excluded_kink"] == 1


@pytest.mark.parametrize("message, reason", [
    ("\"erf_vml_cpu\" not implemented for 'ComplexDouble'\nmore",
     "\"erf_vml_cpu\" not implemented for 'ComplexDouble'"),
    ("Float8 does not support this", "Float8 does not support this"),
    ("index 3 is out of bounds", None),
])
def test_only_torchs_no_kernel_errors_count_as_unsupported(message, reason):
    assert unsupported_reason(RuntimeError(message)) == reason


def test_only_the_compiled_method_resets_the_compiler(run, monkeypatch):
    resets = []
    monkeypatch.setattr(torch.compiler, "reset", lambda: resets.append(1))
    run("fn=sin", "method=autograd", "grid.n=5")
    assert resets == []
    compiled = METHODS.get("compiled")
    compiled.prepare(torch.sin)  # compiles lazily, at its first call; no reset of its own
    assert resets == []
    compiled.begin()  # once per study, so the triage's other dtype keeps the grid's kernel
    assert resets == [1]


def recording(seen: list, shape_specialized: bool):
    """The autograd method, noting the shape and the thread count of every call."""
    autograd = METHODS.get("autograd")

    def fn(f, x, n=1):
        seen.append((tuple(x.shape), torch.get_num_threads()))
        return autograd.fn(f, x, n=n)
    return dataclasses.replace(autograd, fn=fn, shape_specialized=shape_specialized)


@pytest.mark.parametrize("n", [50, 10])  # the hunt probes 64, 12 and 1 points
def test_a_shape_specialized_method_only_ever_sees_the_grids_shape(compose_config,
                                                                     reference_cache, tmp_path,
                                                                     n):
    # tanh in float32: points whose error the triage checks in float64 too, and a hunt.
    cfg = compose_config("fn=tanh", "dtype=float32", f"grid.n={n}", "grid.start=-12",
                         "grid.stop=12", "device=cpu", "timing.enabled=false",
                         f"reference.cache_dir={reference_cache}")
    outcomes, seen = {}, {}
    for specialized in (True, False):
        seen[specialized] = []
        study = dataclasses.replace(validate(cfg), method=recording(seen[specialized],
                                                                    specialized))
        outcomes[specialized] = run_study(study, tmp_path, log=lambda line: None)
    assert {shape for shape, _ in seen[True]} == {(n,)}
    assert {shape for shape, _ in seen[False]} > {(n,)}  # without padding: other sizes
    # Padding changes nothing a reader sees: same points, same hunt, same worst point.
    pd.testing.assert_frame_equal(outcomes[True].points, outcomes[False].points)
    for key in ("n_hunt", "n_wrong_hunt", "worst_x", "worst_ulp", "triage_roundoff",
                "triage_cancellation"):
        assert outcomes[True].record[key] == outcomes[False].record[key], key
    assert outcomes[True].record["triage_cancellation"] > 0  # the triage did run


@pytest.mark.parametrize("overrides, threads", [((), 1), (("timing.num_threads=2",), 2)])
def test_the_study_runs_at_the_thread_count_it_is_timed_at(compose_config, reference_cache,
                                                           tmp_path, overrides, threads):
    cfg = compose_config("fn=sin", "grid.n=20", "device=cpu", "timing.enabled=false",
                         f"reference.cache_dir={reference_cache}", *overrides)
    seen = []
    study = dataclasses.replace(validate(cfg), method=recording(seen, False))
    before = torch.get_num_threads()
    run_study(study, tmp_path, log=lambda line: None)
    assert {count for _, count in seen} == {threads}
    assert torch.get_num_threads() == before  # and the process's own count is put back


@pytest.mark.parametrize("num_threads, expected", [(None, 1), (2, 2)])
def test_a_fresh_timing_process_times_a_network_at_the_timing_thread_count(num_threads,
                                                                           expected):
    # tutorial_mlp has 100 input elements: the rule says 1 thread below 32768 points; the
    # network's own study keeps torch's default, its timing does not.
    timing = TimingConf(min_run_time=0.01, max_run_time=0.05, num_threads=num_threads)
    pair = time_study(network_study("tutorial_mlp", timing=timing), log=lambda line: None)
    assert pair.num_threads == expected


# --- on a CUDA device ------------------------------------------------------------------------

@pytest.mark.cuda
def test_a_study_on_cuda_is_checked_against_the_same_reference(run):
    cpu = run("fn=sin", "method=autograd", "grid.n=101", "device=cpu")
    cuda = run("fn=sin", "method=autograd", "grid.n=101", "device=cuda")
    assert (cuda.record["status"], cuda.record["device"]) == ("ok", "cuda")
    np.testing.assert_array_equal(cuda.points["x"], cpu.points["x"])
    np.testing.assert_array_equal(cuda.points["df_ref"], cpu.points["df_ref"])
    assert cuda.record["max_ulp"] <= 2.0  # CUDA's double cos: within 2 ulps (its docs)


@pytest.mark.cuda
def test_a_timed_cuda_study_counts_the_work_done_not_queued(compose_config, reference_cache,
                                                            tmp_path):
    from harness.config.validate import validate
    from harness.study.flow import run_study

    cfg = compose_config("fn=tanh", "method=autograd", "device=cuda", "grid.n=100000",
                         "timing.min_run_time=0.05", "timing.max_run_time=0.25",
                         f"reference.cache_dir={reference_cache}",
                         "reference.max_points=50")
    record = run_study(validate(cfg), tmp_path, log=lambda line: None).record
    assert record["status"] == "ok" and record["n_timed"] == 100000
    assert 0 < record["time_min_s"] <= record["time_median_s"]
    assert record["forward_median_s"] > 0 and record["cost_vs_forward"] > 0


@pytest.mark.cuda
def test_a_network_study_on_cuda_matches_its_float64_reference():
    outcome = run_network("tutorial_mlp", "autograd", "float32", device=CUDA)
    record = outcome.record
    assert (record["status"], record["device"]) == ("ok", "cuda")
    assert record["norm_rel_err"] <= 1e-5 and record["assert_close_rate"] == 1.0
    # cuBLAS sums in another order than the CPU: a parameter gradient that cancels to a
    # small value keeps fewer correct digits relative to itself (on an H100, 1 of 100
    # entries missed float32's rtol while the norm error was 1.4e-7).
    assert record["rel_pass_rate"] >= 0.95
    assert record["gp_rel_err"] <= 1e-6


def test_an_op_without_a_second_derivative_is_unsupported_not_an_error(run):
    record = run("fn=hardsigmoid", "order=2", "method=autograd", "grid.n=5").record
    assert (record["status"], record["status_reason"]) == (
        "unsupported", "autograd: derivative for aten::hardsigmoid_backward is not implemented")
