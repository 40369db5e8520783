"""The sweep report's tables on hand-made records with exact numbers: throughput cells with
their spread, and wide tables folded per function or dtype."""
from __future__ import annotations

import json

import pandas as pd

from harness.analysis.tables import accuracy_table, throughput_table, timed, untrusted
from harness.report.blocks import Fold, Table, Text, render_markdown
from harness.report.sweep_page import _flag_pivot, accuracy_blocks, throughput_blocks


def record(fn: str, dtype: str, method: str = "autograd", **columns) -> dict:
    return {"fn": fn, "dtype": dtype, "method": method, "method_params": "{}", "status": "ok",
            "n": 2000, "order": 1, "device": "cpu", "max_abs_err": 1e-7, "median_ulp": 0.25,
            "n_nonfinite": 0, "points_per_s": 2e6, "cost_vs_forward": 4.0,
            "time_median_s": 1e-3, "time_iqr_s": 3e-5, "time_noisy": False,
            "raw_times_s": [1e-3] * 8, **columns}


def test_a_throughput_cell_shows_half_the_iqr_or_why_it_cannot():
    records = pd.DataFrame([
        record("sin", "float32"),
        record("sin", "float64", time_iqr_s=2.4e-4, time_noisy=True),
        record("tanh", "float32", raw_times_s=[1e-3] * 3),
        record("tanh", "float64", time_iqr_s=0.0, raw_times_s=None),
    ])
    rows = timed(records)
    (table,) = throughput_blocks(throughput_table(records), pd.DataFrame(),
                                 _flag_pivot(rows, untrusted(rows)))
    assert [row[2] for row in table.rows] == [
        "2e+06 pt/s ±1.5% · 4×",   # 3% IQR of the median: ± half of it
        "2e+06 pt/s ±12% · 4× ‡",  # not trustworthy (the record's flag): marked
        "2e+06 pt/s ±? · 4×",      # 3 timed blocks: no quartiles to speak of
        "2e+06 pt/s ±? · 4×",      # no block count stored and an IQR of 0: one block
    ]
    assert "± half the interquartile range of the timed blocks" in table.note


def test_a_table_that_fits_is_one_table():
    records = pd.DataFrame([record(fn, d, m) for fn in ("sin", "tanh") for d in ("float32",)
                            for m in ("autograd", "finite")])
    blocks = accuracy_blocks(accuracy_table(records))
    assert len(blocks) == 1 and blocks[0].header == ("fn", "dtype", "autograd", "finite")


def test_a_wide_table_folds_on_the_key_that_gives_fewest_folds_one_row_per_variant():
    steps = [10.0 ** -k for k in range(1, 11)]  # ten variants: wider than eight columns
    records = pd.DataFrame([
        record(fn, dtype, "finite", method_params=json.dumps({"h": h}), max_abs_err=h)
        for fn in ("sin", "tanh", "exp") for dtype in ("float32", "float64") for h in steps])
    blocks = accuracy_blocks(accuracy_table(records))
    folds = [b for b in blocks if isinstance(b, Fold)]
    # By dtype: 2 folds of 3 functions each (by function it would be 3 folds of 2 dtypes).
    assert [f.title for f in folds] == ["dtype = float32", "dtype = float64"]
    table = folds[0].blocks[0]
    assert isinstance(table, Table) and table.header == ("method", "sin", "tanh", "exp")
    assert [row[0] for row in table.rows] == [f"finite h={h:g}" for h in steps]
    assert table.rows[2][1] == "0.001 · 0.25 ULP"
    assert isinstance(blocks[-1], Text) and blocks[-1].text.startswith("Cells: max |error|")
    assert "#### dtype = float32\n\n| method | sin | tanh | exp |" in render_markdown(blocks)
