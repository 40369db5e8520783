"""run_study: the one place that joins grid, function, method, reference, metrics and timing.

Order matters for honest numbers: the method's values are computed and checked first,
timing comes after (and never includes the reference or the plotting), and the
reference is evaluated at the exact dtype-rounded x that the method saw.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from harness.config import DTYPES, Study
from harness.machine import machine_info
from harness.metrics import estimate_calibration, point_errors, summarize
from harness.reference import autograd64_reference, cached_mpmath_reference
from harness.methods import richardson, stencil, weights
from harness.timing import Timing, time_call
from harness import triage
from torch.utils.benchmark.utils.timer import timer as synced_timer

# Per-point methods report progress every this many points.
PROGRESS_CHUNK = 2000
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
# Phrases with which torch (and the peers) say an op has no kernel for a dtype or device:
# such a run is `unsupported`, not an error.
UNSUPPORTED_PHRASES = ("not implemented for", "not supported", "does not support",
                       "does not currently support")


class Unsupported(Exception):
    """The method cannot compute this function in this dtype/device/order."""


@dataclass(frozen=True)
class Outcome:
    record: dict
    points: pd.DataFrame


def make_grid(study: Study) -> torch.Tensor:
    """The grid in float64, rounded once to the run's dtype, on the run's device."""
    g = study.grid
    x64 = np.linspace(g.start, g.stop, g.n) if g.n else np.arange(g.start, g.stop, g.step)
    return torch.tensor(x64, dtype=torch.float64).to(study.dtype).to(study.device)


def check_indices(n: int, max_points: int) -> np.ndarray:
    """All indices, or an evenly strided deterministic subsample including both ends."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def _call(study: Study, f: Callable, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One call of the method -> (derivative, error estimate or None)."""
    try:
        result = study.method.fn(f, x, n=study.order, **study.params)
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if any(phrase in first_line for phrase in UNSUPPORTED_PHRASES):
            raise Unsupported(first_line[:300]) from err
        raise
    return result if isinstance(result, tuple) else (result, None)


def evaluate(study: Study, f: Callable, x: torch.Tensor, log: Callable[[str], None]):
    """The method at every point of x (per-point methods in chunks, with progress)."""
    if not study.method.per_point or x.numel() <= PROGRESS_CHUNK:
        return _call(study, f, x)
    parts, start = [], time.perf_counter()
    for lo in range(0, x.numel(), PROGRESS_CHUNK):
        parts.append(_call(study, f, x[lo:lo + PROGRESS_CHUNK])[0])
        done = lo + parts[-1].numel()
        log(f"  {study.method.name}: {done}/{x.numel()} points ({time.perf_counter() - start:.1f} s)")
    return torch.cat(parts), None


@dataclass(frozen=True)
class Reference:
    hi: np.ndarray
    lo: np.ndarray  # hi + lo is the value (double-double); zeros for float64 references
    kind: str
    uncertainty: np.ndarray | None = None  # per point, for references that are estimates


def reference(study: Study, x64: np.ndarray) -> Reference:
    function, kind, zeros = study.function, study.function.reference_kind, np.zeros_like(x64)
    if kind == "user-derivative":
        return Reference(user_reference(function.user_derivative, x64, study.order), zeros, kind)
    if kind == "float64-richardson":
        value, uncertainty = richardson_reference(function.callable_for(torch.float64, "cpu"),
                                                  x64, study.order)
        return Reference(value, zeros, kind, uncertainty)
    if kind == "float64-autograd":
        f64 = function.callable_for(torch.float64, "cpu")
        return Reference(*autograd64_reference(f64, x64, study.order), kind)
    cache = Path(study.reference.cache_dir) if study.reference.cache_dir else None
    hi, lo, _ = cached_mpmath_reference(function.symbolic(), x64, study.reference.dps, cache,
                                        study.order)
    return Reference(hi, lo, kind)


