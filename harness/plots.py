"""DataFrame -> matplotlib Figure. Plot functions never save: the report layer writes files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16}


def _title(record: dict) -> str:
    step = f", {record['scheme']} h={record['h']:.3g}" if record.get("scheme") else ""
    return f"{record['fn']} — {record['method']}{step} — {record['dtype']} on {record['device']}"


def derivative_figure(points: pd.DataFrame, record: dict) -> Figure:
    """The tutorial's picture: f, the computed f' and the reference f' over x."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(points["x"], points["f"], color="0.35", lw=1.5, label="f(x)")
    ax.plot(points["x"], points["df_ref"], color="tab:blue", lw=3, alpha=0.45,
            label=f"f'(x) reference ({record['reference']})")
    ax.plot(points["x"], points["df"], color="tab:orange", lw=1, ls="--",
            label=f"f'(x) by {record['method']}")
    excluded = points[points["excluded"] != ""]
    if len(excluded):
        ax.plot(excluded["x"], excluded["df"], "x", color="tab:red", ms=6,
                label=f"excluded ({len(excluded)})")
    ax.set_xlabel("x")
    ax.set_title(_title(record))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


def error_figure(points: pd.DataFrame, record: dict) -> Figure:
    """|error| against x on a log scale, with the dtype's epsilon (and eps*|f'|) marked."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    used = points[points["excluded"] == ""]
    err = used["abs_err"].to_numpy()
    # Exact zeros cannot sit on a log axis: draw them at the bottom, said in the legend.
    floor = np.nanmin(err[err > 0]) / 10 if np.any(err > 0) else 1e-20
    shown = np.where(err > 0, err, floor)
    n_zero = int(np.sum(err == 0))
    ax.semilogy(used["x"], shown, ".", ms=2, color="tab:orange",
                label=f"|error| ({n_zero} exact, drawn at the bottom)" if n_zero else "|error|")
    eps = torch.finfo(DTYPES[record["dtype"]]).eps
    ax.axhline(eps, color="tab:green", ls="--", lw=1, label=f"eps({record['dtype']}) = {eps:.2e}")
    ax.semilogy(used["x"], np.maximum(eps * np.abs(used["df_ref"]), floor), color="tab:green",
                lw=0.8, alpha=0.6, label="eps·|f'(x)| (one rounding of the result)")
    ax.set_xlabel("x")
    ax.set_ylabel("|f'(x) - reference|")
    ax.set_title(_title(record))
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small")
    return fig
