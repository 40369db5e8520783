"""harness.analysis.networks: the networks' consistency table across a sweep's records."""
from __future__ import annotations

import pandas as pd

from harness.analysis.networks import consistency_table


def test_consistency_table_has_one_row_per_network_configuration(mlp):
    records = pd.DataFrame([o.record for o in mlp.values()])
    table = consistency_table(records)
    assert list(table["fn"]) == ["tutorial_mlp", "tutorial_mlp"]
    assert list(table["dtype"]) == ["float32", "float64"]
    assert table["bitwise_backward_vs_autograd"].tolist() == [True, True]
    assert table["max_abs_diff_backward_vs_autograd"].tolist() == [0.0, 0.0]
    by_dtype = records.set_index(["method", "dtype"])
    assert table["finite_norm_rel_err"].tolist() == [
        by_dtype.loc[("finite", d), "norm_rel_err"] for d in ("float32", "float64")]
    assert table["gp_rel_err"].tolist() == [
        records[records["dtype"] == d]["gp_rel_err"].max() for d in ("float32", "float64")]


def test_one_run_that_differs_makes_its_configuration_differ():
    rows = pd.DataFrame({
        "fn": ["tutorial_mlp"] * 2, "fn_source": ["network"] * 2, "status": ["ok"] * 2,
        "method": ["autograd", "backward"], "dtype": ["float32"] * 2, "device": ["cpu"] * 2,
        "v_kind": ["ones"] * 2, "train_mode": [False] * 2,
        "bitwise_backward_vs_autograd": [True, False],
        "max_abs_diff_backward_vs_autograd": [0.0, 2.0 ** -20],
        "forward_mode_rel_diff": [1e-7, 3e-7], "gp_rel_err": [1e-8, 1e-8],
        "max_rel_err": [1e-6, 1e-6], "norm_rel_err": [1e-7, 1e-7], "n_excluded": [0, 0]})
    (row,) = consistency_table(rows).to_dict("records")
    assert not row["bitwise_backward_vs_autograd"]
    assert (row["max_abs_diff_backward_vs_autograd"], row["forward_mode_rel_diff"]) == \
        (2.0 ** -20, 3e-7)
    assert pd.isna(row["finite_norm_rel_err"])  # no finite run in this configuration


def test_records_without_networks_give_an_empty_table():
    assert consistency_table(pd.DataFrame({"fn": ["sin"], "fn_source": ["builtin"],
                                           "status": ["ok"]})).empty
