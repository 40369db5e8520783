"""Error metrics: pure arrays in, numbers out.

Errors are measured against a double-double reference (hi + lo), so a float64 method's
error is resolved far below one ULP. ULPs are counted in the run's dtype, at the
reference value. Tolerances per dtype live in harness.dtypes.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from harness.dtypes import facts


def ulp(values: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Spacing of `dtype` just above |value| (subnormal spacing near 0), as float64."""
    info, nmant = torch.finfo(dtype), facts(dtype).nmant
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    _, exponent = np.frexp(magnitude)
    smallest = info.tiny * 2.0 ** -nmant  # the subnormal spacing, also the spacing at 0
    normal = np.ldexp(1.0, exponent - 1 - nmant)
    return np.where(magnitude == 0, smallest, np.maximum(normal, smallest))


def abs_error(df: np.ndarray, ref_hi: np.ndarray, ref_lo: np.ndarray) -> np.ndarray:
    """|df - (hi + lo)|; df - hi is exact when the two are close, which is when it matters."""
    return np.abs((np.asarray(df, dtype=np.float64) - ref_hi) - ref_lo)


def _stat(fn, values: np.ndarray) -> float:
    return float(fn(values)) if values.size else math.nan


def summarize(df: np.ndarray, ref_hi: np.ndarray, ref_lo: np.ndarray, excluded: np.ndarray,
              dtype: torch.dtype) -> dict:
    """Error statistics over the points not excluded.

    Points where the method returned nan/inf (but the reference is finite) are counted in
    n_nonfinite, left out of the error statistics, and count as failures in pass_rate.
    """
    df = np.asarray(df, dtype=np.float64)
    used = ~excluded & np.isfinite(ref_hi)
    nonfinite = used & ~np.isfinite(df)
    good = used & ~nonfinite
    err = abs_error(df[good], ref_hi[good], ref_lo[good])
    ref = np.abs(ref_hi[good])
    ulps = err / ulp(ref, dtype)
    nonzero = ref > 0
    rtol, atol = facts(dtype).rtol, facts(dtype).atol
    passed = int(np.sum(err <= atol + rtol * ref))
    return {
        "n_used": int(used.sum()),
        "n_nonfinite": int(nonfinite.sum()),
        "max_abs_err": _stat(np.max, err),
        "mean_abs_err": _stat(np.mean, err),
        "rms_err": _stat(lambda e: np.sqrt(np.mean(e * e)), err),
        "max_rel_err": _stat(np.max, err[nonzero] / ref[nonzero]),
        "norm_rel_err": _stat(np.max, err) / _stat(np.max, ref) if ref.size and ref.max() > 0
        else math.nan,
        "median_ulp": _stat(np.median, ulps),
        "max_ulp": _stat(np.max, ulps),
        "pass_rate": passed / int(used.sum()) if used.any() else math.nan,
        "rtol": rtol,
        "atol": atol,
    }


def point_errors(df: np.ndarray, ref_hi: np.ndarray, ref_lo: np.ndarray,
                 dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per-point (abs_err, ulp_err), for the points table."""
    err = abs_error(df, ref_hi, ref_lo)
    return err, err / ulp(ref_hi, dtype)


def estimate_calibration(estimate: np.ndarray | None, df: np.ndarray, ref_hi: np.ndarray,
                         ref_lo: np.ndarray, excluded: np.ndarray) -> dict:
    """How a method's own error estimate compares with its true error (NaN if it gives none).

    coverage: share of points whose true error is within the estimate (an honest estimate
    is near 1); ratio: median of estimate / true error over points with a nonzero error
    (>> 1 is pessimistic, < 1 optimistic).
    """
    columns = ("err_estimate_median", "err_estimate_max", "estimate_coverage",
               "estimate_ratio_median")
    if estimate is None:
        return dict.fromkeys(columns, math.nan)
    used = ~excluded & np.isfinite(ref_hi) & np.isfinite(df) & np.isfinite(estimate)
    est = np.abs(estimate[used])
    err = abs_error(df[used], ref_hi[used], ref_lo[used])
    nonzero = err > 0
    return dict(zip(columns, (
        _stat(np.median, est), _stat(np.max, est),
        float(np.mean(err <= est)) if err.size else math.nan,
        _stat(np.median, est[nonzero] / err[nonzero]),
    )))
