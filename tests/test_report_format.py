"""harness.report.format: numbers and one-line summaries for people."""
from __future__ import annotations

import math

import numpy as np

from harness.report.format import fmt, fmt_ratio, fmt_spread, headline, summary_line


def test_numbers_have_three_significant_digits_and_missing_is_a_dash():
    assert [fmt(v) for v in (1.1234e-11, 2e7, 0.000366, 58.0, np.float32(0.5), 7, None,
                             math.nan)] == \
        ["1.12e-11", "2e+07", "0.000366", "58", "0.5", "7", "—", "—"]
    assert fmt(99.996, 4) == "100"


def test_ratios_read_as_plain_numbers_up_to_a_million():
    assert [fmt_ratio(v) for v in (1.0, 2.345, 99.5, 1580.4, 107000.0, 2.3e7, math.inf,
                                   math.nan)] == \
        ["1×", "2.35×", "99.5×", "1,580×", "107,000×", "2.3e+07×", "∞", "—"]


RECORD = {"fn": "sin", "method": "finite", "dtype": "float32", "device": "cpu", "n": 2000,
          "status": "ok", "max_abs_err": 3.66e-4, "median_ulp": 1204.5, "max_ulp": 6.1e3,
          "rel_pass_rate": 0.8125, "rtol": 1.3e-6, "n_nonfinite": 0, "n_wrong": 0,
          "n_reference_limited": 0, "n_uncertified": 0, "n_checked": 2000,
          "time_median_s": 1e-3, "points_per_s": 2e6, "cost_vs_forward": 21.6}


def test_a_runs_summary_line_names_it_and_gives_its_numbers():
    assert summary_line(RECORD) == (
        "sin | finite | float32 | cpu | n=2000: max |err| 0.000366, median 1.2e+03 ULP, "
        "max 6.1e+03 ULP, pass 81.25% (rel ≤ 1.3e-06); 2e+06 points/s, 21.6x the forward pass")


def test_a_second_derivative_says_so_in_the_summary_line():
    assert summary_line({**RECORD, "order": 2}).startswith("sin f'' | finite | float32 |")
    assert summary_line({**RECORD, "order": 1}).startswith("sin | finite | float32 |")


def test_a_headline_says_how_many_points_were_non_finite_and_why_a_run_failed():
    assert headline({**RECORD, "n_nonfinite": 3, "time_median_s": math.nan}) == (
        "max |err| 0.000366, median 1.2e+03 ULP, max 6.1e+03 ULP, pass 81.25% (rel ≤ 1.3e-06), "
        "3 of 2000 points non-finite")
    assert headline({"status": "unsupported", "status_reason": "complex_step: relu is not "
                                                               "analytic"}) == \
        "status unsupported: complex_step: relu is not analytic"


def test_a_headline_names_wrong_reference_limited_and_uncertified_points_when_there_are_any():
    record = {**RECORD, "n_wrong": 7, "n_reference_limited": 12, "n_uncertified": 2,
              "time_median_s": math.nan}
    assert headline(record) == (
        "max |err| 0.000366, median 1.2e+03 ULP, max 6.1e+03 ULP, pass 81.25% (rel ≤ 1.3e-06), "
        "7 wrong (no correct digit), 12 reference-limited, 2 uncertified (excluded)")


def test_a_run_whose_every_point_is_reference_limited_shows_dashes_not_numbers():
    record = {**RECORD, "median_ulp": math.nan, "max_ulp": math.nan, "rel_pass_rate": math.nan,
              "n_reference_limited": 2000, "time_median_s": math.nan}
    assert headline(record) == ("max |err| 0.000366, median — ULP, max — ULP, pass — "
                                "(rel ≤ 1.3e-06), 2000 reference-limited")


def test_the_speed_part_states_the_threads():
    assert headline({**RECORD, "num_threads": 1}).endswith(
        "; 2e+06 points/s, 21.6x the forward pass (1 thread)")
    assert headline({**RECORD, "num_threads": 2}).endswith("forward pass (2 threads)")


def test_untrustworthy_timing_says_so_next_to_its_numbers():
    record = {**RECORD, "num_threads": 1, "time_noisy": True,
              "time_noisy_reason": "contended: 12 of 20 method blocks waited for a CPU"}
    assert headline(record).endswith(
        "; 2e+06 points/s, 21.6x the forward pass (1 thread) [timing not trustworthy: "
        "contended: 12 of 20 method blocks waited for a CPU]")
    assert "not trustworthy" not in headline({**record, "time_noisy": False})


def test_a_timings_spread_is_half_its_iqr_relative_to_the_median_and_says_when_unknown():
    assert fmt_spread(1e-3, 3e-5) == "±1.5%"  # half of 3% of the median
    assert fmt_spread(1e-3, 2.4e-4) == "±12% ‡"  # IQR/median 0.24 > 0.1: noisy
    assert fmt_spread(1e-3, 2.4e-4, noisy=False) == "±12%"  # the record's own flag wins
    assert fmt_spread(1e-3, 2e-5, noisy=False, blocks=3) == "±?"  # too few blocks
    assert fmt_spread(1e-3, 2e-5, noisy=False, blocks=4) == "±1%"
    assert fmt_spread(1e-3, 0.0) == "±?"  # no block count stored: IQR 0 is one block
    assert fmt_spread(1e-3, 1.2134e-2) == "±607% ‡"  # whole percents from 10% up
    assert fmt_spread(math.nan, 1e-5) == "" == fmt_spread(None, None)  # not timed
