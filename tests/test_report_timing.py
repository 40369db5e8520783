"""How timing reaches people: the run page's timing table, the sweep's throughput marks,
and the findings, which quote ratios only from timings that can be trusted."""
from __future__ import annotations

import math

import pandas as pd

from harness.analysis.tables import per_point_slowdown, throughput_table, timed
from harness.report.run_page import _timing_table
from harness.report.sweep_page import _flag_pivot, throughput_blocks
from harness.report.words import noisy_words, slowdown_words
from harness.analysis import tables as t

TIMED = {"n_timed": 2000, "time_median_s": 1e-4, "time_iqr_s": 2e-6, "time_min_s": 9.5e-5,
         "time_ci_rel": 0.0125, "time_first_call_s": 0.08, "n_repeats": 640,
         "points_per_s": 2e7, "ns_per_point": 50.0, "forward_median_s": 2e-5,
         "cost_vs_forward": 5.0, "num_threads": 1, "num_threads_rule": "auto: 1 below 32768 points",
         "n_blocks": 32, "n_blocks_stalled": 3, "time_warmup_s": 0.12, "time_warmup_blocks": 6,
         "time_settled": True, "time_cpu_per_wall": 0.99, "time_faults_per_call": 0.0,
         "forward_faults_per_call": 0.5, "time_early_s": 2e-4, "time_early_faults_per_call": 12.0,
         "load_avg_1m": 1.25, "runnable_others": 1, "cpus": 2,
         "time_processes": 1, "time_noisy": False, "time_noisy_reason": ""}


def test_the_run_pages_timing_table_says_how_well_and_under_what_load_it_was_timed():
    table = _timing_table(TIMED)
    for row in ("| median known to ± (95 % confidence) | 1.2 % |",
                "| cost vs forward (median of interleaved pairs) | 5 |",
                "| threads | 1 (auto: 1 below 32768 points) |",
                "| blocks measured / waited for a CPU (left out) | 32 / 3 |",
                "| warm-up until times stopped drifting (s, blocks) | 0.12, 6 |",
                "| page faults per call: method / forward | 0 / 0.5 |",
                "| before settling: time per call (s), page faults per call | 0.0002, 12 |",
                "| load average, other runnable tasks, CPUs when timing began | 1.25, 1, 2 |"):
        assert row in table
    assert "not trustworthy" not in table and "fresh processes" not in table


def test_an_untrustworthy_timing_is_called_so_on_the_run_page_with_its_reason():
    table = _timing_table({**TIMED, "time_noisy": True, "time_settled": False,
                           "time_noisy_reason": "times still drifting after 2 s of warm-up"})
    assert "| warm-up until times stopped drifting (s, blocks) | 0.12, 6 (still drifting) |" \
        in table
    assert table.endswith("**Timing not trustworthy:** times still drifting after 2 s of "
                          "warm-up. Rerun on a quieter machine (or with a larger "
                          "timing.max_run_time) before relying on these numbers.")


def test_fresh_processes_are_listed_with_their_spread():
    table = _timing_table({**TIMED, "time_processes": 3, "time_ci_rel": math.inf,
                           "time_process_medians_s": [1e-4, 1.1e-4, 1.05e-4],
                           "time_process_spread": 0.0952})
    assert "| medians of 3 fresh processes (s) | 0.0001, 0.00011, 0.000105 (spread 9.5 %) |" \
        in table
    assert "| median known to ± (95 % confidence) | unknown |" in table


def record(method: str, dtype: str = "float64", fn: str = "sin", **values) -> dict:
    return {"fn": fn, "dtype": dtype, "method": method, "status": "ok", "n": 100,
            "time_median_s": 1e-3, **values}


ROWS = pd.DataFrame([
    record("autograd", points_per_s=2e7, cost_vs_forward=2.0, time_noisy=False),
    record("loop", points_per_s=1e4, cost_vs_forward=4000.0, time_noisy=False),
    record("autograd", "float32", points_per_s=3e7, cost_vs_forward=2.0, time_noisy=False),
    record("loop", "float32", points_per_s=1e3, cost_vs_forward=9000.0, time_noisy=True,
           time_noisy_reason="contended: 30 of 40 method blocks waited for a CPU; when "
                             "timing began: load average 3.1, 4 other runnable tasks, 2 CPUs"),
])


def test_throughput_cells_of_untrustworthy_timings_are_marked():
    rows = timed(ROWS)
    (block,) = throughput_blocks(throughput_table(ROWS), pd.DataFrame(),
                                 _flag_pivot(rows, t.untrusted(rows)))
    cells = {row[1]: row[2:] for row in block.rows}
    assert cells == {"float64": ("2e+07 pt/s · 2×", "1e+04 pt/s · 4e+03×"),
                     "float32": ("3e+07 pt/s · 2×", "1e+03 pt/s · 9e+03× ‡")}
    assert block.note.endswith("‡ timing not trustworthy (the reason is in summary.csv, "
                               "time_noisy_reason); left out of the findings.")


def test_the_slowdown_finding_uses_only_trustworthy_pairs_and_says_what_it_left_out():
    (line,) = slowdown_words(per_point_slowdown(ROWS))
    assert line == ("the per-point **loop** is 2,000× slower per point than vectorized "
                    "autograd; it costs 4,000× the forward pass against 2× for autograd "
                    "(1 configuration with untrustworthy timing left out)")


def test_no_trustworthy_pair_means_no_slowdown_number():
    rows = ROWS.assign(time_noisy=True)
    (line,) = slowdown_words(per_point_slowdown(rows))
    assert line == ("the per-point **loop**: no trustworthy timing to compare with autograd "
                    "(2 configurations with untrustworthy timing left out)")


def test_findings_count_untrustworthy_timings_by_cause():
    rows = pd.concat([ROWS, pd.DataFrame([record(
        "finite", points_per_s=1e7, cost_vs_forward=3.0, time_noisy=True,
        time_noisy_reason="times still drifting after 2 s of warm-up; median known only "
                          "to ±4.0% after 2 s (target ±2.0%: raise timing.max_run_time)")])])
    assert noisy_words(rows) == [
        "2 of 5 timings cannot be trusted (1 contended, 1 imprecise, still drifting); they "
        "are marked ‡ and left out of the ratios above"]
    assert noisy_words(ROWS.assign(time_noisy=False)) == []
