"""High-precision reference derivatives, at the exact dtype-rounded grid values.

The symbolic derivative is evaluated point by point with mpmath at `dps` digits, then
checked against a second evaluation at `dps - 20` digits; points whose two values
disagree beyond double-double precision are re-evaluated at 4*dps digits, so
cancellation inside the formula cannot leak into the reference. A point where the
formula is 0/0 (a removable singularity such as sinc at 0) takes the symbolic limit.

Each value is returned as a double-double (hi + lo, |lo| <= ulp(hi)/2): errors of
float64 methods are then measured to far below one ULP.

Functions with no symbolic form fall back to float64 computations, labelled as such:
float64 autograd (torch.nn classes with no closed form, networks), float64 Ridders from two
tableaux with a per-point uncertainty (user code, whose backward may be what is under
test), or the user's own trusted derivative.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import mpmath
import numpy as np
import sympy as sp
import torch

from harness.atomic import atomic_write
from harness.functions.nodes import X_SYMBOL
from harness.methods.autodiff import autograd
from harness.methods.differences import richardson

@dataclass(frozen=True)
class Reference:
    """The true derivative at the checked points: hi + lo (a double-double; lo is zero
    for float64 references), what backs it, and its per-point uncertainty where it is an
    estimate."""

    hi: np.ndarray
    lo: np.ndarray
    kind: str
    uncertainty: np.ndarray | None = None
    dps: int = 0


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


def function_reference(function, x64: np.ndarray, order: int, dps: int,
                       cache_dir: Path | None) -> Reference:
    """The reference an elementwise function's kind calls for (Function.reference_kind)."""
    kind, zeros = function.reference_kind, np.zeros_like(x64)
    if kind == "user-derivative":
        return Reference(user_reference(function.user_derivative, x64, order), zeros, kind)
    f64 = function.callable_for(torch.float64, "cpu")
    if kind == "float64-richardson":
        value, uncertainty = richardson_reference(f64, x64, order)
        return Reference(value, zeros, kind, uncertainty)
    if kind == "float64-autograd":
        return Reference(*autograd64_reference(f64, x64, order), kind)
    hi, lo, _ = cached_mpmath_reference(function.symbolic(), x64, dps, cache_dir, order)
    return Reference(hi, lo, kind, dps=dps)
