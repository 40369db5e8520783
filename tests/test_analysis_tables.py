"""harness.analysis.tables: the sweep's pivots and ratios, on hand-made records and on a
small real sweep (conftest.small_sweep, in this process: slow)."""
from __future__ import annotations

import pandas as pd
import pytest

from harness.analysis.tables import (accuracy_table, error_vs_best, missing_jobs,
                                     per_point_slowdown, throughput_table, variant_labels)
from harness.results import load_records


def record(method: str, dtype: str = "float64", fn: str = "sin", **values) -> dict:
    return {"fn": fn, "dtype": dtype, "method": method, "status": "ok", "max_abs_err": 1e-16,
            "median_ulp": 0.0, "n_nonfinite": 0, "n": 100, **values}


# --- on hand-made records -------------------------------------------------------------------

def test_error_vs_best_scores_non_finite_results_infinite():
    rows = pd.DataFrame([
        record("finite", "float32", max_abs_err=1e-30, n_nonfinite=7, method_params='{"h": 1e-12}'),
        record("finite", "float32", max_abs_err=1e-5, median_ulp=10.0,
               method_params='{"h": 0.01}'),
    ])
    ratios = error_vs_best(rows)
    assert ratios.loc[("sin", "float32"), "finite h=1e-12"] == float("inf")
    assert ratios.loc[("sin", "float32"), "finite h=0.01"] == 1.0


def test_error_vs_best_of_an_exact_row_is_one_for_exact_variants_and_inf_for_the_rest():
    rows = pd.DataFrame([record("autograd", max_abs_err=0.0), record("loop", max_abs_err=0.0),
                         record("finite", max_abs_err=1e-10)])
    assert error_vs_best(rows).loc[("sin", "float64")].to_dict() == {
        "autograd": 1.0, "loop": 1.0, "finite": float("inf")}


def test_a_cell_without_a_result_has_no_ratio_even_in_an_exact_row():
    # relu: autograd and finite are exact; complex_step is unsupported (no ok record), so
    # its cell is missing, not infinitely worse.
    rows = pd.DataFrame([record("autograd", fn="relu", max_abs_err=0.0),
                         record("finite", fn="relu", max_abs_err=0.0),
                         {**record("complex_step", fn="relu"), "status": "unsupported"},
                         record("complex_step", max_abs_err=2e-16),
                         record("autograd", max_abs_err=1e-16)])
    ratios = error_vs_best(rows)
    assert ratios.loc[("relu", "float64"), "autograd"] == 1.0
    assert pd.isna(ratios.loc[("relu", "float64"), "complex_step"])
    assert ratios.loc[("sin", "float64"), "complex_step"] == 2.0


def test_accuracy_pivot_has_a_row_per_configuration_that_ran_not_per_combination():
    # A tail grid's size depends on the op's domain and the dtype: (fn, dtype, n) varies
    # together, and only the 3 combinations that ran are rows (not 2 x 2 x 3 = 12).
    rows = pd.DataFrame([record("autograd", "float64", "sin", n=4094),
                         record("autograd", "float32", "sin", n=510),
                         record("autograd", "float64", "log", n=2047)])
    assert list(accuracy_table(rows).index) == [("sin", "float64", 4094), ("sin", "float32", 510),
                                                ("log", "float64", 2047)]


def test_accuracy_pivot_carries_the_count_of_points_with_no_correct_digit():
    rows = pd.DataFrame([record("autograd", n_wrong=0), record("finite", n_wrong=37)])
    table = accuracy_table(rows)
    assert table.loc[("sin", "float64"), ("finite", "n_wrong")] == 37
    # Records written before n_wrong existed still pivot.
    assert "n_wrong" not in accuracy_table(pd.DataFrame([record("autograd")])).columns \
        .get_level_values("metric")


def test_variant_labels_name_only_the_parameters_that_vary_within_a_method():
    rows = pd.DataFrame([
        record("finite", method_params='{"scheme": "central", "h": 1e-05}'),
        record("finite", method_params='{"scheme": "central", "h": 1e-06}'),
        record("stencil", method_params='{"accuracy": 4, "h": null}'),
        record("autograd", method_params="{}")])
    assert variant_labels(rows).tolist() == ["finite h=1e-05", "finite h=1e-06", "stencil",
                                             "autograd"]


def test_accuracy_pivot_has_a_row_per_function_and_dtype_and_a_column_per_variant():
    rows = pd.DataFrame([record("autograd", max_abs_err=1e-16, median_ulp=0.5),
                         record("finite", max_abs_err=1e-10, median_ulp=3e5),
                         record("autograd", "float32", max_abs_err=6e-8, median_ulp=0.5)])
    table = accuracy_table(rows)
    assert list(table.index) == [("sin", "float64"), ("sin", "float32")]
    assert table.loc[("sin", "float64"), ("finite", "max_abs_err")] == 1e-10
    assert table.loc[("sin", "float64"), ("finite", "median_ulp")] == 3e5
    assert pd.isna(table.loc[("sin", "float32"), ("finite", "max_abs_err")])


