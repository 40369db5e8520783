"""harness.report.format: numbers and one-line summaries for people."""
from __future__ import annotations

import math

import numpy as np

from harness.report.format import fmt, fmt_ratio, headline, summary_line


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
          "pass_rate": 0.8125, "n_nonfinite": 0, "n_checked": 2000, "time_median_s": 1e-3,
          "points_per_s": 2e6, "cost_vs_forward": 21.6}


def test_a_runs_summary_line_names_it_and_gives_its_numbers():
    assert summary_line(RECORD) == (
        "sin | finite | float32 | cpu | n=2000: max |err| 0.000366, median 1.2e+03 ULP, "
        "max 6.1e+03 ULP, pass 81.25%; 2e+06 points/s, 21.6x the forward pass")


def test_a_headline_says_how_many_points_were_non_finite_and_why_a_run_failed():
    assert headline({**RECORD, "n_nonfinite": 3, "time_median_s": math.nan}) == (
        "max |err| 0.000366, median 1.2e+03 ULP, max 6.1e+03 ULP, pass 81.25%, "
        "3 of 2000 points non-finite")
    assert headline({"status": "unsupported", "status_reason": "complex_step: relu is not "
                                                               "analytic"}) == \
        "status unsupported: complex_step: relu is not analytic"
