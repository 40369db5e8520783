"""harness.study.grid: binade and random grids over a dtype's range, kept to the domain;
grid.kind validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.config.validate import ConfigError, validate
from harness.study.elementwise import ElementwiseSpec, overflow_threshold
from harness.study.grid import (binade_exponents, binade_values, grid_size, grid_values,
                                random_values)
from harness.study.settings import GridConf


@pytest.mark.parametrize("dtype, lowest, highest, sub", [
    (torch.float64, -1022, 1023, -1074), (torch.float32, -126, 127, -149),
    (torch.float16, -14, 15, -24), (torch.bfloat16, -126, 127, -133)])
def test_binades_span_exactly_the_dtypes_finite_range(dtype, lowest, highest, sub):
    assert binade_exponents(dtype, False) == (lowest, highest)
    assert binade_exponents(dtype, True) == (sub, highest)


def test_binades_are_n_per_binade_evenly_in_log2_on_both_signs_with_signed_zeros():
    x = binade_values(torch.float64, 4)
    positive = x[x > 0]
    assert len(positive) == 4 * 2046 and len(x) == 2 * len(positive) + 2
    assert positive[0] == 2.0**-1022 and positive[-1] == 2.0 ** (1023 + 3 / 4)
    assert np.allclose(np.diff(np.log2(positive)), 0.25, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(x[x < 0], -positive[::-1])
    zeros = x[x == 0]
    assert list(np.signbit(zeros)) == [True, False]


def test_binade_values_are_exact_in_the_dtype():
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        x = binade_values(dtype, 3, subnormals=True)
        assert np.array_equal(torch.tensor(x).to(dtype).double().numpy(), x)
        assert np.all(np.isfinite(x)) and len(np.unique(x[x != 0])) == np.sum(x != 0)


def test_subnormals_add_the_binades_below_the_smallest_normal_number():
    with_sub = binade_values(torch.float16, 1, subnormals=True)
    assert with_sub[with_sub > 0][0] == 2.0**-24 and 2.0**-14 in with_sub
    assert binade_values(torch.float16, 1)[binade_values(torch.float16, 1) > 0][0] == 2.0**-14


def test_random_draws_are_seeded_finite_and_cover_both_signs_and_many_binades():
    a, b = random_values(torch.float32, 2000, 7), random_values(torch.float32, 2000, 7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, random_values(torch.float32, 2000, 8))
    assert np.all(np.isfinite(a)) and (a < 0).any() and (a > 0).any()
    # Uniform bit patterns spread evenly over exponents: most of the 254 binades are hit.
    assert len(np.unique(np.frexp(np.abs(a[a != 0]))[1])) > 200


def test_random_bfloat16_values_are_bfloat16_numbers():
    x = random_values(torch.bfloat16, 500, 0)
    assert np.array_equal(torch.tensor(x).to(torch.bfloat16).double().numpy(), x)


def test_random_grid_uses_the_runs_seed_unless_grid_seed_is_set():
    grid = GridConf(kind="random", n=50)
    assert np.array_equal(grid_values(grid, torch.float64, seed=3), random_values(torch.float64, 50, 3))
    seeded = GridConf(kind="random", n=50, seed=11)
    assert np.array_equal(grid_values(seeded, torch.float64, seed=3),
                          random_values(torch.float64, 50, 11))


def test_grid_size_is_unknown_for_binades_and_the_draws_for_random():
    assert math.isnan(grid_size(GridConf(kind="binades")))
    assert grid_size(GridConf(kind="random")) == 2000 and grid_size(GridConf(kind="random", n=9)) == 9


def test_tail_grid_is_kept_to_the_functions_domain(compose_config):
    study = validate(compose_config("fn=torch", "fn.name=acosh", "grid.kind=binades",
                                    "dtype=float32", "device=cpu"))
    x = ElementwiseSpec(study).x_full.double().numpy()
    float32 = lambda v: float(torch.tensor(v, dtype=torch.float32))  # noqa: E731
    assert np.all(x > 1) and x[0] == float32(2.0**0.25) and x[-1] == float32(2.0**127.75)


def test_arange_grid_still_counts_domain_points_instead_of_dropping_them(compose_config):
    study = validate(compose_config("fn=log", "device=cpu"))
    assert ElementwiseSpec(study).x_full.numel() == 2000


@pytest.mark.parametrize("dtype, threshold", [(torch.float16, 65520.0),
                                              (torch.float32, (2 - 2.0**-24) * 2.0**127)])
def test_overflow_threshold_is_the_largest_finite_number_plus_half_an_ulp(dtype, threshold):
    assert overflow_threshold(dtype) == threshold
    assert overflow_threshold(torch.float64) == math.inf


def test_true_derivative_beyond_the_dtypes_range_is_excluded_and_counted(run):
    # exp'(x) = e^x passes float16's 65504 at x = 11.09.
    r = run("fn=exp", "dtype=float16", "grid.start=10", "grid.stop=12.5", "grid.step=0.5").record
    assert r["n_excluded_beyond_range"] == 2 and r["n_nonfinite"] == 0


@pytest.mark.parametrize("overrides, message", [
    (("grid.kind=bins",), "unknown grid.kind 'bins'; choose one of: arange, linspace, binades, random"),
    (("grid.kind=linspace",), "grid.kind=linspace needs grid.n, the number of points"),
    (("grid.kind=arange", "grid.n=5"), "grid.kind=arange takes grid.start, grid.stop and "
                                       "grid.step, not grid.n=5; for n evenly spaced points use "
                                       "grid.kind=linspace"),
    (("grid.kind=binades", "grid.per_binade=0"), "grid.per_binade must be >= 1, got 0"),
    (("grid.kind=random", "grid.n=0"), "grid.n (the draws of grid.kind=random) must be >= 1, got 0"),
    (("hunt.rounds=-1",), "hunt.rounds must be >= 0, got -1"),
    (("hunt.seeds=0",), "hunt.seeds must be >= 1, got 0"),
])
def test_bad_grid_and_hunt_settings_get_one_line_naming_the_choice(compose_config, overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(compose_config(*overrides))
    assert str(info.value) == message
