"""Peer tools as baselines: scipy.differentiate.derivative and numdifftools.Derivative.

Both work on NumPy arrays (CPU, float32/float64) and report their own error estimates."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from harness.dtypes import facts
from harness.methods.base import Fn
from harness.methods.differences import stencil_offsets

SCIPY_MAXITER, SCIPY_STEP_FACTOR = 10, 2.0  # scipy.differentiate.derivative's defaults


def _numpy_fn(f: Fn, dtype: torch.dtype) -> Callable[[np.ndarray], np.ndarray]:
    def g(values: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return f(torch.as_tensor(np.asarray(values), dtype=dtype)).numpy()
    return g


def cpu_float(function, dtype, device, n, **_) -> Optional[str]:
    if device.type != "cpu":
        return "runs on NumPy arrays: CPU only"
    if facts(dtype).half:
        return f"does not support {dtype}"
    if n != 1:
        return "first derivatives only in this harness"
    return None


@dataclass
class ScipyParams:
    # scipy.differentiate.derivative's own defaults: maximum step, and its stencil's
    # accuracy order (scipy's `order` argument).
    initial_step: float = 0.5
    accuracy: int = 8


def scipy_derivative(f: Fn, x: torch.Tensor, n: int = 1, initial_step: float = 0.5,
                     accuracy: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """scipy.differentiate.derivative: adaptive, vectorized, with its own error estimate."""
    from scipy.differentiate import derivative

    result = derivative(_numpy_fn(f, x.dtype), x.cpu().numpy(), initial_step=initial_step,
                        order=accuracy)
    return torch.as_tensor(result.df, dtype=x.dtype), torch.as_tensor(result.error, dtype=x.dtype)


def scipy_model(x: torch.Tensor, n: int = 1, initial_step: float = 0.5, accuracy: int = 8):
    """For the triage: scipy's finest step and an order-`accuracy` central stencil bound
    the round-off its adaptive extrapolation can carry."""
    finest = initial_step / SCIPY_STEP_FACTOR ** SCIPY_MAXITER
    return torch.full_like(x, finest), stencil_offsets(accuracy, n)


def scipy_reach(x: torch.Tensor, n: int = 1, initial_step: float = 0.5, **_):
    return x - initial_step, x + initial_step


def describe_scipy(dtype, n, initial_step: float = 0.5, accuracy: int = 8) -> dict:
    return {"scheme": "central", "h": initial_step, "h_mode": "adaptive: max step initial_step",
            "accuracy_order": accuracy}


def numdifftools_supports(function, dtype, device, n, **params) -> Optional[str]:
    if importlib.util.find_spec("numdifftools") is None:
        return "numdifftools is not installed: pip install -e '.[peers]'"
    return cpu_float(function, dtype, device, n, **params)


def numdifftools_derivative(f: Fn, x: torch.Tensor, n: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """numdifftools.Derivative with its defaults (adaptive steps, Richardson extrapolation)."""
    import numdifftools

    result = numdifftools.Derivative(_numpy_fn(f, x.dtype), n=n, full_output=True)(x.cpu().numpy())
    return (torch.as_tensor(result.estimate, dtype=x.dtype),
            torch.as_tensor(result.error_estimate, dtype=x.dtype))


def _numdifftools_steps(x: torch.Tensor, n: int) -> np.ndarray:
    """|steps| numdifftools' default step generator takes at each x: (n_steps, len(x))."""
    import numdifftools

    steps = numdifftools.Derivative(np.sin).step(x.double().cpu().numpy(), method="central",
                                                 n=n, order=2)
    return np.abs(np.stack(list(steps)))


def numdifftools_reach(x: torch.Tensor, n: int = 1, **_):
    """The widest step numdifftools takes at each x."""
    reach = torch.as_tensor(_numdifftools_steps(x, n).max(axis=0), dtype=torch.float64)
    return x.double().cpu() - reach, x.double().cpu() + reach


def numdifftools_model(x: torch.Tensor, n: int = 1, **_):
    """For the triage: its finest central difference bounds the round-off it carries."""
    finest = torch.as_tensor(_numdifftools_steps(x, n).min(axis=0), dtype=x.dtype)
    return finest, [-1, 1] if n == 1 else [-1, 0, 1]


def describe_numdifftools(dtype, n) -> dict:
    return {"scheme": "central", "h_mode": "adaptive: numdifftools default"}