def richardson_reference(f64: Callable, x64: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Ridders in float64 from two different tableaux, keeping per point the value with the
    smaller error estimate, so one unlucky early stop cannot leak into the reference.
    Its uncertainty is the larger of that estimate and the two tableaux' disagreement."""
    x = torch.tensor(x64, dtype=torch.float64)
    a, err_a = richardson(f64, x, order, h=0.02, con=1.4)
    b, err_b = richardson(f64, x, order, h=0.05, con=2.0)
    value = torch.where(err_a <= err_b, a, b)
    # Below the round-off of the finest difference in the tableau no estimate is trusted.
    with torch.no_grad():
        finest = 0.02 * x.abs().clamp(min=1.0) / 1.4 ** 9
        floor = 4 * torch.finfo(torch.float64).eps * f64(x).abs() / finest ** order
    uncertainty = torch.maximum(torch.minimum(err_a, err_b), (a - b).abs())
    return value.numpy().copy(), torch.maximum(uncertainty, floor).numpy().copy()


def user_reference(derivative: Callable, x64: np.ndarray, order: int) -> np.ndarray:
    """The user's trusted derivative, in float64 (for order 2, differentiated once more by
    float64 autograd: the user vouched for f', not f'')."""
    x = torch.tensor(x64, dtype=torch.float64)
    if order == 1:
        with torch.no_grad():
            return derivative(x).double().numpy().copy()
    return autograd64_reference(derivative, x64, order - 1)[0]


def exclusions(study: Study, x: torch.Tensor, x64: np.ndarray, ref_hi: np.ndarray) -> np.ndarray:
    """Per point: '' (checked), 'domain', 'kink' or 'stencil' (a stencil across a kink)."""
    function = study.function
    domain = function.outside_domain(x64) | ~np.isfinite(ref_hi)
    kink = function.singular_in(x64, x64) & ~domain
    stencil = np.zeros_like(kink)
    if study.method.stencil is not None:
        lo, hi = (t.double().cpu().numpy()
                  for t in study.method.stencil(x, n=study.order, **study.params))
        stencil = function.singular_in(lo, hi) & ~domain & ~kink
    reason = np.full(x64.shape, "", dtype=object)
    for name, mask in (("domain", domain), ("kink", kink), ("stencil", stencil)):
        reason[mask] = name
    return reason


def time_study(study: Study, f_method: Callable, f: Callable,
               x: torch.Tensor) -> tuple[Timing, Timing]:
    """Steady-state time of the method and of the plain (eager) forward pass f(x), same x."""
    threads = study.timing.num_threads or torch.get_num_threads()
    method = time_call(lambda: study.method.fn(f_method, x, n=study.order, **study.params),
                       min_run_time=study.timing.min_run_time, num_threads=threads)

    def forward():
        with torch.no_grad():
            return f(x)

    return method, time_call(forward, min_run_time=study.timing.min_run_time, num_threads=threads)


def timing_columns(method: Timing | None, forward: Timing | None, n_timed: int,
                   first_call_s: float) -> dict:
    """Steady-state columns; time_first_call_s is the very first call (compile, warm-up)."""
    if method is None:
        return {"n_timed": 0, "time_first_call_s": first_call_s}
    return {
        "n_timed": n_timed,
        "time_first_call_s": first_call_s,
        "time_median_s": method.median_s,
        "time_iqr_s": method.iqr_s,
        "time_min_s": method.min_s,
        "time_noisy": method.noisy,
        "n_repeats": method.n_repeats,
        "raw_times_s": list(method.raw_times_s),
        "forward_median_s": forward.median_s,
        "points_per_s": n_timed / method.median_s,
        "ns_per_point": method.median_s / n_timed * 1e9,
        "cost_vs_forward": method.median_s / forward.median_s,
        "num_threads": method.num_threads,
    }


def identity_columns(study: Study, n: int, seed: int, run_dir: Path) -> dict:
    """What ran, where and when: the columns every record has, whatever its status."""
    return {
        "fn": study.function.name, "fn_source": study.function.source,
        "method": study.method.name, "scheme": "", "h": math.nan, "h_mode": "",
        "accuracy_order": math.nan,
        **study.method.describe(study.dtype, study.order, **study.params),
        "order": study.order, "dtype": DTYPE_NAMES[study.dtype], "device": study.device.type,
        "n": n,
        **machine_info(study.device),
        "seed": seed,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
        "notes": "; ".join(study.function.notes()),
    }


def unsupported_outcome(study: Study, n: int, seed: int, run_dir: Path, reason: str) -> Outcome:
    record = {**identity_columns(study, n, seed, run_dir), "status": "unsupported",
              "status_reason": f"{study.method.name}: {reason}"}
    return Outcome(record, pd.DataFrame())


def run_study(study: Study, run_dir: Path, seed: int = 0,
              log: Callable[[str], None] = print) -> Outcome:
    """One function x method x order x dtype x device x grid: values, errors, timing."""
    torch.manual_seed(seed)
    # Each run starts with a cold compiler, so compile time lands in its own first call
    # and Dynamo's per-function recompile limit is never reached silently within a sweep.
    torch.compiler.reset()
    x_full = make_grid(study)
    n = x_full.numel()
    reason = study.method.supports(study.function, study.dtype, study.device, study.order,
                                   **study.params)
    if reason:
        return unsupported_outcome(study, n, seed, run_dir, reason)
    idx = check_indices(n, study.reference.max_points)
    at = torch.as_tensor(idx, device=study.device)
    f = study.function.callable_for(study.dtype, study.device)
    f_method = study.method.prepare(f)
    # Vectorized methods run on the whole grid (that is what is being measured); per-point
    # methods run only on the checked points, which is equivalent point by point.
    x_eval = x_full[at] if study.method.per_point else x_full
    start = synced_timer()
    try:
        df, estimate = evaluate(study, f_method, x_eval, log)
    except Unsupported as err:
        return unsupported_outcome(study, n, seed, run_dir, str(err))
    first_call_s = synced_timer() - start
    if not study.method.per_point:
        df, estimate = df[at], (None if estimate is None else estimate[at])
    x = x_full[at]
    x64 = x.double().cpu().numpy()
    ref = reference(study, x64)
    ref_hi, ref_lo = ref.hi, ref.lo
    why = exclusions(study, x, x64, ref_hi)
    df64 = df.detach().double().cpu().numpy()
    est64 = None if estimate is None else estimate.detach().double().cpu().numpy()
    timings = time_study(study, f_method, f, x_eval) if study.timing.enabled else (None, None)
    record = {
        **identity_columns(study, n, seed, run_dir),
        "n_checked": len(idx), "x_min": float(x64.min()), "x_max": float(x64.max()),
        "reference": ref.kind, "reference_dps": study.reference.dps if ref.kind == "mpmath" else 0,
        "reference_uncertainty_max": math.nan if ref.uncertainty is None
        else float(np.max(ref.uncertainty)),
        "status": "ok", "status_reason": "",
        **summarize(df64, ref_hi, ref_lo, why != "", study.dtype),
        **estimate_calibration(est64, df64, ref_hi, ref_lo, why != ""),
        "n_excluded": int((why != "").sum()),
        **{f"n_excluded_{k}": int((why == k).sum()) for k in ("domain", "kink", "stencil")},
        **timing_columns(*timings, n_timed=x_eval.numel(), first_call_s=first_call_s),
    }
    points = points_table(study, f, x, x64, df64, ref_hi, ref_lo, why, idx, est64)
    if ref.uncertainty is not None:
        points["df_ref_uncertainty"] = ref.uncertainty
    points["triage"] = triage_points(study, x, points, est64, ref.uncertainty)
    record.update(triage.counts(points["triage"].to_numpy()))
    return Outcome(record, points)


def higher_derivative(study: Study, x64: np.ndarray) -> Callable[[int], np.ndarray | None]:
    """m -> |f^(m)(x)|: symbolic when f has a symbolic form, else a float64 central stencil
    (accuracy 2, step eps^(1/(m+2))), which is plenty for an error *model*."""
    expr = study.function.symbolic()
    if expr is not None:
        return lambda m: triage.taylor_term(expr, x64, m)
    f64 = study.function.callable_for(torch.float64, "cpu")
    x = torch.tensor(x64, dtype=torch.float64)
    return lambda m: stencil(f64, x, n=m, order=2).abs().numpy()


def triage_points(study: Study, x: torch.Tensor, points: pd.DataFrame,
                  estimate: np.ndarray | None, ref_uncertainty: np.ndarray | None) -> np.ndarray:
    """Class of each point's error (see harness.triage)."""
    expr, x64, n = study.function.symbolic(), points["x"].to_numpy(), study.order
    eps = torch.finfo(study.dtype).eps
    roundoff = truncation = None
    if study.method.model is not None:
        step, offsets = study.method.model(x, n=n, **study.params)
        step = step.double().cpu().numpy()
        f_abs = np.abs(points["f"].to_numpy()) + np.abs(points["df_ref"].to_numpy()) * np.abs(step) * max(offsets)
        roundoff, truncation = triage.stencil_bounds(higher_derivative(study, x64), f_abs, n,
                                                     eps, step, offsets, weights(n, offsets))
    terms = triage.term_size(expr, x64, n)
    rounding_scale = None if terms is not None else triage.magnitude(
        points["df_ref"].to_numpy(), points["f"].to_numpy(), x64)
    return triage.classify(points["abs_err"].to_numpy(), points["ulp_err"].to_numpy(),
                           points["excluded"].to_numpy(), points["df_ref"].to_numpy(), eps,
                           terms, roundoff, truncation, estimate, ref_uncertainty, rounding_scale)


def points_table(study: Study, f: Callable, x: torch.Tensor, x64: np.ndarray, df64: np.ndarray,
                 ref_hi: np.ndarray, ref_lo: np.ndarray, reason: np.ndarray,
                 idx: np.ndarray, estimate: np.ndarray | None) -> pd.DataFrame:
    with torch.no_grad():
        fx = f(x).double().cpu().numpy()
    abs_err, ulp_err = point_errors(df64, ref_hi, ref_lo, study.dtype)
    table = pd.DataFrame({
        "index": idx, "x": x64, "f": fx, "df": df64, "df_ref": ref_hi, "df_ref_lo": ref_lo,
        "abs_err": abs_err, "ulp_err": ulp_err, "excluded": reason.astype(str),
    })
    if estimate is not None:
        table["err_estimate"] = estimate
    return table
