"""Networks across a sweep: do out.backward(v) and autograd.grad agree, how far are the
forward-mode, gradient-penalty and finite-difference checks. Pure pandas."""
from __future__ import annotations

import pandas as pd

from harness.study.record import OK

CONSISTENCY_KEYS = ["fn", "dtype", "device", "v_kind", "train_mode"]


def consistency_table(records: pd.DataFrame) -> pd.DataFrame:
    """One row per network x dtype x device x v x train mode: whether out.backward(v) and
    autograd.grad agree bitwise (in every run), their largest difference, the forward-mode
    and gradient-penalty checks, and how far the finite differences are from the reference."""
    if "fn_source" not in records:
        return pd.DataFrame()
    ok = records[(records["fn_source"] == "network") & (records["status"] == OK)]
    if ok.empty:
        return pd.DataFrame()
    checks = ok.groupby(CONSISTENCY_KEYS).agg(
        bitwise_backward_vs_autograd=("bitwise_backward_vs_autograd", "all"),
        max_abs_diff_backward_vs_autograd=("max_abs_diff_backward_vs_autograd", "max"),
        forward_mode_rel_diff=("forward_mode_rel_diff", "max"),
        gp_rel_err=("gp_rel_err", "max"))
    finite = ok[ok["method"] == "finite"].groupby(CONSISTENCY_KEYS).agg(
        finite_max_rel_err=("max_rel_err", "max"), finite_norm_rel_err=("norm_rel_err", "max"),
        finite_n_excluded=("n_excluded", "max"))
    return checks.join(finite, how="left").reset_index()
