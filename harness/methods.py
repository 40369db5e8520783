"""Ways of computing f'(x) (or f''(x)), one registered pure function each.

Every method is `fn(f, x, n=1, **params)`, n being the derivative order: it sees only
the callable and the grid tensor (already in the run's dtype and on its device) and
returns the derivative as a tensor, or a `(derivative, error_estimate)` pair when the method estimates its own
error. It does no I/O, logging or device choice. Its parameters are a small dataclass
whose defaults become the method's Hydra config (`method.<field>=...`); `check` returns a
one-line error for parameters it cannot use, and `supports` says why a function, dtype,
device or derivative order cannot be done (the run is then recorded as unsupported).
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import reduce
from typing import Callable, Optional

import numpy as np
import sympy as sp
import torch
from torch import nn

from harness.registry import Registry

Fn = Callable[[torch.Tensor], torch.Tensor]
SCHEMES = ("central", "forward", "backward")
STENCIL_ORDERS = (2, 4, 6, 8)
HALF = (torch.float16, torch.bfloat16)


@dataclass
class NoParams:
    """Parameters of a method that takes none."""


def _no_check(**_) -> Optional[str]:
    return None


def _supports_all(function, dtype, device, n, **_) -> Optional[str]:
    return None


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable[..., object]
    params: type = NoParams
    check: Callable[..., Optional[str]] = _no_check
    # (function, dtype, device, n, **params) -> reason it cannot run, or None.
    supports: Callable[..., Optional[str]] = _supports_all
    # (x, n, **params) -> (lo, hi): the interval of x values the method evaluates f at,
    # so a stencil that crosses a kink, pole or domain edge is excluded and counted.
    stencil: Optional[Callable[..., tuple[torch.Tensor, torch.Tensor]]] = None
    # Per-point methods cost one Python-level call per x: the runner may evaluate and time
    # them on a subsample of a large grid (and says so in the record).
    per_point: bool = False
    # (dtype, n, **params) -> record fields such as scheme, h, h_mode.
    describe: Callable[..., dict] = lambda dtype, n, **_: {}
    # (x, n, **params) -> (step, offsets): the difference stencil sum_k w_k f(x + k*step),
    # for methods that are one; the failure triage models their round-off and truncation.
    model: Optional[Callable[..., tuple[torch.Tensor, list[int]]]] = None
    # One line for docs tables; the fn's docstring's first sentence when empty.
    summary: str = ""
    # f -> the callable the method is given, built once per run outside the timed region
    # (torch.compile: users compile once and call many times, so that is what is timed).
    prepare: Callable[[Fn], Fn] = lambda f: f


METHODS: Registry[Method] = Registry("method")


def _order_at_most(limit: int, why: str) -> Callable[..., Optional[str]]:
    def supports(function, dtype, device, n, **_) -> Optional[str]:
        return None if n <= limit else why
    return supports


def _ones_like(x: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(x)


def _scale(x: torch.Tensor) -> torch.Tensor:
    """max(1, |x|): steps are relative for large |x| and absolute near 0."""
    return x.abs().clamp(min=1.0)


# --- reverse mode -------------------------------------------------------------------------

def _grad(y: torch.Tensor, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    if not y.requires_grad:  # y does not depend on x
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(y, x, grad_outputs=_ones_like(y), create_graph=create_graph,
                                  materialize_grads=True)
    return grad


def autograd(f: Fn, x: torch.Tensor, n: int = 1) -> torch.Tensor:
    """Vectorized reverse mode: torch.autograd.grad(y, x, grad_outputs=ones_like(y)).

    For an elementwise f the Jacobian is diagonal, so the vector-Jacobian product with
    ones is exactly f'(x) at every point; order 2 differentiates that again
    (create_graph=True, double backward).
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        grad = f(x)
        for k in range(n):
            grad = _grad(grad, x, create_graph=k + 1 < n)
    return grad.detach()


METHODS.add("autograd", Method("autograd", autograd))


