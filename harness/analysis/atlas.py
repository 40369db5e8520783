"""The derivative atlas, from gathered records: pure pandas.

One row per torch op x dtype x order x method (atlas.csv): the largest ULP error found
(grid and hunt; at worst_x, evaluated alone, as the repro line evaluates it), the median
over the grid, the points with no correct leading digit, and the worst point's x, value,
reference and triage class. From those rows: the table ops x (dtype, order) of one
method, worst first, with a grade per cell; and the findings, each with a three-line
Python repro and the cross-check methods' error at the same x (the workaround).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.dtypes import TABLE, facts

COLUMNS = ["op", "dtype", "order", "method", "max_ulp", "median_ulp", "n_wrong", "worst_x",
           "value_at_worst", "reference_at_worst", "triage_at_worst"]
CROSS = ("autograd", "forward_ad", "complex_step")
EXTRA = ["status", "status_reason", "n_checked", "n_hunt", "device",
         *(f"ulp_at_worst_{m}" for m in CROSS), "workaround", "repro"]
# Above this many ULP a row is a finding (the triage's noise floor).
FINDING_ULP = 4.0
# Grades, best first; a cell's grade says how much of the dtype's precision survives.
GRADES = ("≤ 1 ULP", "≤ 4 ULP", "lost < half the digits", "lost most digits",
          "no correct digit", "non-finite", "not run")
DTYPE_ORDER = [f.name for f in TABLE]


def atlas_rows(records: pd.DataFrame) -> pd.DataFrame:
    """One row per torch-op record: the atlas columns, then status, cost, cross-checks,
    the workaround and the repro; ordered by op, dtype, order, method."""
    torch_ops = records[records["fn_source"] == "torch"] if "fn_source" in records.columns \
        else records.iloc[0:0]
    if torch_ops.empty:
        return pd.DataFrame(columns=COLUMNS + EXTRA)
    rows = pd.DataFrame({
        "op": torch_ops["fn"].str.removeprefix("torch."),
        "dtype": torch_ops["dtype"], "order": torch_ops["order"].astype(int),
        "method": torch_ops["method"],
        "max_ulp": _column(torch_ops, "worst_ulp"), "median_ulp": _column(torch_ops, "median_ulp"),
        "n_wrong": _column(torch_ops, "n_wrong_found"),
        **{c: _column(torch_ops, c) for c in COLUMNS[7:10]},
        "triage_at_worst": _column(torch_ops, "worst_triage", "").fillna(""),
        "status": torch_ops["status"], "status_reason": _column(torch_ops, "status_reason", ""),
        **{c: _column(torch_ops, c) for c in ("n_checked", "n_hunt")},
        "device": _column(torch_ops, "device", "cpu"),
        **{f"ulp_at_worst_{m}": _column(torch_ops, f"ulp_at_worst_{m}") for m in CROSS},
    })
    rows["workaround"] = rows.apply(workaround, axis=1)
    rows["repro"] = rows.apply(repro, axis=1)
    rank = {d: i for i, d in enumerate(DTYPE_ORDER)}
    return rows.sort_values(["op", "dtype", "order", "method"],
                            key=lambda c: c.map(rank) if c.name == "dtype" else c,
                            kind="stable").reset_index(drop=True)


def _column(frame: pd.DataFrame, name: str, default=math.nan) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(default, index=frame.index)


def grade(max_ulp: float, n_wrong: float, dtype: str) -> str:
    """How much of the dtype's precision survives at the worst point found."""
    if max_ulp is None or (isinstance(max_ulp, float) and math.isnan(max_ulp)):
        return GRADES[6]
    if max_ulp == math.inf:
        return GRADES[5]
    if (not math.isnan(n_wrong) and n_wrong > 0) or max_ulp >= 2.0 ** facts(dtype).nmant:
        return GRADES[4]
    if max_ulp <= 1:
        return GRADES[0]
    if max_ulp <= FINDING_ULP:
        return GRADES[1]
    return GRADES[2] if max_ulp <= 2.0 ** (facts(dtype).nmant / 2) else GRADES[3]


def row_grade(row: pd.Series) -> str:
    return grade(row["max_ulp"], row["n_wrong"], row["dtype"])


def atlas_table(rows: pd.DataFrame, method: str = "autograd") -> pd.DataFrame:
    """ops x (dtype, order) of max_ulp for one method, the worst op first (by its worst
    grade, then its largest error); NaN where not run. Only the ops and the (dtype, order)
    columns the method ran at least once (not_run lists the ops it never ran)."""
    mine = rows[(rows["method"] == method) & (rows["status"] == "ok")]
    if mine.empty:
        return pd.DataFrame()
    table = mine.pivot_table(index="op", columns=["dtype", "order"], values="max_ulp",
                             aggfunc="max", dropna=False)
    present = set(zip(mine["dtype"], mine["order"]))
    order = [(d, o) for d in DTYPE_ORDER for o in (1, 2) if (d, o) in present]
    table = table.reindex(columns=pd.MultiIndex.from_tuples(order, names=["dtype", "order"]))
    severity = mine.assign(rank=mine.apply(lambda r: GRADES.index(row_grade(r)), axis=1))
    severity["rank"] = severity["rank"].where(severity["rank"] < GRADES.index("not run"), -1)
    key = severity.groupby("op").agg(rank=("rank", "max"),
                                     worst=("max_ulp", lambda v: np.nanmax(v) if v.notna().any()
                                            else -1.0))
    ordered = key.sort_values(["rank", "worst"], ascending=False, kind="stable").index
    return table.loc[ordered]