def test_per_point_slowdown_divides_autograds_throughput_by_the_loops():
    rows = pd.DataFrame([
        record("autograd", points_per_s=2e7, cost_vs_forward=2.0, time_median_s=5e-6),
        record("loop", points_per_s=1e4, cost_vs_forward=4000.0, time_median_s=1e-2),
        record("finite", points_per_s=1e7, cost_vs_forward=3.0, time_median_s=1e-5)])
    (row,) = per_point_slowdown(rows).to_dict("records")
    assert (row["per_point_method"], row["slowdown"], row["trusted"]) == ("loop", 2000.0, True)
    assert throughput_table(rows).loc[("sin", "float64"), ("finite", "points_per_s")] == 1e7


def test_a_slowdown_is_untrusted_when_either_sides_timing_is_flagged():
    rows = pd.DataFrame([
        record("autograd", points_per_s=2e7, cost_vs_forward=2.0, time_median_s=5e-6,
               time_noisy=False),
        record("loop", points_per_s=1e4, cost_vs_forward=4000.0, time_median_s=1e-2,
               time_noisy=True),
        record("autograd", "float32", points_per_s=4e7, cost_vs_forward=2.0,
               time_median_s=5e-6, time_noisy=True),
        record("loop", "float32", points_per_s=1e4, cost_vs_forward=4000.0,
               time_median_s=1e-2, time_noisy=False),
        record("autograd", fn="tanh", points_per_s=3e7, cost_vs_forward=2.0,
               time_median_s=5e-6, time_noisy=False),
        record("loop", fn="tanh", points_per_s=1e4, cost_vs_forward=4000.0,
               time_median_s=1e-2, time_noisy=False)])
    slow = per_point_slowdown(rows).set_index(["fn", "dtype"])
    assert slow["trusted"].to_dict() == {("sin", "float64"): False, ("sin", "float32"): False,
                                         ("tanh", "float64"): True}
    assert slow.loc[("sin", "float32"), "slowdown"] == 4000.0


def test_missing_jobs_are_those_without_a_record_in_any_override_order():
    rows = pd.DataFrame([record("autograd", overrides="method=autograd fn=sin")])
    assert missing_jobs(rows, [["fn=sin", "method=autograd"], ["fn=sin", "method=loop"]]) == \
        [["fn=sin", "method=loop"]]


# --- on a small real sweep ------------------------------------------------------------------

@pytest.mark.slow
def test_accuracy_pivot_cells_are_the_records_values(small_sweep):
    records = load_records(small_sweep[0])
    table = accuracy_table(records)
    assert list(table.index.names) == ["fn", "dtype"]
    assert list(dict.fromkeys(table.columns.get_level_values("variant"))) == \
        ["autograd", "loop", "finite"]
    for _, row in records.iterrows():
        key = (row["fn"], row["dtype"])
        assert table.loc[key, (row["method"], "max_abs_err")] == row["max_abs_err"]
        assert table.loc[key, (row["method"], "median_ulp")] == row["median_ulp"]
    speed = throughput_table(records)
    row = records[(records["fn"] == "tanh") & (records["method"] == "loop")
                  & (records["dtype"] == "float64")].iloc[0]
    assert speed.loc[("tanh", "float64"), ("loop", "points_per_s")] == row["points_per_s"]
    assert speed.loc[("tanh", "float64"), ("loop", "cost_vs_forward")] == row["cost_vs_forward"]


@pytest.mark.slow
def test_error_vs_best_divides_by_the_row_minimum(small_sweep):
    records = load_records(small_sweep[0])
    ratios = error_vs_best(records)
    errors = accuracy_table(records).xs("max_abs_err", axis=1, level="metric")
    row = ("sin", "float64")
    assert ratios.loc[row].min() == 1.0
    assert ratios.loc[row, "finite"] == errors.loc[row, "finite"] / errors.loc[row].min()


@pytest.mark.slow
def test_per_point_slowdown_is_autograd_over_loop_throughput(small_sweep):
    records = load_records(small_sweep[0])
    slow = per_point_slowdown(records).set_index(["fn", "dtype"])
    assert list(slow["per_point_method"].unique()) == ["loop"]
    assert len(slow) == 4
    for (fn, dtype), row in slow.iterrows():
        pick = records[(records["fn"] == fn) & (records["dtype"] == dtype)].set_index("method")
        assert row["slowdown"] == pick.loc["autograd", "points_per_s"] / \
            pick.loc["loop", "points_per_s"]
        assert row["trusted"] == (not pick.loc["autograd", "time_noisy"]
                                  and not pick.loc["loop", "time_noisy"])
