"""The complex step: Im f(x + ih) / h, free of subtractive cancellation."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from harness.dtypes import facts
from harness.methods.base import Fn, scale


@dataclass
class ComplexStepParams:
    # Imaginary step, times max(1, |x|). No subtraction happens, so it can be tiny.
    h: float = 1e-20


def complex_step(f: Fn, x: torch.Tensor, n: int = 1, h: float = 1e-20) -> torch.Tensor:
    """Im f(x + i*h) / h: no subtractive cancellation, so near machine precision for any
    tiny h, for f analytic and implemented for complex input."""
    step = h * scale(x)
    with torch.no_grad():
        return f(torch.complex(x, step).to(facts(x.dtype).complex)).imag / step


def supports(function, dtype, device, n, **_) -> Optional[str]:
    if n != 1:
        return "complex step has no cancellation-free second derivative"
    if facts(dtype).complex is None:
        return f"torch has no complex dtype with {dtype} parts for the complex step"
    if not function.analytic:
        return (f"{function.name} is not analytic (or not built only from analytic pieces), "
                f"so Im f(x+ih)/h is not its derivative")
    return None


def check(h: float = 1e-20) -> Optional[str]:
    return None if math.isfinite(h) and h > 0 else f"method.h must be a finite number > 0, got {h}"


def describe(dtype, n, h: float = 1e-20) -> dict:
    return {"h": h, "h_mode": "imaginary: h*max(1,|x|)"}
