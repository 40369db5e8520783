"""The atlas: rows, grades, ranking, repro lines and workarounds (harness.analysis.atlas);
its page (harness.report.atlas_page); planted ops ranked; real repro lines run as printed."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from harness.analysis import atlas as a
from harness.report import __main__ as report_main
from harness.report.atlas_page import write_atlas
from harness.report.blocks import Code, Table, render_html, render_markdown, render_text
from harness.report.format import fmt
from harness.report.run_page import write_run
from harness.report.sweep_page import headline_table, sweep_kind
from harness.study.flow import run_study
from harness.study.metrics import ulp
from planted import planted_study
from support import run_as_printed, run_sweep


def record(**fields) -> dict:
    base = {"fn": "torch.expm1", "fn_source": "torch", "dtype": "float32", "order": 1,
            "method": "autograd", "status": "ok", "status_reason": "", "worst_ulp": 2.0,
            "median_ulp": 0.25, "n_wrong_found": 0, "worst_x": -20.5, "value_at_worst": 0.0,
            "reference_at_worst": 1.25e-9, "worst_triage": "", "n_checked": 510, "n_hunt": 90,
            "device": "cpu", "ulp_at_worst_autograd": 2.0, "ulp_at_worst_forward_ad": 2.0,
            "ulp_at_worst_complex_step": 0.5}
    return {**base, **fields}


# --- rows, grades, findings -------------------------------------------------------------

def test_rows_have_the_atlas_columns_in_order_then_the_extras():
    rows = a.atlas_rows(pd.DataFrame([record(), record(fn="sin", fn_source="builtin")]))
    assert list(rows.columns) == a.COLUMNS + a.EXTRA
    assert list(rows["op"]) == ["expm1"]  # only torch ops make the atlas


def test_rows_are_ordered_by_op_then_dtype_table_order_then_order_and_method():
    recs = [record(fn="torch.sin", dtype="float32", order=2), record(fn="torch.sin", dtype="float64"),
            record(fn="torch.cos", method="forward_ad"), record(fn="torch.cos")]
    rows = a.atlas_rows(pd.DataFrame(recs))
    assert list(zip(rows["op"], rows["dtype"], rows["order"], rows["method"])) == [
        ("cos", "float32", 1, "autograd"), ("cos", "float32", 1, "forward_ad"),
        ("sin", "float64", 1, "autograd"), ("sin", "float32", 2, "autograd")]


@pytest.mark.parametrize("max_ulp, n_wrong, dtype, expected", [
    (0.5, 0, "float32", "≤ 1 ULP"), (1.0, 0, "float32", "≤ 1 ULP"), (4.0, 0, "float32", "≤ 4 ULP"),
    (2.0**11.5, 0, "float32", "lost < half the digits"),
    (2.0**11.5 + 1, 0, "float32", "lost most digits"), (2.0**23, 0, "float32", "no correct digit"),
    (10.0, 1, "float64", "no correct digit"), (math.inf, 0, "float64", "non-finite"),
    (math.nan, math.nan, "float64", "not run"), (100.0, 0, "bfloat16", "lost most digits")])
def test_grade_reads_the_ulps_against_the_dtypes_precision(max_ulp, n_wrong, dtype, expected):
    assert a.grade(max_ulp, n_wrong, dtype) == expected


def test_workaround_names_the_cross_check_methods_right_at_the_worst_point():
    rows = a.atlas_rows(pd.DataFrame([record(worst_ulp=1.7e7, ulp_at_worst_autograd=1.7e7,
                                             ulp_at_worst_forward_ad=1.7e7,
                                             ulp_at_worst_complex_step=0.094)]))
    assert rows["workaround"].iloc[0] == "complex_step (0.094 ULP)"


def test_no_workaround_for_a_row_that_is_no_finding():
    assert a.atlas_rows(pd.DataFrame([record()]))["workaround"].iloc[0] == ""


def test_findings_are_rows_above_four_ulp_worst_grade_first():
    recs = [record(fn="torch.a", worst_ulp=5.0), record(fn="torch.b", worst_ulp=3.0),
            record(fn="torch.c", worst_ulp=1e9, n_wrong_found=2),
            record(fn="torch.d", worst_ulp=math.inf), record(fn="torch.e", worst_ulp=1e6)]
    found = a.findings(a.atlas_rows(pd.DataFrame(recs)))
    assert list(found["op"]) == ["d", "c", "e", "a"]
    assert list(found["grade"]) == ["non-finite", "no correct digit", "lost most digits",
                                    "lost < half the digits"]


def test_table_is_ops_by_dtype_and_order_worst_op_first():
    recs = [record(fn="torch.good", worst_ulp=0.5), record(fn="torch.bad", worst_ulp=1e9),
            record(fn="torch.good", order=2, worst_ulp=0.7), record(fn="torch.bad", dtype="float64")]
    table = a.atlas_table(a.atlas_rows(pd.DataFrame(recs)))
    assert list(table.index) == ["bad", "good"]
    assert list(table.columns) == [("float64", 1), ("float32", 1), ("float32", 2)]
    assert table.loc["good", ("float32", 2)] == 0.7 and math.isnan(table.loc["good", ("float64", 1)])


def test_table_has_only_what_the_method_ran_and_lists_the_ops_it_never_ran():
    recs = [record(fn="torch.exp", method="complex_step"),
            record(fn="torch.exp", method="complex_step", order=2, status="unsupported"),
            record(fn="torch.erfinv", method="complex_step", status="unsupported")]
    rows = a.atlas_rows(pd.DataFrame(recs))
    table = a.atlas_table(rows, "complex_step")
    assert list(table.index) == ["exp"] and list(table.columns) == [("float32", 1)]
    assert a.not_run(rows, "complex_step") == ["erfinv"]


def test_op_findings_keep_each_ops_worst_dtype_per_order():
    recs = [record(fn="torch.tanh", dtype="float64", worst_ulp=9e15, n_wrong_found=3),
            record(fn="torch.tanh", worst_ulp=1.6e7, n_wrong_found=3),
            record(fn="torch.tanh", order=2, worst_ulp=50.0),
            record(fn="torch.erf", worst_ulp=44.7)]
    found = a.op_findings(a.atlas_rows(pd.DataFrame(recs)), "autograd")
    assert list(zip(found["op"], found["dtype"], found["order"])) == [
        ("tanh", "float64", 1), ("tanh", "float32", 2), ("erf", "float32", 1)]


def test_another_methods_finding_is_shown_only_where_it_fails_differently_from_autograd():
    recs = [record(fn="torch.tanh", worst_ulp=1.6e7, n_wrong_found=3),
            record(fn="torch.tanh", method="forward_ad", worst_ulp=1.6e7, n_wrong_found=3),
            record(fn="torch.rsqrt", worst_ulp=5.0),
            record(fn="torch.rsqrt", method="forward_ad", worst_ulp=math.inf,
                   value_at_worst=math.inf, worst_x=1e-30)]
    rows = a.atlas_rows(pd.DataFrame(recs))
    own = a.differs_from(a.op_findings(rows, "forward_ad"), rows)
    assert list(own["op"]) == ["rsqrt"]


def test_a_sweep_of_torch_ops_leads_its_report_and_console_with_the_autograd_table():
    recs = pd.DataFrame([record(), record(fn="torch.tanh", worst_ulp=1.6e7, n_wrong_found=3),
                         record(method="forward_ad")])
    assert sweep_kind(recs, {}) == "atlas"
    assert render_text(headline_table("atlas", recs, {})).splitlines()[:4] == [
        "op     float32 f'", "-----  ----------", "tanh   🟥 1.6e+07", "expm1  🟩 2"]
    mixed = pd.concat([recs, pd.DataFrame([record(fn="sin", fn_source="builtin")])])
    assert sweep_kind(mixed, {}) == "methods"


# --- repro lines -------------------------------------------------------------------------

@pytest.mark.parametrize("method, order, lines", [
    ("autograd", 1, ["x = torch.tensor(-20.5, dtype=torch.float32, requires_grad=True)",
                     "print(torch.autograd.grad(torch.expm1(x), x)[0].item(), 'true:', 1.25e-09)"]),
    ("autograd", 2, ["x = torch.tensor(-20.5, dtype=torch.float32, requires_grad=True); "
                     "g, = torch.autograd.grad(torch.expm1(x), x, create_graph=True)",
                     "print(torch.autograd.grad(g, x)[0].item(), 'true:', 1.25e-09)"]),
    ("forward_ad", 1, ["x = torch.tensor(-20.5, dtype=torch.float32)",
                       "print(torch.func.jvp(torch.expm1, (x,), (torch.ones_like(x),))[1].item(), "
                       "'true:', 1.25e-09)"]),
    ("forward_ad", 2, ["x = torch.tensor(-20.5, dtype=torch.float32); d = lambda z: "
                       "torch.func.jvp(torch.expm1, (z,), (torch.ones_like(z),))[1]",
                       "print(torch.func.jvp(d, (x,), (torch.ones_like(x),))[1].item(), "
                       "'true:', 1.25e-09)"]),
    ("complex_step", 1, ["x = torch.tensor(-20.5, dtype=torch.float32); "
                         "s = 1e-20 * x.abs().clamp(min=1)",
                         "print((torch.expm1(torch.complex(x, s)).imag / s).item(), 'true:', 1.25e-09)"]),
])
def test_repro_is_three_lines_import_x_and_print(method, order, lines):
    row = a.atlas_rows(pd.DataFrame([record(method=method, order=order)])).iloc[0]
    assert row["repro"] == "\n".join(["import torch", *lines])


def test_repro_names_a_device_other_than_the_cpu_and_is_empty_without_a_worst_point():
    rows = a.atlas_rows(pd.DataFrame([record(device="cuda"), record(fn="torch.sin", worst_x=math.nan),
                                      record(fn="torch.cos", status="unsupported")]))
    assert "dtype=torch.float32, device='cuda', requires_grad=True)" in rows["repro"].iloc[1]
    assert rows["repro"].iloc[0] == "" and rows["repro"].iloc[2] == ""  # cos, sin sort first


def test_elapsed_is_from_the_sweeps_start_to_the_last_run_finished():
    finished = pd.Series(pd.to_datetime(["2026-11-27T10:00:30Z", "2026-11-27T10:05:00Z"]))
    assert a.elapsed_seconds("2026-11-27T11:00:00+0100", finished) == 300.0
    assert math.isnan(a.elapsed_seconds(None, finished))


# --- blocks the page uses -------------------------------------------------------------

def test_code_block_is_fenced_in_markdown_and_pre_in_html():
    block = Code("print(1 < 2)")
    assert render_markdown([block]) == "```python\nprint(1 < 2)\n```\n"
    assert "<pre><code>print(1 &lt; 2)</code></pre>" in render_html([block], "t")


def test_table_cell_colours_reach_the_html_only():
    block = Table(("op", "v"), (("sin", "0.5"),), colors=(("", "#c8e6c9"),))
    assert '<td>sin</td><td style="background:#c8e6c9">0.5</td>' in render_html([block], "t")
    assert render_markdown([block]) == "| op | v |\n|---|---|\n| sin | 0.5 |\n"


# --- planted ops ranked by the page ---------------------------------------------------

@pytest.fixture(scope="module")
def planted_folder(tmp_path_factory, reference_cache):
    """A folder with the four planted ops' runs (autograd, float64, binades), as a sweep
    would leave it, and its atlas written."""
    folder = tmp_path_factory.mktemp("planted-atlas")
    for name in ("right_sin", "spike_sin", "wrong_sinh_beyond", "unstable_expm1"):
        outcome = run_study(planted_study(name, reference_cache), folder / name, log=lambda _: None)
        write_run(folder / name, outcome.record, outcome.points)
    records = pd.concat([pd.read_parquet(p) for p in folder.rglob("records.parquet")])
    write_atlas(folder, records, {})
    return folder


def test_atlas_ranks_planted_ops_worst_first_and_the_correct_op_last(planted_folder):
    rows = pd.read_csv(planted_folder / "atlas.csv")
    table = a.atlas_table(rows)
    assert list(table.index)[-1] == "planted.right_sin"
    assert set(list(table.index)[:2]) == {"planted.unstable_expm1", "planted.wrong_sinh_beyond"}
    grades = rows.set_index("op").apply(a.row_grade, axis=1)
    assert grades["planted.right_sin"] == "≤ 1 ULP"
    assert grades["planted.unstable_expm1"] == grades["planted.wrong_sinh_beyond"] == "no correct digit"


def test_atlas_page_lists_each_finding_with_its_repro_and_workaround(planted_folder):
    md = (planted_folder / "atlas.md").read_text(encoding="utf-8")
    rows = pd.read_csv(planted_folder / "atlas.csv", keep_default_na=False)
    expm1 = rows[rows["op"] == "planted.unstable_expm1"].iloc[0]
    assert f"At x = {float(expm1['worst_x'])!r}: autograd gives 0.0" in md
    assert (f"Right there: complex_step ({float(expm1['ulp_at_worst_complex_step']):.2g} ULP) "
            f"(forward_ad not run, complex_step {fmt(float(expm1['ulp_at_worst_complex_step']))} "
            f"ULP).") in md  # forward_ad: the planted op's autograd.Function has no jvp
    assert f"```python\n{expm1['repro']}\n```" in md
    assert "`torch.planted.right_sin`" not in md  # no finding: not listed
    html = (planted_folder / "atlas.html").read_text(encoding="utf-8")
    assert 'style="background:#ef9a9a"' in html  # a red cell for "no correct digit"


# --- a real atlas sweep through run.py: repro lines run as printed ------------------------

@pytest.fixture(scope="module")
def small_atlas(tmp_path_factory, reference_cache):
    folder = tmp_path_factory.mktemp("sweeps") / "atlas"
    printed = run_sweep(folder, reference_cache, "+sweep=atlas", "fn.name=expm1,special.erfcx",
                        "dtype=float32", "order=1,2")
    return folder, printed


@pytest.mark.slow
def test_atlas_sweep_has_a_row_per_op_dtype_order_method(small_atlas):
    folder, printed = small_atlas
    rows = pd.read_csv(folder / "atlas.csv", keep_default_na=False)
    assert len(rows) == 2 * 1 * 2 * 3 and list(rows.columns[:11]) == a.COLUMNS
    complex2 = rows[(rows["method"] == "complex_step") & (rows["order"] == 2)]
    assert set(complex2["status"]) == {"unsupported"}
    assert "atlas.md: " in printed and (folder / "atlas.html").exists()


@pytest.mark.slow
def test_every_repro_line_run_as_printed_gives_the_tables_values(small_atlas):
    folder, _ = small_atlas
    rows = pd.read_csv(folder / "atlas.csv", keep_default_na=False)
    md = (folder / "atlas.md").read_text(encoding="utf-8")
    with_repro = rows[rows["repro"] != ""]
    assert len(with_repro) >= 6
    for (_, row), printed in zip(with_repro.iterrows(), run_as_printed(list(with_repro["repro"]))):
        assert printed[1] == "true:"
        value, true = float(printed[0]), float(printed[2])
        assert value == float(row["value_at_worst"]) or (np.isnan(value) and
                                                          np.isnan(float(row["value_at_worst"])))
        assert true == float(row["reference_at_worst"])
        # The table's ULP error, from the two printed numbers alone (the reference's low
        # part, dropped in print, is far below a float32 ULP).
        printed_ulp = abs(value - true) / float(ulp(np.array([true]), getattr(torch, row["dtype"]))[0])
        if np.isfinite(value):
            assert printed_ulp == pytest.approx(float(row["max_ulp"]), rel=1e-6)
        else:
            assert float(row["max_ulp"]) == math.inf
    # Every finding the page shows (autograd's worst per op and order; another method's
    # where it fails differently) carries its repro and its two numbers.
    typed = pd.read_parquet(folder / "atlas.parquet")
    shown = [a.op_findings(typed, "autograd")] + [
        a.differs_from(a.op_findings(typed, m), typed) for m in ("forward_ad", "complex_step")]
    assert len(shown[0]) >= 2
    for _, row in pd.concat(shown).iterrows():
        assert f"```python\n{row['repro']}\n```" in md
        assert f"gives {float(row['value_at_worst'])!r}, the true value is " \
               f"{float(row['reference_at_worst'])!r}" in md


@pytest.mark.slow
def test_report_command_rebuilds_the_atlas(small_atlas):
    folder, _ = small_atlas
    before = (folder / "atlas.csv").read_text(encoding="utf-8")
    (folder / "atlas.md").unlink()
    assert report_main.main([str(folder)]) == 0
    assert (folder / "atlas.md").exists()
    assert (folder / "atlas.csv").read_text(encoding="utf-8") == before
