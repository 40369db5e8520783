"""Symbolic forms evaluated in float64 NumPy, for error *models* (triage, step-size model).

The reference never comes from here (it is evaluated at high precision, harness.study.
reference); these values only size error bounds, so float64 is plenty. One evaluator and
one memoized differentiator, shared by every model.
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from harness.functions.nodes import x_symbol
from harness.lazy import sympy as sp

# Symbolic derivatives beyond this size are too slow to lambdify for an error model.
MAX_OPS = 4000
# Functions that NumPy's printer cannot vectorize but scipy.special can (the rest falls
# back to mpmath point by point in `evaluate`).
NEEDS_SCIPY = ("erf", "erfc", "gamma", "loggamma", "besselj")


# Differentiating and lambdifying are the slow part, and a sweep asks for the same few
# expressions again and again: memoize these pure functions of the expression.
@functools.lru_cache(maxsize=512)
def _vectorized(expr: sp.Expr):
    # scipy only for what NumPy has no ufunc for: importing it costs ~0.2 s a process.
    scipy_only = expr.has(*(getattr(sp, name) for name in NEEDS_SCIPY))
    modules = ["scipy", "numpy"] if scipy_only else ["numpy"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sp.lambdify([x_symbol()], expr, modules=modules)


@functools.lru_cache(maxsize=512)
def _pointwise(expr: sp.Expr):
    return sp.lambdify([x_symbol()], expr, modules="mpmath")


def _real(f, v: float) -> float:
    try:
        value = complex(f(v))
    except (ZeroDivisionError, ValueError, TypeError):
        return math.nan
    return value.real if value.imag == 0 else math.nan


def evaluate(expr: sp.Expr, x: np.ndarray) -> np.ndarray:
    """expr at every x, float64: vectorized (scipy/numpy), else point by point (mpmath).

    The fallback covers what NumPy's printer cannot vectorize (Piecewise corner cases)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        try:
            return np.broadcast_to(np.asarray(_vectorized(expr)(x), dtype=np.float64),
                                   x.shape).copy()
        except (TypeError, ValueError, NameError, ImportError):
            f = _pointwise(expr)
            return np.array([_real(f, v) for v in x.ravel()], dtype=np.float64).reshape(x.shape)


@functools.lru_cache(maxsize=512)
def derivative(expr: sp.Expr, order: int) -> sp.Expr | None:
    """d^order expr / dx^order, or None when it is too large to evaluate affordably."""
    result = sp.diff(expr, x_symbol(), order) if order else expr
    return None if sp.count_ops(result) > MAX_OPS else result
