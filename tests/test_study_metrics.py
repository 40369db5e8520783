"""harness.study.metrics: ULP spacing per dtype, and exact statistics on hand-made arrays."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.dtypes import facts
from harness.study.metrics import abs_error, point_errors, summarize, ulp, verdicts

NORMAL64 = np.array([1.0, -1.0, 1.5, 3.0, 1e-3, 12345.678, 1e30, 2.0**-100, 2.0**1000, 1e-300])
NORMAL32 = np.array([1.0, -1.0, 1.5, 3.0, 1e-3, 12345.678, 1e30, 2.0**-100, 3e38, 1e-37],
                    dtype=np.float32)


def torch_spacing(values: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Distance from |v| to the next representable value of dtype, via torch.nextafter."""
    v = torch.tensor(values, dtype=dtype).abs()
    return (torch.nextafter(v, torch.full_like(v, math.inf)) - v).double().numpy()


# --- ulp -------------------------------------------------------------------------------------

def test_ulp_is_numpy_spacing_for_float64():
    np.testing.assert_array_equal(ulp(NORMAL64, torch.float64), np.spacing(np.abs(NORMAL64)))


def test_ulp_is_numpy_spacing_for_float32():
    expected = np.spacing(np.abs(NORMAL32)).astype(np.float64)
    np.testing.assert_array_equal(ulp(NORMAL32.astype(np.float64), torch.float32), expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_ulp_is_torch_spacing_for_half_types(dtype):
    values = torch.tensor([1.0, -1.0, 1.5, 3.0, 1e-3, 100.0, -7.0, 0.1], dtype=dtype)
    as64 = values.double().numpy()
    np.testing.assert_array_equal(ulp(as64, dtype), torch_spacing(as64, dtype))


def test_ulp_of_float64_subnormal_is_the_smallest_subnormal():
    assert ulp(np.array([1e-310]), torch.float64)[0] == np.spacing(1e-310) == 2.0**-1074


def test_ulp_of_float32_subnormal_is_the_smallest_float32_subnormal():
    assert ulp(np.array([1e-40]), torch.float32)[0] == 2.0**-149


def test_ulp_at_a_binade_edge_is_the_spacing_above():
    # The spacing just above 2 is 2^-51; just below it would be 2^-52.
    assert ulp(np.array([2.0]), torch.float64)[0] == 2.0**-51


@pytest.mark.parametrize("dtype, smallest", [(torch.float64, 2.0**-1074),
                                             (torch.float32, 2.0**-149)])
def test_ulp_of_zero_is_the_smallest_subnormal(dtype, smallest):
    assert ulp(np.array([0.0]), dtype)[0] == smallest


# --- per-point errors --------------------------------------------------------------------------

def test_abs_error_uses_the_low_part_of_the_reference():
    err = abs_error(np.array([1.0]), np.array([1.0]), np.array([2.0**-60]))
    assert err.tolist() == [2.0**-60]


def test_point_errors_give_abs_error_and_ulps_at_the_reference():
    ref = np.array([1.0, 2.0, 4.0])
    df = ref + np.array([2.0**-52, 2.0**-51, -2.0**-49])
    err, ulps = point_errors(df, ref, np.zeros(3), torch.float64)
    assert err.tolist() == [2.0**-52, 2.0**-51, 2.0**-49]
    assert ulps.tolist() == [1.0, 1.0, 2.0]


# --- summarize --------------------------------------------------------------------------------

REF = np.array([1.0, 2.0, 4.0, 0.5, 8.0])
ERR = np.array([0.0, 2.0**-51, 2.0**-49, 2.0**-52, 2.0])  # 0, 1, 2, 2 and 2^50 ulps
SIGN = np.array([1.0, 1.0, -1.0, 1.0, 1.0])


def stats(df=None, ref=REF, lo=None, excluded=None, dtype=torch.float64, uncertainty=None):
    df = REF + SIGN * ERR if df is None else df
    lo = np.zeros_like(ref) if lo is None else lo
    excluded = np.zeros(ref.shape, dtype=bool) if excluded is None else excluded
    return summarize(df, ref, lo, excluded, dtype, uncertainty)


def test_summary_statistics_are_exact():
    s = stats()
    assert s["n_used"] == 5 and s["n_nonfinite"] == 0
    assert s["max_abs_err"] == 2.0
    assert s["mean_abs_err"] == np.mean(ERR)
    assert s["rms_err"] == math.sqrt(np.mean(ERR**2))
    assert s["max_rel_err"] == 0.25                       # 2 / 8
    assert s["norm_rel_err"] == 0.25                      # max|err| / max|ref| = 2 / 8
    assert s["median_ulp"] == 2.0                         # of 0, 1, 2, 2, 2^50
    assert s["max_ulp"] == 2.0**50                       # 2 / ulp(8) = 2 / 2^-49


def test_pass_rates_count_points_within_the_float64_tolerance():
    s = stats()
    assert (s["rtol"], s["atol"]) == (facts(torch.float64).rtol, facts(torch.float64).atol) \
        == (1e-7, 1e-7)
    assert s["assert_close_rate"] == 4 / 5                # the error of 2 at ref 8 fails
    assert s["rel_pass_rate"] == 4 / 5
    assert s["n_wrong"] == 0                              # 2 at ref 8: a correct leading digit


def test_excluded_points_leave_every_statistic():
    excluded = np.array([False, False, False, False, True])
    s = stats(excluded=excluded)
    assert s["n_used"] == 4
    assert s["max_abs_err"] == 2.0**-49
    assert s["median_ulp"] == 1.5                         # of 0, 1, 2, 2
    assert s["max_ulp"] == 2.0
    assert s["max_rel_err"] == 2.0**-51                   # 2^-49 / 4 and 2^-52 / 0.5
    assert s["norm_rel_err"] == 2.0**-51                  # 2^-49 / max|ref| = 4
    assert s["rel_pass_rate"] == s["assert_close_rate"] == 1.0


def test_non_finite_method_values_are_counted_apart_and_fail():
    df = REF + SIGN * ERR
    df[1], df[4] = math.nan, math.inf
    s = stats(df=df)
    assert s["n_used"] == 5 and s["n_nonfinite"] == 2
    assert s["max_abs_err"] == 2.0**-49                   # over the 3 finite points
    assert s["mean_abs_err"] == np.mean([0.0, 2.0**-49, 2.0**-52])
    assert s["assert_close_rate"] == s["rel_pass_rate"] == 3 / 5  # the two non-finite fail
    assert s["n_wrong"] == 0                              # counted apart, as non-finite


def test_points_with_non_finite_reference_are_not_used():
    ref = REF.copy()
    ref[4] = math.nan
    s = stats(ref=ref)
    assert s["n_used"] == 4 and s["n_nonfinite"] == 0
    assert s["max_abs_err"] == 2.0**-49
    assert s["assert_close_rate"] == s["rel_pass_rate"] == 1.0


def test_everything_excluded_gives_nan_statistics():
    s = stats(excluded=np.ones(5, dtype=bool))
    assert s["n_used"] == 0 and s["n_nonfinite"] == 0
    for key in ("max_abs_err", "mean_abs_err", "rms_err", "max_rel_err", "norm_rel_err",
                "median_ulp", "max_ulp", "assert_close_rate", "rel_pass_rate"):
        assert math.isnan(s[key]), key


def test_relative_error_skips_points_whose_reference_is_zero():
    s = stats(df=np.array([1e-20, 3.0]), ref=np.array([0.0, 2.0]))
    assert s["max_abs_err"] == 1.0
    assert s["max_rel_err"] == 0.5


def test_pass_threshold_is_atol_plus_rtol_times_ref_inclusive():
    rtol, atol = facts(torch.float32).rtol, facts(torch.float32).atol
    assert (rtol, atol) == (1.3e-6, 1e-5)
    # At ref 0 the bar is atol exactly (inclusive); at ref 10 it is atol + 10 rtol.
    ref = np.array([0.0, 0.0, 10.0, 10.0])
    edge = atol + rtol * 10.0
    df = np.array([atol, np.nextafter(atol, 1.0), 10.0 + 0.99 * edge, 10.0 + 1.01 * edge])
    assert stats(df=df, ref=ref, dtype=torch.float32)["assert_close_rate"] == 0.5


def test_ulps_are_counted_in_the_run_dtype():
    # An error of 2^-23 at ref 1 is one float32 ulp and 2^29 float64 ulps.
    ref, df = np.array([1.0]), np.array([1.0 + 2.0**-23])
    assert stats(df=df, ref=ref, dtype=torch.float32)["max_ulp"] == 1.0
    assert stats(df=df, ref=ref, dtype=torch.float64)["max_ulp"] == 2.0**29


# --- verdicts that read the magnitude ---------------------------------------------------------

def test_a_zero_or_wrong_signed_result_where_f_prime_is_tiny_is_wrong_though_assert_close_passes():
    # f' = 1e-18: returning 0 or -1e-18 is within torch.testing's atol (1e-7) but has no
    # correct digit; 1.5e-18 keeps the leading digit's magnitude (relative error 0.5).
    ref = np.full(4, 1e-18)
    df = np.array([0.0, -1e-18, 1.5e-18, 1e-18])
    s = stats(df=df, ref=ref)
    assert s["assert_close_rate"] == 1.0
    assert s["n_wrong"] == 2
    assert s["rel_pass_rate"] == 1 / 4                    # only the exact one is within rtol
    assert list(verdicts(df, ref, np.zeros(4), np.zeros(4, bool), torch.float64)) == \
        ["wrong", "wrong", "inaccurate", "accurate"]


def test_a_correctly_rounded_underflow_is_accurate_and_a_subnormal_missed_by_ulps_is_wrong():
    # float32's smallest subnormal is 2^-149 (1.4e-45). f' = 1e-50 rounds to 0: returning 0
    # is its correct rounding (err 1e-50, under half a ULP). f' = 0.7 * 2^-149 rounds to
    # 2^-149; 0 misses it by 0.7 ULP: inaccurate, not wrong. f' = 3 * 2^-149: 0 misses by
    # 3 ULP and has no correct digit: wrong.
    tiny = 2.0**-149
    ref = np.array([1e-50, 0.7 * tiny, 3 * tiny])
    assert list(verdicts(np.zeros(3), ref, np.zeros(3), np.zeros(3, bool), torch.float32)) == \
        ["accurate", "inaccurate", "wrong"]
    assert stats(df=np.zeros(3), ref=ref, dtype=torch.float32)["n_wrong"] == 1


def test_at_an_exact_zero_of_f_prime_only_an_exact_zero_is_accurate_and_nothing_is_wrong():
    df, ref = np.array([0.0, 1e-300]), np.zeros(2)
    assert list(verdicts(df, ref, np.zeros(2), np.zeros(2, bool), torch.float64)) == \
        ["accurate", "inaccurate"]
    assert stats(df=df, ref=ref)["n_wrong"] == 0


def test_errors_within_the_references_uncertainty_are_reference_limited_and_leave_ulp_stats():
    # Ridders-like uncertainty 1e-10 at ref 1: the errors 1e-12 and 2e-10 (within 4x) are
    # not resolved; 1e-6 is.
    ref = np.ones(3)
    df = 1 + np.array([1e-12, 2e-10, 1e-6])
    s = stats(df=df, ref=ref, uncertainty=np.full(3, 1e-10))
    assert s["n_reference_limited"] == 2
    assert s["median_ulp"] == s["max_ulp"] == pytest.approx(1e-6 / 2.0**-52, rel=1e-9)
    assert s["max_rel_err"] == pytest.approx(1e-6, rel=1e-9)
    assert s["max_abs_err"] == pytest.approx(1e-6, rel=1e-9)  # absolute stats keep them all
    assert s["rel_pass_rate"] == 0.0                      # the one resolved point misses 1e-7


def test_a_bound_finer_than_half_an_ulp_never_limits_even_an_exact_match():
    # An Arb bound (2^-106 relative) cannot hide anything a float64 result can show.
    ref = np.array([1.0, 3.0])
    s = stats(df=ref.copy(), ref=ref, uncertainty=ref * 2.0**-106)
    assert s["n_reference_limited"] == 0 and s["rel_pass_rate"] == 1.0
    assert s["median_ulp"] == 0.0


def test_a_reference_that_is_zero_within_a_large_uncertainty_limits_instead_of_exploding():
    # fn=py x**3 at x = -2.1e-13: Ridders says 0 +/- 5e-21; the method's 1.3e-25 is
    # 2.7e298 ULPs "of zero" but nothing the reference can resolve.
    s = stats(df=np.array([1.3e-25, 3.0]), ref=np.array([0.0, 3.0]),
              uncertainty=np.array([5e-21, 1e-17]))
    assert s["n_reference_limited"] == 1
    assert s["max_ulp"] == 0.0