def backward(f: Fn, x: torch.Tensor, n: int = 1) -> torch.Tensor:
    """y.backward(ones_like(y)) on a leaf x, then read x.grad: the same vector-Jacobian
    product as autograd.grad, through the accumulating API (order 2: create_graph=True)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = f(x)
        for _ in range(n - 1):
            y = _grad(y, x, create_graph=True)
        if not y.requires_grad:
            return torch.zeros_like(x)
        y.backward(_ones_like(y))
    return x.grad if x.grad is not None else torch.zeros_like(x)


METHODS.add("backward", Method("backward", backward))


def loop(f: Fn, x: torch.Tensor, n: int = 1) -> torch.Tensor:
    """The tutorial's loop: a fresh nn.Parameter per point, y.backward(), read .grad
    (order 2: autograd.grad with create_graph=True, then backward() on the result)."""
    out = torch.empty_like(x)
    with torch.enable_grad():
        for i in range(x.numel()):
            point = nn.Parameter(x[i].detach().clone())
            y = f(point)
            if n == 2:
                y = _grad(y, point, create_graph=True)
            if y.requires_grad:
                y.backward()
            out[i] = point.grad if point.grad is not None else 0.0
    return out


METHODS.add("loop", Method("loop", loop, per_point=True))


# --- forward mode and torch.func ------------------------------------------------------------

def forward_ad(f: Fn, x: torch.Tensor, n: int = 1) -> torch.Tensor:
    """Forward mode: torch.func.jvp with tangent ones (nested for order 2)."""
    def first(z: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(f, (z,), (_ones_like(z),))[1]

    derivative = first if n == 1 else (lambda z: torch.func.jvp(first, (z,), (_ones_like(z),))[1])
    return derivative(x.detach())


METHODS.add("forward_ad", Method("forward_ad", forward_ad))


def vmap_grad(f: Fn, x: torch.Tensor, n: int = 1) -> torch.Tensor:
    """torch.func.vmap(torch.func.grad(f)): a scalar gradient, batched over the grid."""
    derivative = reduce(lambda g, _: torch.func.grad(g), range(n), f)
    return torch.func.vmap(derivative)(x.detach())


METHODS.add("vmap_grad", Method("vmap_grad", vmap_grad))


def compile_function(f: Fn) -> Fn:
    """torch.compile(f) as a whole graph with static shapes: inductor generates fused
    kernels for the forward and, through AOTAutograd, for the backward. Compilation
    happens on the first call, which the runner records as time_first_call_s."""
    return torch.compile(f, fullgraph=True, dynamic=False)


METHODS.add("compiled", Method(
    "compiled", autograd, prepare=compile_function,
    summary="torch.compile(f) (inductor: fused forward and backward kernels) differentiated "
            "by autograd; compilation is timed apart, as the first call",
    supports=_order_at_most(1, "torch.compile's AOTAutograd does not support double backward")))


# --- finite differences ---------------------------------------------------------------------

def weights(n: int, offsets: list[int]) -> list[float]:
    """Exact finite-difference weights (Fornberg, via sympy) for the given integer offsets."""
    return [float(w) for w in sp.finite_diff_weights(n, offsets, 0)[n][-1]]


def represented_step(x: torch.Tensor, h: torch.Tensor, offsets: list[int]) -> torch.Tensor:
    """The step the floating-point grid really takes from x. Measured on the side the
    stencil reaches that is away from zero (where the spacing is coarser), so x + k*step
    is exact on the side towards zero as well; a one-sided stencil uses its own side."""
    if min(offsets) >= 0:
        return (x + h) - x
    if max(offsets) <= 0:
        return x - (x - h)
    return (x.abs() + h) - x.abs()


def _combine(f: Fn, x: torch.Tensor, step: torch.Tensor, offsets: list[int], n: int):
    """sum_k w_k f(x + k*step) / step^n, with step as actually represented in x's dtype."""
    step = represented_step(x, step, offsets)
    total = sum(w * f(x + k * step) for w, k in zip(weights(n, offsets), offsets) if w != 0)
    return total / step**n


@dataclass
class FiniteParams:
    # central | forward | backward
    scheme: str = "central"
    # Absolute step used at every x; None derives it from the dtype (see default_step).
    h: Optional[float] = None


FINITE_OFFSETS = {("central", 1): [-1, 1], ("forward", 1): [0, 1], ("backward", 1): [-1, 0],
                  ("central", 2): [-1, 0, 1], ("forward", 2): [0, 1, 2],
                  ("backward", 2): [-2, -1, 0]}


def _step_power(scheme: str, n: int) -> float:
    """Truncation h^p against round-off eps/h^n is balanced at h ~ eps^(1/(p+n))."""
    accuracy = 2 if scheme == "central" else 1
    return 1 / (accuracy + n)


