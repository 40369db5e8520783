"""The step-size study: the measured V of error against h, beside its model.

E(h) = C h^p + eps F sum|w| / h^n for a difference stencil, with the truncation constant
and round-off factor from the stencil's exact weights (harness.methods.base: the same model
the failure triage uses) and the function's own derivatives (sympy) over the grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from harness.dtypes import facts
from harness.functions.catalog import resolve_function
from harness.functions.numeric import derivative, evaluate
from harness.methods.base import roundoff_factor, truncation_terms
from harness.methods.differences import FINITE_OFFSETS, SCHEMES, accuracy_of
from harness.analysis.tables import row_keys, successful
from harness.results import load_points


def stepsize_rows(records: pd.DataFrame, method: str = "finite") -> pd.DataFrame:
    """Finite-difference rows with an absolute h, in groups that sweep at least 3 h values."""
    ok = successful(records)
    if ok.empty or "h_mode" not in ok.columns:
        return ok.iloc[0:0]
    rows = ok[(ok["method"] == method) & (ok["h_mode"] == "absolute")
              & ok["scheme"].isin(list(SCHEMES))].copy()
    if rows.empty:
        return rows
    rows["order"] = rows["order"] if "order" in rows.columns else 1
    keys = stepsize_keys(rows)
    counts = rows.groupby(keys)["h"].transform("nunique")
    return rows[counts >= 3].sort_values(keys + ["h"]).reset_index(drop=True)


def stepsize_keys(rows: pd.DataFrame) -> list[str]:
    """What identifies one V: the table's row keys (but n), the scheme, and n when it varies."""
    return [k for k in row_keys(rows) if k != "n"] + ["scheme"] + \
        (["n"] if "n" in rows.columns and rows["n"].nunique() > 1 else [])


@dataclass(frozen=True)
class StepModel:
    """E(h) = C h^p + eps R F / h^n for one function, dtype and scheme on one grid:
    C = c_m max|f^(m)|, the stencil's leading truncation term (m = n + p); R = sum|w_k|
    its round-off factor; F = max|f|."""

    p: int
    n: int
    C: float
    F: float
    eps: float
    R: float = 1.0

    def error(self, h: np.ndarray) -> np.ndarray:
        h = np.asarray(h, dtype=np.float64)
        return self.C * h ** self.p + self.eps * self.R * self.F / h ** self.n

    @property
    def h_opt(self) -> float:
        """argmin E: p C h^(p-1) = n eps R F h^-(n+1)."""
        if not (self.C > 0 and self.F > 0):
            return math.nan
        return (self.n * self.eps * self.R * self.F / (self.p * self.C)) ** (1 / (self.p + self.n))

    @property
    def err_opt(self) -> float:
        h = self.h_opt
        return float(self.error(h)) if math.isfinite(h) else math.nan


def leading_term(scheme: str, n: int) -> tuple[int, float]:
    """(m, c_m): the scheme's leading truncation term c_m h^(m-n) |f^(m)|."""
    return truncation_terms(n, FINITE_OFFSETS[(scheme, n)], count=1)[0]


def derivative_maxima(fn: str, fn_source: str, x: np.ndarray, orders: tuple[int, ...]) -> dict:
    """max |f^(k)(x)| over the grid for each k (k = 0 is f itself), from sympy; {} if none."""
    if fn_source not in ("builtin", "nn", "expr"):
        return {}  # user code and networks: no symbolic form to differentiate
    name = fn[len("nn."):] if fn_source == "nn" else fn
    try:
        expr = resolve_function(fn_source, name=name, expr=fn).symbolic()
    except ValueError:
        return {}
    if expr is None:
        return {}
    return {k: _finite_max(derivative(expr, k), x) for k in orders}


def _finite_max(expr, x: np.ndarray) -> float:
    values = np.abs(evaluate(expr, x)) if expr is not None else np.array([])
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else math.nan


def step_model(scheme: str, n: int, dtype: str, maxima: dict) -> Optional[StepModel]:
    m, c = leading_term(scheme, n)
    if m not in maxima or 0 not in maxima:
        return None
    return StepModel(accuracy_of(scheme), n, c * maxima[m], maxima[0], facts(dtype).eps,
                     roundoff_factor(n, FINITE_OFFSETS[(scheme, n)]))


def grid_points(folder: Path, job_dir: str) -> Optional[np.ndarray]:
    """The checked, non-excluded x values of one run, from its points table."""
    points = load_points(Path(folder) / job_dir)
    if points.empty:
        return None
    return points.loc[points["excluded"] == "", "x"].to_numpy(dtype=np.float64)


def _optimum_row(keys: list[str], key: tuple, group: pd.DataFrame,
                 model: Optional[StepModel]) -> dict:
    """The measured best h (steps where every point gave a finite result) and the model's."""
    clean = group[(group["n_nonfinite"] == 0) & group["max_abs_err"].notna()]
    best = clean.loc[clean["max_abs_err"].idxmin()] if not clean.empty else None
    has_opt = model is not None and math.isfinite(model.h_opt)
    return {
        **dict(zip(keys, key)),
        "h_best": best["h"] if best is not None else math.nan,
        "err_best": best["max_abs_err"] if best is not None else math.nan,
        "h_model": model.h_opt if model else math.nan,
        "err_model": model.err_opt if model else math.nan,
        "h_ratio": best["h"] / model.h_opt if best is not None and has_opt else math.nan,
        "p": accuracy_of(group["scheme"].iloc[0]),
        "C": model.C if model else math.nan,
        "F": model.F if model else math.nan,
        "n_h": int(group["h"].nunique()),
    }


def stepsize_table(records: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, dict]:
    """Per (fn, dtype, ..., scheme): the measured best h and error against the model's.

    Returns the table and {group key tuple: StepModel}."""
    rows = stepsize_rows(records)
    if rows.empty:
        return pd.DataFrame(), {}
    keys = stepsize_keys(rows)
    table, models = [], {}
    for key, group in rows.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        models[key] = _group_model(group.iloc[0], folder)
        table.append(_optimum_row(keys, key, group, models[key]))
    return pd.DataFrame(table), models


def _group_model(first: pd.Series, folder: Path) -> Optional[StepModel]:
    x = grid_points(folder, first["job_dir"]) if "job_dir" in first else None
    if x is None or not x.size:
        return None
    n = int(first.get("order", 1) or 1)
    m, _ = leading_term(first["scheme"], n)
    maxima = derivative_maxima(str(first["fn"]), str(first.get("fn_source", "builtin")), x, (0, m))
    return step_model(first["scheme"], n, str(first["dtype"]), maxima)
