"""Error metrics and per-point verdicts: pure arrays in, numbers out.

Errors are measured against a double-double reference (hi + lo), so a float64 method's
error is resolved far below one ULP. ULPs are counted in the run's dtype, at the
reference value. Thresholds per dtype live in harness.dtypes.

Every checked point gets one verdict (VERDICTS), read relative to the reference:

- reference_limited: the error is within REFERENCE_FACTOR x the reference's own
  uncertainty, and that uncertainty is coarser than half a ULP of the run's dtype: the
  reference cannot tell this error from zero. Counted and left out of the ULP and relative
  statistics and of the relative pass rate (an Arb bound, <= 2^-106 relative, never is);
- nonfinite: the method returned nan/inf where the reference is finite;
- wrong: no correct leading digit, |err| >= |f'| (0, or the wrong sign, where f' != 0),
  and more than one ULP of the dtype: where f' is below the dtype's smallest subnormal,
  0 is its correct rounding, not a wrong result;
- accurate: |err| <= rtol * |f'| (the dtype's rtol; at f' = 0 exactly only an exact 0),
  or within half a ULP of the dtype (a correctly rounded subnormal or underflowed f');
- inaccurate: the rest.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from harness.dtypes import facts

VERDICTS = ("accurate", "inaccurate", "wrong", "nonfinite", "reference_limited", "excluded")
# An error within this many times the reference's uncertainty is not resolved by it (the
# uncertainty of an estimate such as Ridders' is not a bound).
REFERENCE_FACTOR = 4.0


def ulp(values: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Spacing of `dtype` just above |value| (subnormal spacing near 0), as float64."""
    info, nmant = torch.finfo(dtype), facts(dtype).nmant
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    _, exponent = np.frexp(magnitude)
    smallest = info.tiny * 2.0 ** -nmant  # the subnormal spacing, also the spacing at 0
    normal = np.ldexp(1.0, exponent - 1 - nmant)
    return np.where(magnitude == 0, smallest, np.maximum(normal, smallest))


def abs_error(df: np.ndarray, ref_hi: np.ndarray, ref_lo: np.ndarray) -> np.ndarray:
    """|df - (hi + lo)|; df - hi is exact when the two are close, which is when it matters.
    inf - inf (a non-finite result where the reference overflows too) is nan, quietly: the
    verdicts say what such a point is."""
    with np.errstate(invalid="ignore"):
        return np.abs((np.asarray(df, dtype=np.float64) - ref_hi) - ref_lo)


def reference_limited(abs_err: np.ndarray, ref_hi: np.ndarray,
                      uncertainty: np.ndarray | None, dtype: torch.dtype) -> np.ndarray:
    """Mask of errors the reference cannot resolve (see the module doc)."""
    if uncertainty is None:
        return np.zeros(np.shape(abs_err), dtype=bool)
    resolution = REFERENCE_FACTOR * np.asarray(uncertainty, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (abs_err <= resolution) & (resolution > ulp(ref_hi, dtype) / 2)


def verdicts(df: np.ndarray, ref_hi: np.ndarray, ref_lo: np.ndarray, excluded: np.ndarray,
             dtype: torch.dtype, uncertainty: np.ndarray | None = None) -> np.ndarray:
    """One of VERDICTS per point. A point with a non-finite reference is excluded."""
    df = np.asarray(df, dtype=np.float64)
    err, ref = abs_error(df, ref_hi, ref_lo), np.abs(ref_hi)
    verdict = np.full(df.shape, "inaccurate", dtype=object)
    spacing = ulp(ref_hi, dtype)
    with np.errstate(invalid="ignore"):
        verdict[(err <= facts(dtype).rtol * ref) | ((err <= spacing / 2) & (ref > 0))] = \
            "accurate"
        verdict[(err >= ref) & (ref > 0) & (err > spacing)] = "wrong"
    verdict[reference_limited(err, ref_hi, uncertainty, dtype)] = "reference_limited"
    verdict[~np.isfinite(df)] = "nonfinite"
    verdict[excluded | ~np.isfinite(ref_hi)] = "excluded"
    return verdict


def _stat(fn, values: np.ndarray) -> float:
    return float(fn(values)) if values.size else math.nan


def summarize(df: np.ndarray, ref_hi: np.ndarray, ref_lo: np.ndarray, excluded: np.ndarray,
              dtype: torch.dtype, uncertainty: np.ndarray | None = None) -> dict:
    """Error statistics over the points not excluded, and the verdict counts.

    Absolute statistics (max/mean/rms |err|, norm_rel_err) cover every finite result;
    ULP and relative ones leave reference-limited points out. Non-finite results are
    counted in n_nonfinite, left out of the error statistics, and fail both pass rates.
    rel_pass_rate: accurate points over the points the reference resolves (the headline);
    assert_close_rate: what torch.testing.assert_close's tolerances (atol + rtol * |ref|)
    would pass, over every used point.
    """
    df = np.asarray(df, dtype=np.float64)
    verdict = verdicts(df, ref_hi, ref_lo, excluded, dtype, uncertainty)
    used = verdict != "excluded"
    finite = used & (verdict != "nonfinite")
    resolved = finite & (verdict != "reference_limited")
    err, ref = abs_error(df, ref_hi, ref_lo), np.abs(ref_hi)
    ulps, judged = err[resolved] / ulp(ref[resolved], dtype), used & (verdict != "reference_limited")
    nonzero = resolved & (ref > 0)
    rtol, atol = facts(dtype).rtol, facts(dtype).atol
    return {
        "n_used": int(used.sum()),
        "n_nonfinite": int((verdict == "nonfinite").sum()),
        "n_reference_limited": int((verdict == "reference_limited").sum()),
        "n_wrong": int((verdict == "wrong").sum()),
        "max_abs_err": _stat(np.max, err[finite]),
        "mean_abs_err": _stat(np.mean, err[finite]),
        "rms_err": _stat(lambda e: np.sqrt(np.mean(e * e)), err[finite]),
        "max_rel_err": _stat(np.max, err[nonzero] / ref[nonzero]),
        "norm_rel_err": _stat(np.max, err[finite]) / ref[finite].max()
        if finite.any() and ref[finite].max() > 0 else math.nan,
        "median_ulp": _stat(np.median, ulps),
        "max_ulp": _stat(np.max, ulps),
        "rel_pass_rate": int((verdict == "accurate").sum()) / int(judged.sum())
        if judged.any() else math.nan,
        "assert_close_rate": int(np.sum(finite & (err <= atol + rtol * ref))) / int(used.sum())
        if used.any() else math.nan,
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
