"""The report layer on network runs: the consistency sentences and rows, the figures."""
from __future__ import annotations

import pandas as pd

from harness.report.network_plots import vjp_error_figure, vjp_figure
from harness.report.run_page import consistency_rows
from harness.report.words import consistency_words


def test_consistency_words_say_what_agreed_and_how_far_the_checks_are():
    table = pd.DataFrame({
        "fn": ["tutorial_mlp", "discriminator"], "dtype": ["float32", "float64"],
        "device": ["cpu", "cuda"], "v_kind": ["ones", "random"], "train_mode": [False, True],
        "bitwise_backward_vs_autograd": [True, False],
        "max_abs_diff_backward_vs_autograd": [0.0, 1.25e-17],
        "forward_mode_rel_diff": [3.2e-7, 0.0], "gp_rel_err": [1.5e-8, 0.0],
        "finite_max_rel_err": [0.01, float("nan")], "finite_norm_rel_err": [2.5e-4, float("nan")],
    })
    assert consistency_words(table) == [
        "tutorial_mlp (float32, cpu, v=ones): out.backward(v) and torch.autograd.grad agree "
        "bitwise; forward mode within 3.2e-07 (relative); gradient-penalty check 1.5e-08; "
        "finite differences up to 0.00025 (norm-relative).",
        "discriminator (float64, cuda, v=random, train mode): out.backward(v) and "
        "torch.autograd.grad differ by up to 1.25e-17; forward mode within 0 (relative); "
        "gradient-penalty check 0.",
    ]


def test_a_network_runs_page_states_its_consistency_rows(mlp):
    record = mlp[("finite", "float64")].record
    rows = dict(consistency_rows(record))
    assert rows["v (cotangent)"] == "ones"
    assert rows["out.backward(v) == autograd.grad(out, x, v), bitwise"] is True
    assert rows["max |backward - autograd.grad|"] == 0.0
    assert rows["reference"] == "float64-autograd"
    assert consistency_rows({"fn_source": "builtin", "status": "ok"}) == []


def test_network_figures_draw_entries_against_the_reference_and_errors_per_element(
        disc_finite32):
    record, points = disc_finite32.record, disc_finite32.points
    scatter = vjp_figure(points, record).axes[0]
    assert scatter.get_xlabel() == "reference entry of vᵀJ"
    assert any("excluded" in t.get_text() for t in scatter.get_legend().get_texts())
    errors = vjp_error_figure(points, record).axes[0]
    assert errors.get_xlabel() == "input element (flat index)"
    assert errors.get_title().endswith("float32 on cpu — v=ones")
