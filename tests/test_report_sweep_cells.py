"""The sweep report's accuracy and ratio cells on hand-made pivots: failures are marked as
failures, a missing result is a dash (harness.report.sweep_page)."""
from __future__ import annotations

import pandas as pd

from harness.analysis.tables import accuracy_table, error_vs_best
from harness.report.sweep_page import accuracy_cell, ratio_blocks


def record(method: str, fn: str = "sin", **values) -> dict:
    return {"fn": fn, "dtype": "float32", "method": method, "status": "ok", "n": 100,
            "max_abs_err": 1e-7, "median_ulp": 0.5, "n_nonfinite": 0, "n_wrong": 0, **values}


ROWS = pd.DataFrame([
    record("autograd"),
    record("finite", max_abs_err=3e-9, median_ulp=0.1, n_nonfinite=1999),
    record("stencil", max_abs_err=2e-4, median_ulp=900.0, n_wrong=12),
    record("autograd", fn="relu", max_abs_err=0.0, median_ulp=0.0),
    record("finite", fn="relu", max_abs_err=0.0, median_ulp=0.0),
    {**record("stencil", fn="relu"), "status": "unsupported"},
])


def cells(fn: str) -> dict:
    row = accuracy_table(ROWS).loc[(fn, "float32")]
    return {v: accuracy_cell(row, v) for v in ("autograd", "finite", "stencil")}


def test_accuracy_cells_lead_with_failures_and_show_a_dash_without_a_result():
    assert cells("sin") == {
        "autograd": "1e-07 · 0.5 ULP",
        # 1999 nan/inf points: the tiny error of the one survivor is not a headline.
        "finite": "✗ 1999 nan/inf · 3e-09 · 0.1 ULP",
        "stencil": "✗ 12 wrong · 0.0002 · 900 ULP"}
    assert cells("relu")["stencil"] == "—"


def test_ratio_cells_mark_non_finite_variants_and_leave_missing_ones_blank():
    accuracy = accuracy_table(ROWS)
    (block,) = ratio_blocks(error_vs_best(ROWS),
                            accuracy.xs("n_nonfinite", axis=1, level="metric"))
    rows = {row[0]: row[2:] for row in block.rows}
    assert block.header == ("fn", "dtype", "autograd", "finite", "stencil")
    assert rows["sin"] == ("1×", "✗ 1999 nan/inf", "2,000×")
    assert rows["relu"] == ("1×", "1×", "—")


def test_a_step_with_nan_results_is_marked_at_the_top_of_the_v_never_at_its_small_error():
    from harness.report.plots import stepsize_figure

    rows = pd.DataFrame({"dtype": "float32", "scheme": "forward", "order": 2,
                         "h": [1e-7, 1e-4, 1e-1], "max_abs_err": [3e-9, 1e-3, 5e-2],
                         "n_nonfinite": [1999, 0, 0]})
    best = pd.DataFrame({"dtype": ["float32"], "scheme": ["forward"], "h_best": [1e-4],
                         "err_best": [1e-3]})
    ax = stepsize_figure(rows, {}, best, {}, "sin").axes[0]
    at_top = [line for line in ax.get_lines() if line.get_transform() != ax.transData]
    (marked,) = at_top
    assert list(marked.get_xdata()) == [1e-7] and list(marked.get_ydata()) == [0.97]
    assert not any(3e-9 in line.get_ydata() for line in ax.get_lines())
    assert ax.get_ylim()[0] > 3e-9  # the survivor's error does not set the axis either
    assert ax.get_ylabel() == "max |f''(x) - reference| over the grid"
