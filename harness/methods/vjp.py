"""Methods in their network form: the vector-Jacobian product vᵀJ = ∂(v·out)/∂x.

For a network out = model(x) with out of any shape, one entry per input element, v of the
output's shape. Pure: tensors in, tensor out, no I/O.
  autograd    torch.autograd.grad(out, x, grad_outputs=v)
  backward    out.backward(v), then x.grad (the tutorial's form)
  loop        one backward per output element, accumulating into x.grad (small outputs only)
  finite      difference quotient of v·out along each checked input element e_i
  forward_ad  forward mode: v·(J e_i) by torch.func.jvp, per checked element
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.methods.differences import FINITE_OFFSETS, default_step

Model = Callable[[torch.Tensor], torch.Tensor]
# The loop does one backward pass per output element; past this many it is not a method
# anyone would use, and the run is recorded as unsupported.
LOOP_MAX_OUTPUTS = 1000


def leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone().requires_grad_(True)


def vjp_autograd(model: Model, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """torch.autograd.grad(out, x, grad_outputs=v): only the path to x is differentiated."""
    xg = leaf(x)
    with torch.enable_grad():
        out = model(xg)
        (grad,) = torch.autograd.grad(out, xg, grad_outputs=v)
    return grad


def vjp_backward(model: Model, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """out.backward(v); x.grad, as in the tutorial.

    backward() also accumulates the weights' gradients (part of what it costs, so it is
    timed); they are set back to None afterwards so repeated calls never accumulate.
    """
    xg = leaf(x)
    with torch.enable_grad():
        model(xg).backward(v)
    if isinstance(model, nn.Module):
        for parameter in model.parameters():
            parameter.grad = None
    return xg.grad


def vjp_loop(model: Model, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One backward per output element j, each adding v_j ∂out_j/∂x into x.grad.

    `inputs=[x]` keeps the weights' gradients out of it: the loop is about accumulation
    in x.grad (a different summation order from autograd's, hence not bitwise equal).
    """
    xg = leaf(x)
    with torch.enable_grad():
        out, weights = model(xg).reshape(-1), v.reshape(-1)
        for j in range(out.numel()):
            out[j].backward(weights[j], retain_graph=j + 1 < out.numel(), inputs=[xg])
    return xg.grad if xg.grad is not None else torch.zeros_like(x)


def few_outputs(n_outputs: int) -> Optional[str]:
    if n_outputs > LOOP_MAX_OUTPUTS:
        return (f"the output has {n_outputs} elements; the loop does one backward pass per "
                f"element and is run only up to {LOOP_MAX_OUTPUTS}")
    return None


def with_element(x: torch.Tensor, i: int, value: torch.Tensor) -> torch.Tensor:
    shifted = x.clone()
    shifted.view(-1)[i] = value
    return shifted


# Layers with kinks: what decides their branch (ReLU side, max-pool winner). A finite
# difference whose two ends see different patterns straddles a kink. One line per layer.
KINK_PATTERNS: dict[type, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    nn.ReLU: lambda m, x: x > 0,
    nn.LeakyReLU: lambda m, x: x > 0,
    nn.MaxPool1d: lambda m, x: F.max_pool1d(x, m.kernel_size, m.stride, m.padding, m.dilation,
                                            m.ceil_mode, return_indices=True)[1],
}


@contextmanager
def watch_kinks(model: Model) -> Iterator[list[torch.Tensor]]:
    """Inside the block, every forward pass appends each kinked layer's pattern to the list."""
    seen: list[torch.Tensor] = []
    modules = model.modules() if isinstance(model, nn.Module) else []

    def record(module: nn.Module, args: tuple, _output) -> None:
        seen.append(KINK_PATTERNS[type(module)](module, args[0]))

    hooks = [m.register_forward_hook(record) for m in modules if type(m) in KINK_PATTERNS]
    try:
        yield seen
    finally:
        for hook in hooks:
            hook.remove()


def _finite_entry(model: Model, x: torch.Tensor, v: torch.Tensor, i: int, scheme: str,
                  h: Optional[float], seen: list) -> tuple[torch.Tensor, bool]:
    """(v·out(x + b e_i) - v·out(x + a e_i)) / ((b - a) step), and whether it crossed a kink.

    The step is the one the dtype really takes, (x_i + h) - x_i. Outputs are subtracted
    elementwise before the dot with v: the same quotient, without first rounding the two
    large sums whose difference is wanted.
    """
    xi = x.reshape(-1)[i]
    step = default_step(xi, scheme, 1) if h is None else torch.full_like(xi, h)
    step = (xi + step) - xi
    a, b = min(FINITE_OFFSETS[(scheme, 1)]), max(FINITE_OFFSETS[(scheme, 1)])
    ends = []
    for k in (a, b):
        seen.clear()
        ends.append((model(with_element(x, i, xi + k * step)), list(seen)))
    (lo, lo_pattern), (hi, hi_pattern) = ends
    crossed = any(not torch.equal(p, q) for p, q in zip(lo_pattern, hi_pattern))
    return (v * (hi - lo)).sum() / ((b - a) * step), crossed


def finite_with_kinks(model: Model, x: torch.Tensor, v: torch.Tensor, idx: np.ndarray,
                      scheme: str = "central",
                      h: Optional[float] = None) -> tuple[torch.Tensor, np.ndarray]:
    """vjp_finite's values at idx, and per point whether its stencil crossed a kink."""
    values = torch.empty(len(idx), dtype=x.dtype, device=x.device)
    crossed = np.zeros(len(idx), dtype=bool)
    with torch.no_grad(), watch_kinks(model) as seen:
        for k, i in enumerate(idx):
            values[k], crossed[k] = _finite_entry(model, x, v, int(i), scheme, h, seen)
    return values, crossed


def vjp_finite(model: Model, x: torch.Tensor, v: torch.Tensor, idx: np.ndarray,
               scheme: str = "central", h: Optional[float] = None) -> torch.Tensor:
    """Difference quotient of v·out along e_i for each i in idx (flat indices of x).

    Default step: the dtype's eps^(1/3)·max(1, |x_i|) for central differences and
    eps^(1/2)·max(1, |x_i|) for one-sided ones (harness.methods.differences.default_step);
    `h` fixes it.
    """
    values = torch.empty(len(idx), dtype=x.dtype, device=x.device)
    seen: list = []  # no layer is watched: the list stays empty
    with torch.no_grad():
        for k, i in enumerate(idx):
            values[k] = _finite_entry(model, x, v, int(i), scheme, h, seen)[0]
    return values


def jvp_dot(model: Model, x: torch.Tensor, v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """v·(J u): one forward-mode pass (torch.func.jvp) with tangent u, dotted with v."""
    with torch.no_grad():  # no reverse graph through the weights; forward AD is unaffected
        _, tangent_out = torch.func.jvp(model, (x.detach(),), (u,))
    return (v * tangent_out).sum()


def vjp_forward(model: Model, x: torch.Tensor, v: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
    """Forward mode, one element at a time: entry i of vᵀJ is v·(J e_i)."""
    values = torch.empty(len(idx), dtype=x.dtype, device=x.device)
    one = torch.ones((), dtype=x.dtype)
    for k, i in enumerate(idx):
        values[k] = jvp_dot(model, x, v, with_element(torch.zeros_like(x), int(i), one))
    return values
