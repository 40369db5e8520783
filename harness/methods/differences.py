"""Finite differences: the classic quotients, high-order central stencils, and Ridders'
extrapolation. All divide by the step as represented in the dtype (base.combine)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import torch

from harness.lazy import sympy as sp
from harness.methods.base import Fn, check_h, combine, represented_step, scale

SCHEMES = ("central", "forward", "backward")
STENCIL_ACCURACIES = (2, 4, 6, 8)
# Offsets k of the stencil sum_k w_k f(x + k h), per (scheme, derivative order).
FINITE_OFFSETS = {("central", 1): [-1, 1], ("forward", 1): [0, 1], ("backward", 1): [-1, 0],
                  ("central", 2): [-1, 0, 1], ("forward", 2): [0, 1, 2],
                  ("backward", 2): [-2, -1, 0]}


# --- finite: the difference quotient ------------------------------------------------------

@dataclass
class FiniteParams:
    # central | forward | backward
    scheme: str = "central"
    # Absolute step used at every x; None derives it from the dtype (see default_step).
    h: Optional[float] = None


def accuracy_of(scheme: str) -> int:
    """Accuracy order p of a scheme: truncation error ~ h^p."""
    return 2 if scheme == "central" else 1


def _step_power(scheme: str, n: int) -> float:
    """Truncation h^p against round-off eps/h^n is balanced at h ~ eps^(1/(p+n))."""
    return 1 / (accuracy_of(scheme) + n)


def default_step(x: torch.Tensor, scheme: str, n: int = 1) -> torch.Tensor:
    """eps^(1/3) for central first differences (error ~ h^2 + eps/h), eps^(1/2) for
    one-sided ones (h + eps/h), eps^(1/4) and eps^(1/3) for second differences;
    times max(1, |x|)."""
    return torch.finfo(x.dtype).eps ** _step_power(scheme, n) * scale(x)


def _finite_step(x: torch.Tensor, scheme: str, n: int, h: Optional[float]) -> torch.Tensor:
    return default_step(x, scheme, n) if h is None else torch.full_like(x, h)


def finite(f: Fn, x: torch.Tensor, n: int = 1, scheme: str = "central",
           h: Optional[float] = None) -> torch.Tensor:
    """Difference quotient of f, first or second derivative, central or one-sided.

    Dividing by the step as actually represented (`represented_step`), rather than by the nominal
    h, removes the representation error of h itself; what remains is the method's own
    truncation and round-off. If x + h rounds back to x the quotient is 0/0 and the point
    is counted as non-finite, which is the truth about that step in that dtype.
    """
    with torch.no_grad():
        return combine(f, x, _finite_step(x, scheme, n, h), FINITE_OFFSETS[(scheme, n)], n)


def finite_reach(x: torch.Tensor, n: int = 1, scheme: str = "central", h: Optional[float] = None):
    step, offsets = _finite_step(x, scheme, n, h), FINITE_OFFSETS[(scheme, n)]
    return x + min(offsets) * step, x + max(offsets) * step


def check_finite(scheme: str = "central", h: Optional[float] = None) -> Optional[str]:
    if scheme not in SCHEMES:
        return f"unknown method.scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}"
    return check_h(h)


def _power_text(power: float) -> str:
    return str(Fraction(power).limit_denominator(20))


def describe_finite(dtype: torch.dtype, n: int = 1, scheme: str = "central",
                    h: Optional[float] = None) -> dict:
    if h is not None:
        return {"scheme": scheme, "h": float(h), "h_mode": "absolute"}
    base = float(default_step(torch.ones(1, dtype=dtype), scheme, n)[0])
    return {"scheme": scheme, "h": base,
            "h_mode": f"auto: eps^({_power_text(_step_power(scheme, n))})*max(1,|x|)"}


def finite_model(x: torch.Tensor, n: int = 1, scheme: str = "central", h: Optional[float] = None):
    offsets = FINITE_OFFSETS[(scheme, n)]
    return represented_step(x, _finite_step(x, scheme, n, h), offsets), offsets


# --- stencil: central stencils of accuracy 2..8 --------------------------------------------

@dataclass
class StencilParams:
    # Accuracy order of the central stencil: 2, 4, 6 or 8 (error ~ h^accuracy).
    accuracy: int = 4
    # Absolute step; None gives eps^(1/(accuracy + n)) for derivative order n.
    h: Optional[float] = None


def stencil_offsets(accuracy: int, n: int) -> list[int]:
    half = accuracy // 2 + (n - 1) // 2
    return list(range(-half, half + 1))


def _stencil_step(x: torch.Tensor, accuracy: int, n: int, h: Optional[float]) -> torch.Tensor:
    """Theory's step h ~ eps^(1/(accuracy + n)), balancing h^accuracy truncation against
    eps/h^n round-off. Not scaled by |x|: the stencil is wide (up to 4h each side) and
    truncation depends on f's derivatives, not on x; the exact-step trick in `combine`
    already removes the representation error that |x| scaling guards against."""
    value = torch.finfo(x.dtype).eps ** (1 / (accuracy + n)) if h is None else h
    return torch.full_like(x, value)


def stencil(f: Fn, x: torch.Tensor, n: int = 1, accuracy: int = 4,
            h: Optional[float] = None) -> torch.Tensor:
    """Central stencil of accuracy order 2, 4, 6 or 8 (weights from Fornberg's algorithm)."""
    with torch.no_grad():
        return combine(f, x, _stencil_step(x, accuracy, n, h), stencil_offsets(accuracy, n), n)


def stencil_reach(x: torch.Tensor, n: int = 1, accuracy: int = 4, h: Optional[float] = None):
    reach = max(stencil_offsets(accuracy, n)) * _stencil_step(x, accuracy, n, h)
    return x - reach, x + reach


def check_stencil(accuracy: int = 4, h: Optional[float] = None) -> Optional[str]:
    if accuracy not in STENCIL_ACCURACIES:
        return (f"unknown method.accuracy {accuracy}; choose one of: "
                f"{', '.join(map(str, STENCIL_ACCURACIES))}")
    return check_h(h)


def describe_stencil(dtype: torch.dtype, n: int = 1, accuracy: int = 4,
                     h: Optional[float] = None) -> dict:
    base = float(_stencil_step(torch.ones(1, dtype=dtype), accuracy, n, h)[0])
    mode = "absolute" if h is not None else f"auto: eps^(1/{accuracy + n})"
    return {"scheme": "central", "h": base, "h_mode": mode, "accuracy_order": accuracy}


def stencil_model(x: torch.Tensor, n: int = 1, accuracy: int = 4, h: Optional[float] = None):
    offsets = stencil_offsets(accuracy, n)
    return represented_step(x, _stencil_step(x, accuracy, n, h), offsets), offsets


# --- richardson: Ridders' extrapolation --------------------------------------------------------

@dataclass
class RichardsonParams:
    # Initial (largest) step, times max(1, |x|); the tableau shrinks it by `con` per column.
    # 0.02 measured best on sin, swish and gelu over [-10, 10]: larger first steps let
    # accidental agreement in the tableau stop it early on a poor entry.
    h: float = 0.02
    # Step reduction factor between columns (Ridders' 1.4).
    con: float = 1.4
    # Largest tableau size.
    ntab: int = 10


def _central(n: int) -> list[int]:
    return [-1, 1] if n == 1 else [-1, 0, 1]


def _tableau_row(f: Fn, x, step, n, previous, con, best, err, active):
    """One row of Ridders' tableau: extrapolate against the previous row; keep per point
    the entry with the smallest error estimate while the point is still active."""
    row, fac = [combine(f, x, step, _central(n), n)], con * con
    for j in range(1, len(previous) + 1):
        row.append((row[j - 1] * fac - previous[j - 1]) / (fac - 1))
        fac *= con * con
        errt = torch.maximum((row[j] - row[j - 1]).abs(), (row[j] - previous[j - 1]).abs())
        better = active & (errt <= err)
        best, err = torch.where(better, row[j], best), torch.where(better, errt, err)
    return row, best, err


def richardson(f: Fn, x: torch.Tensor, n: int = 1, h: float = 0.02, con: float = 1.4,
               ntab: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridders' method, vectorized: a tableau of central differences with steps h/con^i,
    extrapolated to h -> 0 (error series in h^2). Returns the best entry and its error
    estimate per point; a point stops improving once its error grows past twice the best."""
    step = h * scale(x)
    with torch.no_grad():
        previous = [combine(f, x, step, _central(n), n)]
        best, active = previous[0].clone(), torch.ones_like(x, dtype=torch.bool)
        err = torch.full_like(x, torch.finfo(x.dtype).max)
        for _ in range(1, ntab):
            step = step / con
            row, best, err = _tableau_row(f, x, step, n, previous, con, best, err, active)
            active &= (row[-1] - previous[-1]).abs() < 2 * err
            previous = row
            if not bool(active.any()):
                break
    return best, err


def richardson_reach(x: torch.Tensor, n: int = 1, h: float = 0.02, **_):
    reach = h * scale(x)
    return x - reach, x + reach


def check_richardson(h: float = 0.02, con: float = 1.4, ntab: int = 10) -> Optional[str]:
    if not (math.isfinite(h) and h > 0):
        return f"method.h must be a finite number > 0, got {h}"
    if not (math.isfinite(con) and con > 1):
        return f"method.con must be a finite number > 1, got {con}"
    if ntab < 2:
        return f"method.ntab must be >= 2, got {ntab}"
    return None


def richardson_model(x: torch.Tensor, n: int = 1, h: float = 0.02, con: float = 1.4,
                     ntab: int = 10):
    """The tableau's finest difference: it bounds the round-off that extrapolation carries."""
    step = h * scale(x) / con ** (ntab - 1)
    return represented_step(x, step, _central(n)), _central(n)


def describe_richardson(dtype, n, h: float = 0.02, **_) -> dict:
    return {"scheme": "central", "h": h, "h_mode": "initial: h*max(1,|x|)"}