def default_step(x: torch.Tensor, scheme: str, n: int = 1) -> torch.Tensor:
    """eps^(1/3) for central first differences (error ~ h^2 + eps/h), eps^(1/2) for
    one-sided ones (h + eps/h), eps^(1/4) and eps^(1/3) for second differences;
    times max(1, |x|)."""
    return torch.finfo(x.dtype).eps ** _step_power(scheme, n) * _scale(x)


def finite_stencil(x: torch.Tensor, n: int = 1, scheme: str = "central",
                   h: Optional[float] = None):
    step = default_step(x, scheme, n) if h is None else torch.full_like(x, h)
    offsets = FINITE_OFFSETS[(scheme, n)]
    return x + min(offsets) * step, x + max(offsets) * step


def finite(f: Fn, x: torch.Tensor, n: int = 1, scheme: str = "central",
           h: Optional[float] = None) -> torch.Tensor:
    """Difference quotient of f, first or second derivative, central or one-sided.

    Dividing by the step as actually represented (`represented_step`), rather than by the nominal
    h, removes the representation error of h itself; what remains is the method's own
    truncation and round-off. If x + h rounds back to x the quotient is 0/0 and the point
    is counted as non-finite, which is the truth about that step in that dtype.
    """
    step = default_step(x, scheme, n) if h is None else torch.full_like(x, h)
    with torch.no_grad():
        return _combine(f, x, step, FINITE_OFFSETS[(scheme, n)], n)


def _check_h(h: Optional[float]) -> Optional[str]:
    if h is not None and not (math.isfinite(h) and h > 0):
        return f"method.h must be a finite number > 0 (or null for the dtype's default), got {h}"
    return None


def check_finite(scheme: str = "central", h: Optional[float] = None) -> Optional[str]:
    if scheme not in SCHEMES:
        return f"unknown method.scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}"
    return _check_h(h)


def _power_text(power: float) -> str:
    return str(sp.Rational(power).limit_denominator(20))


def describe_finite(dtype: torch.dtype, n: int = 1, scheme: str = "central",
                    h: Optional[float] = None) -> dict:
    if h is not None:
        return {"scheme": scheme, "h": float(h), "h_mode": "absolute"}
    base = float(default_step(torch.ones(1, dtype=dtype), scheme, n)[0])
    return {"scheme": scheme, "h": base,
            "h_mode": f"auto: eps^({_power_text(_step_power(scheme, n))})*max(1,|x|)"}


def finite_model(x: torch.Tensor, n: int = 1, scheme: str = "central", h: Optional[float] = None):
    step = default_step(x, scheme, n) if h is None else torch.full_like(x, h)
    offsets = FINITE_OFFSETS[(scheme, n)]
    return represented_step(x, step, offsets), offsets


METHODS.add("finite", Method("finite", finite, FiniteParams, check_finite,
                             stencil=finite_stencil, describe=describe_finite, model=finite_model))


@dataclass
class StencilParams:
    # Accuracy order of the central stencil: 2, 4, 6 or 8.
    order: int = 4
    # Absolute step; None gives eps^(1/(order + n)) for derivative order n.
    h: Optional[float] = None


def _stencil_offsets(accuracy: int, n: int) -> list[int]:
    half = accuracy // 2 + (n - 1) // 2
    return list(range(-half, half + 1))


def _stencil_step(x: torch.Tensor, accuracy: int, n: int, h: Optional[float]) -> torch.Tensor:
    """Theory's step h ~ eps^(1/(order + n)), balancing h^order truncation against
    eps/h^n round-off. Not scaled by |x|: the stencil is wide (up to 4h each side) and
    truncation depends on f's derivatives, not on x; the exact-step trick in `_combine`
    already removes the representation error that |x| scaling guards against."""
    value = torch.finfo(x.dtype).eps ** (1 / (accuracy + n)) if h is None else h
    return torch.full_like(x, value)


def stencil(f: Fn, x: torch.Tensor, n: int = 1, **params) -> torch.Tensor:
    """Central stencil of accuracy order 2, 4, 6 or 8 (weights from Fornberg's algorithm)."""
    accuracy, h = params.get("order", 4), params.get("h")
    with torch.no_grad():
        return _combine(f, x, _stencil_step(x, accuracy, n, h),
                        _stencil_offsets(accuracy, n), n)


