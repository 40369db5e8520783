"""The sweep's tables: pure pandas over the gathered records (one row per run).

Labels (a method plus the parameters that vary within it), pivots of accuracy and
throughput per (fn, dtype, ...) x method variant, the error relative to the best available,
the per-point slowdown, the accuracy/throughput frontier, and where a method's relative
error is worst. Nothing here draws or writes; harness.report turns these into words,
figures and files.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.methods import METHODS
from harness.results import job_key, load_points, split_overrides
from harness.study.record import OK


def _params(row: pd.Series) -> dict:
    """A record's method parameters: the `method_params` column, else method.* overrides."""
    text = row.get("method_params")
    if isinstance(text, str) and text:
        return json.loads(text)
    found = {}
    for token in split_overrides(str(row.get("overrides", ""))):
        key, _, value = token.partition("=")
        if key.startswith("method."):
            found[key[len("method."):]] = value
    return found


def _value_text(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def variant_labels(records: pd.DataFrame) -> pd.Series:
    """Column label per record: the method, plus the parameters that vary within it here.

    `-m method=autograd,finite` gives 'autograd', 'finite'; a step-size sweep gives
    'finite scheme=central h=1e-05'. Parameters constant across the sweep are left out.
    """
    params = records.apply(_params, axis=1)
    labels = records["method"].astype(str).copy()
    for method in records["method"].unique():
        rows = records["method"] == method
        keys = list(dict.fromkeys(k for p in params[rows] for k in p))
        varying = [k for k in keys
                    if len({_value_text(p.get(k)) for p in params[rows]}) > 1]
        for i in records.index[rows]:
            extra = " ".join(f"{k}={_value_text(params[i].get(k))}" for k in varying)
            labels[i] = f"{method} {extra}" if extra else method
    return labels


# Row keys of every pivot; the optional ones only when they vary in the records.
ROW_KEYS = ("fn", "dtype")
OPTIONAL_ROW_KEYS = ("order", "device", "n", "host")


def row_keys(records: pd.DataFrame) -> list[str]:
    keys = list(ROW_KEYS)
    for key in OPTIONAL_ROW_KEYS:
        if key in records.columns and records[key].nunique(dropna=False) > 1:
            keys.append(key)
    return keys


def successful(records: pd.DataFrame) -> pd.DataFrame:
    """Records with status ok, labelled, one per (row keys, variant): the latest kept."""
    if records.empty or "status" not in records.columns:
        return records.iloc[0:0]
    ok = records[records["status"] == OK].copy()
    if ok.empty:
        return ok
    ok["variant"] = variant_labels(ok)
    sort = [c for c in ("timestamp",) if c in ok.columns]
    ok = ok.sort_values(sort, kind="stable") if sort else ok
    ok = ok.drop_duplicates(subset=row_keys(ok) + ["variant"], keep="last")
    return ok.sort_index()


def duplicates(records: pd.DataFrame) -> int:
    """How many ok records were superseded by a later one of the same configuration."""
    if records.empty or "status" not in records.columns:
        return 0
    return int((records["status"] == OK).sum()) - len(successful(records))


def _variant_order(ok: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(ok["variant"]))


def pivot(ok: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Rows: row keys; columns: (variant, metric); cells: the record's values."""
    if ok.empty:
        return pd.DataFrame()
    keys = row_keys(ok)
    table = ok.pivot_table(index=keys, columns="variant", values=metrics, aggfunc="first",
                           dropna=False, sort=False)
    # dropna=False keeps a metric that is NaN everywhere, but also makes every combination
    # of the keys' values a row: an atlas's grid sizes differ per op and dtype (1.7 MB of
    # empty rows); keep the combinations that ran.
    table = table[table.index.isin(ok.set_index(keys).index)]
    table = table.swaplevel(0, 1, axis=1)
    columns = [(v, m) for v in _variant_order(ok) for m in metrics if (v, m) in table.columns]
    return table.reindex(columns=pd.MultiIndex.from_tuples(columns, names=["variant", "metric"]))


ACCURACY_METRICS = ["max_abs_err", "median_ulp", "n_nonfinite", "n_wrong"]


def accuracy_table(records: pd.DataFrame) -> pd.DataFrame:
    """max_abs_err, median_ulp, n_nonfinite and n_wrong (points with no correct digit) per
    (fn, dtype, ...) x method variant (records written before n_wrong existed lack it)."""
    ok = successful(records)
    return pivot(ok, [m for m in ACCURACY_METRICS if m in ok.columns])


def timed(records: pd.DataFrame) -> pd.DataFrame:
    ok = successful(records)
    if ok.empty or "time_median_s" not in ok.columns:
        return ok.iloc[0:0]
    return ok[ok["time_median_s"].notna()]


def untrusted(rows: pd.DataFrame) -> pd.Series:
    """Per row: its timing says it cannot be trusted (time_noisy, with a reason)."""
    if "time_noisy" not in rows.columns:
        return pd.Series(False, index=rows.index)
    return rows["time_noisy"].fillna(False).astype(bool)


def trusted(records: pd.DataFrame) -> pd.DataFrame:
    """Timed rows whose timing can be trusted: the only ones findings quote ratios from."""
    rows = timed(records)
    return rows[~untrusted(rows)]


# The time per call and its spread come along, so each throughput cell can show its noise.
THROUGHPUT_METRICS = ["points_per_s", "cost_vs_forward", "time_median_s", "time_iqr_s",
                      "time_noisy", "time_blocks"]


def throughput_table(records: pd.DataFrame) -> pd.DataFrame:
    """points_per_s, cost_vs_forward and the timing's median, IQR, noisy flag and number
    of timed blocks (timed_blocks) per (fn, dtype, ...) x method variant."""
    rows = timed(records)
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(time_blocks=[timed_blocks(r) for _, r in rows.iterrows()])
    return pivot(rows, [m for m in THROUGHPUT_METRICS if m in rows.columns])


def timed_blocks(record) -> float:
    """How many timed blocks a record's median and IQR come from: the blocks measured less
    those that waited for a CPU (n_blocks, n_blocks_stalled), else the raw times the parquet
    keeps; NaN where neither is stored (a CSV of older records)."""
    blocks = record.get("n_blocks")
    if blocks is not None and not pd.isna(blocks):
        stalled = record.get("n_blocks_stalled")
        return float(blocks) - (0.0 if stalled is None or pd.isna(stalled) else float(stalled))
    raw = record.get("raw_times_s")
    return math.nan if raw is None or isinstance(raw, float) else float(len(raw))


def error_vs_best(records: pd.DataFrame) -> pd.DataFrame:
    """Each variant's max_abs_err divided by the smallest in its row (1 = the best).

    A variant that returned non-finite values at some points scores inf: its max |error|
    covers only the points that survived, so it cannot be the most accurate. When the
    best error is exactly 0, an exact variant scores 1 and the others inf. A cell with no
    record (unsupported, failed, not in the sweep) stays NaN.
    """
    table = accuracy_table(records)
    if table.empty:
        return table
    err = table.xs("max_abs_err", axis=1, level="metric")
    nonfinite = table.xs("n_nonfinite", axis=1, level="metric")
    err = err.mask(nonfinite.fillna(0) > 0, math.inf)
    best = err.min(axis=1, skipna=True)
    ratio = err.div(best.where(best > 0), axis=0)
    exact = best == 0
    ratio.loc[exact] = err.loc[exact].map(lambda e: 1.0 if e == 0 else math.inf)
    return ratio.mask(err.isna())


def per_point_slowdown(records: pd.DataFrame, baseline: str = "autograd") -> pd.DataFrame:
    """Per-point methods against the vectorized baseline, same row: throughput ratio.

    `slowdown` = baseline points/s over the per-point method's points/s (how many times
    slower the loop is per point). Per-point methods are those flagged in the registry.
    `trusted`: neither side's timing is flagged (time_noisy); findings quote only those.
    """
    rows = timed(records)
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(trusted=~untrusted(rows))
    per_point = rows[rows["method"].map(lambda m: m in METHODS and METHODS.get(m).per_point)]
    base = rows[rows["method"] == baseline]
    keys = row_keys(rows)
    if per_point.empty or base.empty:
        return pd.DataFrame()
    merged = per_point.merge(base[keys + ["points_per_s", "cost_vs_forward", "trusted"]],
                             on=keys, suffixes=("", "_base"))
    merged["slowdown"] = merged["points_per_s_base"] / merged["points_per_s"]
    merged["trusted"] = merged["trusted"] & merged["trusted_base"]
    columns = keys + ["variant", "points_per_s", "points_per_s_base", "cost_vs_forward",
                      "cost_vs_forward_base", "slowdown", "trusted"]
    return merged[columns].rename(columns={
        "variant": "per_point_method", "points_per_s": "per_point_points_per_s",
        "points_per_s_base": f"{baseline}_points_per_s", "cost_vs_forward": "per_point_cost",
        "cost_vs_forward_base": f"{baseline}_cost"})


def frontier_points(records: pd.DataFrame) -> pd.DataFrame:
    """One point per (dtype, variant): median throughput and median normalized error.

    The median runs over the sweep's functions (and devices/orders); when grid sizes vary,
    only the largest n is used, so a scaling sweep's small grids do not drag speed down.
    """
    rows = timed(records)
    if rows.empty or "norm_rel_err" not in rows.columns:
        return pd.DataFrame()
    rows = rows[rows["n"] == rows["n"].max()]
    grouped = rows.groupby(["dtype", "variant"], sort=False)
    points = grouped.agg(points_per_s=("points_per_s", "median"),
                         norm_rel_err=("norm_rel_err", "median"),
                         n_rows=("points_per_s", "size")).reset_index()
    if "parallel" in rows.columns:
        points["parallel"] = grouped["parallel"].agg(lambda p: bool(p.fillna(False).any())).values
    return points


def scaling_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Timed rows of variants measured at three or more grid sizes."""
    rows = timed(records)
    if rows.empty:
        return rows
    sizes = rows.groupby(["fn", "dtype", "variant"])["n"].transform("nunique")
    return rows[sizes >= 3]


def autograd_errors(records: pd.DataFrame, fn: str) -> dict:
    """{dtype: autograd's max |error|} for one function (the step-size plot's reference line)."""
    ok = successful(records)
    if ok.empty:
        return {}
    rows = ok[(ok["method"] == "autograd") & (ok["fn"] == fn)]
    return rows.groupby("dtype")["max_abs_err"].min().to_dict()


def worst_relative_points(records: pd.DataFrame, folder: Path, method: str = "autograd") -> pd.DataFrame:
    """For each ok run of `method`: its max relative error, and where it happens.

    Columns: fn, dtype, variant, max_rel_err, max_ulp, x_worst, df_ref_worst (the x with
    the largest |error| / |f'(x)| among checked points, from the run's points table).
    """
    ok = successful(records)
    rows = ok[ok["method"] == method] if not ok.empty else ok
    out = []
    for _, row in rows.iterrows():
        where = _worst_point(Path(folder) / str(row.get("job_dir", "")))
        out.append({"fn": row["fn"], "dtype": row["dtype"], "variant": row["variant"],
                    "max_rel_err": row.get("max_rel_err", math.nan),
                    "max_ulp": row.get("max_ulp", math.nan), **where})
    return pd.DataFrame(out)


def _worst_point(run_dir: Path) -> dict:
    points = load_points(run_dir)
    if points.empty:
        return {"x_worst": math.nan, "df_ref_worst": math.nan}
    points = points[(points["excluded"] == "") & (points["df_ref"] != 0)
                    & np.isfinite(points["abs_err"])]
    if points.empty:
        return {"x_worst": math.nan, "df_ref_worst": math.nan}
    worst = points.loc[(points["abs_err"] / points["df_ref"].abs()).idxmax()]
    return {"x_worst": float(worst["x"]), "df_ref_worst": float(worst["df_ref"])}


def triage_table(records: pd.DataFrame) -> pd.DataFrame:
    """Points above 4 ULP per cause, per fn x method x dtype (runs with any such point)."""
    columns = [c for c in records.columns if c.startswith("triage_")]
    ok = records[records["status"] == OK] if columns else records.iloc[0:0]
    if ok.empty:
        return pd.DataFrame()
    table = ok.groupby(["fn", "method", "dtype"])[columns].sum()
    table.columns = [c.removeprefix("triage_") for c in columns]
    return table[table.sum(axis=1) > 0].reset_index()


def missing_jobs(records: pd.DataFrame, jobs: list[list[str]]) -> list[list[str]]:
    """The jobs of a sweep (override lists) that have no record yet."""
    have = set(records["overrides"].map(job_key)) if "overrides" in records.columns else set()
    return [job for job in jobs if job_key(job) not in have]