def not_run(rows: pd.DataFrame, method: str) -> list[str]:
    """The ops `method` has rows for but ran in no dtype and order (unsupported: no kernel,
    no complex kernel, no derivative), sorted."""
    mine = rows[rows["method"] == method]
    ran = set(mine.loc[mine["status"] == "ok", "op"])
    return sorted(set(mine["op"]) - ran)


def findings(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows above FINDING_ULP (non-finite results included), worst grade first, then by
    max_ulp; each carries its repro and workaround."""
    found = rows[(rows["status"] == "ok") & (rows["max_ulp"] > FINDING_ULP)].copy()
    found["grade"] = found.apply(row_grade, axis=1)
    found["rank"] = found["grade"].map(GRADES.index)
    return found.sort_values(["rank", "max_ulp"], ascending=False, kind="stable") \
        .drop(columns="rank").reset_index(drop=True)


def op_findings(rows: pd.DataFrame, method: str) -> pd.DataFrame:
    """`method`'s findings, one per op and order (its worst dtype), worst first."""
    found = findings(rows[rows["method"] == method])
    return found.drop_duplicates(["op", "order"], keep="first").reset_index(drop=True)


def differs_from(found: pd.DataFrame, rows: pd.DataFrame, method: str = "autograd") -> pd.DataFrame:
    """The findings whose op, dtype and order `method` does not fail the same way (the same
    worst x and value there): another method's own failures, not autograd's repeated."""
    theirs = rows[rows["method"] == method].set_index(["op", "dtype", "order"])
    keys = list(zip(found["op"], found["dtype"], found["order"]))
    same = [k in theirs.index and _same_failure(theirs.loc[k], f)
            for k, (_, f) in zip(keys, found.iterrows())]
    return found[~np.array(same, dtype=bool)].reset_index(drop=True)


def _same_failure(theirs: pd.Series, mine: pd.Series) -> bool:
    return theirs["status"] == "ok" and theirs["worst_x"] == mine["worst_x"] and (
        theirs["value_at_worst"] == mine["value_at_worst"]
        or (np.isnan(theirs["value_at_worst"]) and np.isnan(mine["value_at_worst"])))


def workaround(row: pd.Series) -> str:
    """The cross-check methods within FINDING_ULP at this row's worst x, e.g.
    'complex_step (0.67 ULP)'; '' when the row is no finding or none gets it right."""
    if not row["max_ulp"] > FINDING_ULP:
        return ""
    good = [(m, row[f"ulp_at_worst_{m}"]) for m in CROSS if m != row["method"]
            and row[f"ulp_at_worst_{m}"] <= FINDING_ULP]
    return ", ".join(f"{m} ({u:.2g} ULP)" for m, u in good)


# How each method computes f'(x) (and f''(x)) in plain torch, on a one-element x named x
# and the op as f: the second line's setup and the third line's expression.
_REPRO = {
    ("autograd", 1): ("requires_grad=True", "",
                      "torch.autograd.grad({f}(x), x)[0]"),
    ("autograd", 2): ("requires_grad=True",
                      "; g, = torch.autograd.grad({f}(x), x, create_graph=True)",
                      "torch.autograd.grad(g, x)[0]"),
    ("forward_ad", 1): ("", "", "torch.func.jvp({f}, (x,), (torch.ones_like(x),))[1]"),
    ("forward_ad", 2): ("", "; d = lambda z: torch.func.jvp({f}, (z,), (torch.ones_like(z),))[1]",
                        "torch.func.jvp(d, (x,), (torch.ones_like(x),))[1]"),
    ("complex_step", 1): ("", "; s = 1e-20 * x.abs().clamp(min=1)",
                          "({f}(torch.complex(x, s)).imag / s)"),
}


def repro(row: pd.Series) -> str:
    """Three lines of Python that print the method's value at worst_x and the true value
    (the reference, rounded to float64); '' where there is no worst point or no form."""
    form = _REPRO.get((row["method"], int(row["order"])))
    if form is None or row["status"] != "ok" or not np.isfinite(row["worst_x"]):
        return ""
    grad, setup, expression = form
    f = f"torch.{row['op']}"
    device = "" if row.get("device", "cpu") == "cpu" else f", device={row['device']!r}"
    extra = f", {grad}" if grad else ""
    return "\n".join([
        "import torch",
        f"x = torch.tensor({float(row['worst_x'])!r}, dtype=torch.{row['dtype']}{device}{extra})"
        + setup.format(f=f),
        f"print({expression.format(f=f)}.item(), 'true:', {float(row['reference_at_worst'])!r})",
    ])


def elapsed_seconds(started: str | None, finished: pd.Series) -> float:
    """From the sweep's start (its manifest) to the last run's finish; NaN if unknown."""
    begin = pd.to_datetime(started, utc=True, errors="coerce") if started else pd.NaT
    ends = pd.to_datetime(finished, utc=True, errors="coerce").dropna()
    if pd.isna(begin) or ends.empty:
        return math.nan
    return float((ends.max() - begin).total_seconds())