def stencil_extent(x: torch.Tensor, n: int = 1, **params):
    accuracy, h = params.get("order", 4), params.get("h")
    reach = max(_stencil_offsets(accuracy, n)) * _stencil_step(x, accuracy, n, h)
    return x - reach, x + reach


def check_stencil(order: int = 4, h: Optional[float] = None) -> Optional[str]:
    if order not in STENCIL_ORDERS:
        return f"unknown method.order {order}; choose one of: {', '.join(map(str, STENCIL_ORDERS))}"
    return _check_h(h)


def describe_stencil(dtype: torch.dtype, n: int = 1, **params) -> dict:
    accuracy, h = params.get("order", 4), params.get("h")
    base = float(_stencil_step(torch.ones(1, dtype=dtype), accuracy, n, h)[0])
    mode = "absolute" if h is not None else f"auto: eps^(1/{accuracy + n})"
    return {"scheme": "central", "h": base, "h_mode": mode, "accuracy_order": accuracy}


def stencil_model(x: torch.Tensor, n: int = 1, **params):
    accuracy, h = params.get("order", 4), params.get("h")
    step = _stencil_step(x, accuracy, n, h)
    offsets = _stencil_offsets(accuracy, n)
    return represented_step(x, step, offsets), offsets


METHODS.add("stencil", Method("stencil", stencil, StencilParams, check_stencil,
                              stencil=stencil_extent, describe=describe_stencil,
                              model=stencil_model))


# --- Ridders / Richardson extrapolation -------------------------------------------------------

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


def _difference(f: Fn, x: torch.Tensor, step: torch.Tensor, n: int) -> torch.Tensor:
    offsets = [-1, 1] if n == 1 else [-1, 0, 1]
    return _combine(f, x, step, offsets, n)


