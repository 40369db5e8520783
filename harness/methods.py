"""Ways of computing f'(x), one registered pure function each: (f, x, **params) -> f'(x).

A method sees only the callable and the grid tensor (already in the run's dtype and on
its device); it does no I/O, logging or device choice. Its parameters are a small
dataclass whose defaults become the method's Hydra config, and its `check` returns a
one-line error for parameters it cannot use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from harness.registry import Registry

Fn = Callable[[torch.Tensor], torch.Tensor]
SCHEMES = ("central", "forward", "backward")


@dataclass
class NoParams:
    """Parameters of a method that takes none."""


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable[..., torch.Tensor]
    # Dataclass of parameters with defaults; its fields become `method.<field>` overrides.
    params: type = NoParams
    check: Callable[..., Optional[str]] = lambda **_: None
    # (x, **params) -> (lo, hi): the interval of x values the method evaluates f at, so a
    # stencil that crosses a kink, pole or domain edge is excluded and counted.
    stencil: Optional[Callable[..., tuple[torch.Tensor, torch.Tensor]]] = None
    # Per-point methods cost one Python-level call per x: the runner may evaluate and time
    # them on a subsample of a large grid (and says so in the record).
    per_point: bool = False
    # (dtype, **params) -> record fields such as scheme, h, h_mode.
    describe: Callable[..., dict] = lambda dtype, **_: {}


METHODS: Registry[Method] = Registry("method")


# --- reverse-mode autograd over the whole grid ------------------------------------------

def autograd(f: Fn, x: torch.Tensor) -> torch.Tensor:
    """One vectorized reverse pass: torch.autograd.grad(y, x, grad_outputs=ones_like(y)).

    For an elementwise f the Jacobian is diagonal, so the vector-Jacobian product with
    ones is exactly f'(x) at every point.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = f(x)
        if not y.requires_grad:  # f does not depend on x at all
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y),
                                      materialize_grads=True)
    return grad


METHODS.add("autograd", Method("autograd", autograd))


# --- the tutorial's per-point loop -------------------------------------------------------

def loop(f: Fn, x: torch.Tensor) -> torch.Tensor:
    """The tutorial's loop: a fresh nn.Parameter per point, y.backward(), read .grad."""
    out = torch.empty_like(x)
    with torch.enable_grad():
        for i in range(x.numel()):
            point = nn.Parameter(x[i].detach().clone())
            f(point).backward()
            out[i] = point.grad if point.grad is not None else 0.0
    return out


METHODS.add("loop", Method("loop", loop, per_point=True))


# --- finite differences ------------------------------------------------------------------

@dataclass
class FiniteParams:
    # central | forward | backward
    scheme: str = "central"
    # Absolute step used at every x; None derives it from the dtype (see default_step).
    h: Optional[float] = None


def default_step(x: torch.Tensor, scheme: str) -> torch.Tensor:
    """Step that balances truncation and round-off: eps^(1/3) for central differences
    (error ~ h^2 + eps/h), eps^(1/2) for one-sided ones (h + eps/h), times max(1, |x|)."""
    eps = torch.finfo(x.dtype).eps
    base = eps ** (1 / 3) if scheme == "central" else eps ** 0.5
    return base * x.abs().clamp(min=1.0)


def finite_stencil(x: torch.Tensor, scheme: str = "central", h: Optional[float] = None):
    """The points (lo, hi) the difference quotient evaluates f at, rounded to x's dtype."""
    step = default_step(x, scheme) if h is None else torch.full_like(x, h)
    lo = x if scheme == "forward" else x - step
    hi = x if scheme == "backward" else x + step
    return lo, hi


def finite(f: Fn, x: torch.Tensor, scheme: str = "central", h: Optional[float] = None):
    """Difference quotient (f(hi) - f(lo)) / (hi - lo) with hi, lo from `finite_stencil`.

    Dividing by the step as actually represented, (x + h) - x, rather than by the nominal
    h, removes the representation error of h itself; what remains is the method's own
    truncation and round-off. If x + h rounds back to x the quotient is 0/0 and the point
    is counted as non-finite, which is the truth about that step in that dtype.
    """
    lo, hi = finite_stencil(x, scheme, h)
    with torch.no_grad():
        return (f(hi) - f(lo)) / (hi - lo)


def check_finite(scheme: str = "central", h: Optional[float] = None) -> Optional[str]:
    if scheme not in SCHEMES:
        return f"unknown method.scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}"
    if h is not None and not (math.isfinite(h) and h > 0):
        return f"method.h must be a finite number > 0 (or null for the dtype's default), got {h}"
    return None


def describe_finite(dtype: torch.dtype, scheme: str = "central", h: Optional[float] = None) -> dict:
    if h is not None:
        return {"scheme": scheme, "h": float(h), "h_mode": "absolute"}
    power = "1/3" if scheme == "central" else "1/2"
    base = float(default_step(torch.ones(1, dtype=dtype), scheme)[0])
    return {"scheme": scheme, "h": base, "h_mode": f"auto: eps^({power})*max(1,|x|)"}


METHODS.add("finite", Method("finite", finite, FiniteParams, check_finite, finite_stencil,
                             describe=describe_finite))
