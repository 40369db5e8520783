"""A network run's points table -> matplotlib Figures (never saved here; see report.py).

plots.derivative_figure draws f over x, which a network does not have: an entry of vᵀJ
belongs to one input element, so these figures are over the element's flat index, and
the method's entries against the float64 reference's.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from harness.dtypes import DTYPES


def _title(record: dict) -> str:
    step = f", {record['scheme']} h={record['h']:.3g}" if record.get("scheme") else ""
    mode = ", train mode" if record.get("train_mode") else ""
    return (f"{record['fn']} — {record['method']}{step} — {record['dtype']} on "
            f"{record['device']} — v={record['v_kind']}{mode}")


def vjp_figure(points: pd.DataFrame, record: dict) -> Figure:
    """Each entry of the method's vᵀJ against the reference's: on the diagonal when exact."""
    fig = Figure(figsize=(6, 5.5), layout="constrained")
    ax = fig.add_subplot()
    ref, df = points["df_ref"].to_numpy(), points["df"].to_numpy()
    ends = [np.nanmin(ref), np.nanmax(ref)]
    ax.plot(ends, ends, color="tab:blue", lw=3, alpha=0.45,
            label=f"reference ({record['reference']})")
    used = points["excluded"] == ""
    ax.plot(ref[used], df[used], ".", ms=3, color="tab:orange",
            label=f"vᵀJ by {record['method']}")
    if (~used).any():
        ax.plot(ref[~used], df[~used], "x", color="tab:red", ms=6,
                label=f"stencil across a kink, excluded ({int((~used).sum())})")
    ax.set_xlabel("reference entry of vᵀJ")
    ax.set_ylabel("computed entry")
    ax.set_title(_title(record), fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


def vjp_error_figure(points: pd.DataFrame, record: dict) -> Figure:
    """|error| per input element (flat index), log scale, with eps·|reference| marked."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    used = points[points["excluded"] == ""]
    err = used["abs_err"].to_numpy()
    # Exact zeros cannot sit on a log axis: draw them at the bottom, said in the legend.
    floor = np.nanmin(err[err > 0]) / 10 if np.any(err > 0) else 1e-20
    n_zero = int(np.sum(err == 0))
    ax.semilogy(used["index"], np.where(err > 0, err, floor), ".", ms=3, color="tab:orange",
                label=f"|error| ({n_zero} exact, drawn at the bottom)" if n_zero else "|error|")
    eps = torch.finfo(DTYPES[record["dtype"]]).eps
    ax.semilogy(used["index"], np.maximum(eps * used["df_ref"].abs().to_numpy(), floor), "_",
                color="tab:green", ms=4, label=f"eps({record['dtype']})·|reference|")
    ax.set_xlabel("input element (flat index)")
    ax.set_ylabel("|vᵀJ entry - reference|")
    ax.set_title(_title(record), fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small")
    return fig