def richardson(f: Fn, x: torch.Tensor, n: int = 1, h: float = 0.02, con: float = 1.4,
               ntab: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridders' method, vectorized: a tableau of central differences with steps h/con^i,
    extrapolated to h -> 0 (error series in h^2). Returns the best entry and its error
    estimate per point; a point stops improving once its error grows past twice the best."""
    step = h * _scale(x)
    big = torch.full_like(x, torch.finfo(x.dtype).max)
    with torch.no_grad():
        previous = [_difference(f, x, step, n)]
        best, err, active = previous[0].clone(), big.clone(), torch.ones_like(x, dtype=torch.bool)
        for _ in range(1, ntab):
            step = step / con
            row, fac = [_difference(f, x, step, n)], con * con
            for j in range(1, len(previous) + 1):
                row.append((row[j - 1] * fac - previous[j - 1]) / (fac - 1))
                fac *= con * con
                errt = torch.maximum((row[j] - row[j - 1]).abs(), (row[j] - previous[j - 1]).abs())
                better = active & (errt <= err)
                best, err = torch.where(better, row[j], best), torch.where(better, errt, err)
            active &= (row[-1] - previous[-1]).abs() < 2 * err
            previous = row
            if not bool(active.any()):
                break
    return best, err


def richardson_extent(x: torch.Tensor, n: int = 1, h: float = 0.02, **_):
    reach = h * _scale(x)
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
    step = h * _scale(x) / con ** (ntab - 1)
    offsets = [-1, 1] if n == 1 else [-1, 0, 1]
    return represented_step(x, step, offsets), offsets


METHODS.add("richardson", Method(
    "richardson", richardson, RichardsonParams, check_richardson, stencil=richardson_extent,
    model=richardson_model,
    describe=lambda dtype, n, h=0.02, **_: {"scheme": "central", "h": h,
                                               "h_mode": "initial: h*max(1,|x|)"}))


# --- complex step -----------------------------------------------------------------------------

COMPLEX = {torch.float64: torch.complex128, torch.float32: torch.complex64}


@dataclass
class ComplexStepParams:
    # Imaginary step, times max(1, |x|). No subtraction happens, so it can be tiny.
    h: float = 1e-20


def complex_step(f: Fn, x: torch.Tensor, n: int = 1, h: float = 1e-20) -> torch.Tensor:
    """Im f(x + i*h) / h: no subtractive cancellation, so near machine precision for any
    tiny h, for f analytic and implemented for complex input."""
    step = h * _scale(x)
    with torch.no_grad():
        return f(torch.complex(x, step).to(COMPLEX[x.dtype])).imag / step


def complex_step_supports(function, dtype, device, n, **_) -> Optional[str]:
    if n != 1:
        return "complex step has no cancellation-free second derivative"
    if dtype not in COMPLEX:
        return f"torch has no complex dtype with {dtype} parts for the complex step"
    if not function.analytic:
        return (f"{function.name} is not analytic (or not built only from analytic pieces), "
                f"so Im f(x+ih)/h is not its derivative")
    return None


METHODS.add("complex_step", Method(
    "complex_step", complex_step, ComplexStepParams,
    check=lambda h=1e-20: None if math.isfinite(h) and h > 0
    else f"method.h must be a finite number > 0, got {h}",
    supports=complex_step_supports,
    describe=lambda dtype, n, h=1e-20: {"h": h, "h_mode": "imaginary: h*max(1,|x|)"}))


# --- peer tools -------------------------------------------------------------------------------

def _numpy_fn(f: Fn, dtype: torch.dtype) -> Callable[[np.ndarray], np.ndarray]:
    def g(values: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return f(torch.as_tensor(np.asarray(values), dtype=dtype)).numpy()
    return g


def _cpu_float(function, dtype, device, n, **_) -> Optional[str]:
    if device.type != "cpu":
        return "runs on NumPy arrays: CPU only"
    if dtype in HALF:
        return f"does not support {dtype}"
    if n != 1:
        return "first derivatives only in this harness"
    return None


@dataclass
class ScipyParams:
    # scipy.differentiate.derivative's own defaults: maximum step and stencil order.
    initial_step: float = 0.5
    order: int = 8


def scipy_derivative(f: Fn, x: torch.Tensor, n: int = 1, initial_step: float = 0.5,
                     **params) -> tuple[torch.Tensor, torch.Tensor]:
    """scipy.differentiate.derivative: adaptive, vectorized, with its own error estimate."""
    from scipy.differentiate import derivative

    result = derivative(_numpy_fn(f, x.dtype), x.cpu().numpy(), initial_step=initial_step,
                        order=params.get("order", 8))
    return torch.as_tensor(result.df, dtype=x.dtype), torch.as_tensor(result.error, dtype=x.dtype)


SCIPY_MAXITER, SCIPY_STEP_FACTOR = 10, 2.0  # scipy.differentiate.derivative's defaults


def scipy_model(x: torch.Tensor, n: int = 1, initial_step: float = 0.5, **params):
    """For the triage: scipy's finest step and an order-`order` central stencil bound the
    round-off its adaptive extrapolation can carry."""
    finest = initial_step / SCIPY_STEP_FACTOR ** SCIPY_MAXITER
    return torch.full_like(x, finest), _stencil_offsets(params.get("order", 8), n)


METHODS.add("scipy", Method(
    "scipy", scipy_derivative, ScipyParams, supports=_cpu_float, model=scipy_model,
    stencil=lambda x, n=1, initial_step=0.5, **_: (x - initial_step, x + initial_step),
    describe=lambda dtype, n, initial_step=0.5, **p: {
        "scheme": "central", "h": initial_step, "h_mode": "adaptive: max step initial_step",
        "accuracy_order": p.get("order", 8)}))


def _numdifftools_missing(function, dtype, device, n, **params) -> Optional[str]:
    if importlib.util.find_spec("numdifftools") is None:
        return "numdifftools is not installed: pip install -e '.[peers]'"
    return _cpu_float(function, dtype, device, n, **params)


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


def numdifftools_extent(x: torch.Tensor, n: int = 1, **_):
    """The widest step numdifftools takes at each x."""
    reach = torch.as_tensor(_numdifftools_steps(x, n).max(axis=0), dtype=torch.float64)
    return x.double().cpu() - reach, x.double().cpu() + reach


def numdifftools_model(x: torch.Tensor, n: int = 1, **_):
    """For the triage: its finest central difference bounds the round-off it carries."""
    finest = torch.as_tensor(_numdifftools_steps(x, n).min(axis=0), dtype=x.dtype)
    return finest, [-1, 1] if n == 1 else [-1, 0, 1]


METHODS.add("numdifftools", Method(
    "numdifftools", numdifftools_derivative, supports=_numdifftools_missing,
    stencil=numdifftools_extent, model=numdifftools_model,
    describe=lambda dtype, n: {"scheme": "central", "h_mode": "adaptive: numdifftools default"}))
