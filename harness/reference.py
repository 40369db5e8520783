"""High-precision reference derivatives, at the exact dtype-rounded grid values.

The symbolic derivative is evaluated point by point with mpmath at `dps` digits, then
checked against a second evaluation at `dps - 20` digits; points whose two values
disagree beyond double-double precision are re-evaluated at 4*dps digits, so
cancellation inside the formula cannot leak into the reference. A point where the
formula is 0/0 (a removable singularity such as sinc at 0) takes the symbolic limit.

Each value is returned as a double-double (hi + lo, |lo| <= ulp(hi)/2): errors of
float64 methods are then measured to far below one ULP.

Functions with no symbolic form fall back to float64 autograd (labelled as such).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import mpmath
import numpy as np
import sympy as sp
import torch

from harness.methods import autograd
from harness.nodes import X_SYMBOL
from harness.results import atomic_write

# 2^-106: the relative precision a double-double can carry.
AGREEMENT = mpmath.mpf(2) ** -106
CACHE_VERSION = "1"


def _evaluate(fn: Callable, d: sp.Expr, x: float, dps: int):
    with mpmath.workdps(dps):
        try:
            value = fn(mpmath.mpf(x))
        except (ZeroDivisionError, ValueError):
            value = mpmath.nan
        if not mpmath.isfinite(value):
            # 0/0 at a removable singularity: the derivative is the limit there.
            limit = sp.limit(d, X_SYMBOL, sp.Rational(x))
            value = mpmath.mpf(sp.N(limit, dps)) if limit.is_finite else mpmath.nan
        return +value


def _precise(fn: Callable, d: sp.Expr, x: float, dps: int):
    value = _evaluate(fn, d, x, dps)
    check = _evaluate(fn, d, x, dps - 20)
    if mpmath.isfinite(value) and abs(value - check) > AGREEMENT * abs(value):
        value = _evaluate(fn, d, x, 4 * dps)
    return value


def _split(value) -> tuple[float, float]:
    """mpf -> (hi, lo) with hi the nearest float64 and lo the rest, rounded. A complex
    value (sqrt' at x < 0) is outside the real function's domain: nan."""
    if isinstance(value, mpmath.mpc) or not mpmath.isfinite(value):
        return float("nan"), 0.0
    hi = float(value)
    with mpmath.workdps(60):
        lo = float(value - mpmath.mpf(hi))
    return hi, lo


def mpmath_reference(expr: sp.Expr, x: np.ndarray, dps: int = 50,
                     n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """d^n expr/dx^n at every x (float64 values, exact), as double-double arrays (hi, lo)."""
    d = sp.diff(expr, X_SYMBOL, n)
    fn = sp.lambdify([X_SYMBOL], d, modules="mpmath")
    pairs = [_split(_precise(fn, d, float(v), dps)) for v in x]
    hi, lo = (np.array(column, dtype=np.float64) for column in zip(*pairs)) if pairs \
        else (np.empty(0), np.empty(0))
    return hi, lo


def autograd64_reference(f64: Callable, x: np.ndarray, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Fallback for functions with no symbolic form: vectorized float64 autograd on the CPU."""
    grad = autograd(f64, torch.tensor(x, dtype=torch.float64), n)
    return grad.numpy().copy(), np.zeros_like(x)


def cache_key(expr: sp.Expr, x: np.ndarray, dps: int, n: int = 1) -> str:
    digest = hashlib.sha256()
    for part in (CACHE_VERSION, sp.srepr(expr), str(dps), str(n)):
        digest.update(part.encode())
    digest.update(np.ascontiguousarray(x, dtype=np.float64).tobytes())
    return digest.hexdigest()[:32]


def cached_mpmath_reference(expr: sp.Expr, x: np.ndarray, dps: int, cache_dir: Path | None,
                            n: int = 1) -> tuple[np.ndarray, np.ndarray, bool]:
    """mpmath_reference, read from / written to `cache_dir` when given. Returns (hi, lo, hit)."""
    path = None if cache_dir is None else Path(cache_dir) / f"{cache_key(expr, x, dps, n)}.npz"
    if path is not None and path.exists():
        with np.load(path) as stored:
            return stored["hi"], stored["lo"], True
    hi, lo = mpmath_reference(expr, x, dps, n)
    if path is not None:
        atomic_write(path, lambda tmp: np.savez(tmp, hi=hi, lo=lo), suffix=".npz")
    return hi, lo, False
