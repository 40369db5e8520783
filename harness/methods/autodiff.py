"""Automatic differentiation: reverse mode (vectorized, accumulating, per point), forward
mode, torch.func, and torch.compile."""
from __future__ import annotations

import importlib
import warnings
from functools import reduce

import torch
from torch import nn

from harness.methods.base import Fn, ones_like


def grad_of(y: torch.Tensor, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """autograd.grad(y, x, ones): zeros when y does not depend on x."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(y, x, grad_outputs=ones_like(y), create_graph=create_graph,
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
            grad = grad_of(grad, x, create_graph=k + 1 < n)
    return grad.detach()


def backward(f: Fn, x: torch.Tensor, n: int = 1) -> torch.Tensor:
    """y.backward(ones_like(y)) on a leaf x, then read x.grad: the same vector-Jacobian
    product as autograd.grad, through the accumulating API (order 2: create_graph=True)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = f(x)
        for _ in range(n - 1):
            y = grad_of(y, x, create_graph=True)
        if not y.requires_grad:
            return torch.zeros_like(x)
        y.backward(ones_like(y))
    return x.grad if x.grad is not None else torch.zeros_like(x)


def loop(f: Fn, x: torch.Tensor, n: int = 1) -> torch.Tensor:
    """The tutorial's loop: a fresh nn.Parameter per point, y.backward(), read .grad
    (order 2: autograd.grad with create_graph=True, then backward() on the result)."""
    out = torch.empty_like(x)
    with torch.enable_grad():
        for i in range(x.numel()):
            point = nn.Parameter(x[i].detach().clone())
            y = f(point)
            if n == 2:
                y = grad_of(y, point, create_graph=True)
            if y.requires_grad:
                y.backward()
            out[i] = point.grad if point.grad is not None else 0.0
    return out


def forward_ad(f: Fn, x: torch.Tensor, n: int = 1) -> torch.Tensor:
    """Forward mode: torch.func.jvp with tangent ones (nested for order 2)."""
    def first(z: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(f, (z,), (ones_like(z),))[1]

    derivative = first if n == 1 else (lambda z: torch.func.jvp(first, (z,), (ones_like(z),))[1])
    # jvp's first use loads torch's decompositions through torch.jit.script, which warns
    # that torch.jit.script is deprecated: torch's internals, nothing a user can act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated",
                                category=DeprecationWarning)
        return derivative(x.detach())


def vmap_grad(f: Fn, x: torch.Tensor, n: int = 1) -> torch.Tensor:
    """torch.func.vmap(torch.func.grad(f)): a scalar gradient, batched over the grid."""
    derivative = reduce(lambda g, _: torch.func.grad(g), range(n), f)
    return torch.func.vmap(derivative)(x.detach())


def fresh_compiler() -> None:
    """A cold compiler for each study: compile time lands in its own first call (recorded
    as time_first_call_s), and the cache entries of earlier studies never add up to
    Dynamo's recompile limit (8 per code object, and every catalog function shares one),
    past which "compiled" would silently run eager."""
    torch.compiler.reset()


def compile_function(f: Fn) -> Fn:
    """torch.compile(f) as a whole graph with static shapes: inductor generates fused
    kernels for the forward and, through AOTAutograd, for the backward."""
    # Inductor's first compilation imports torch.utils.mkldnn, which warns at import that
    # torch.jit.script_method is deprecated: torch's internals, nothing a user can act on,
    # and it would be a warning line in every sweep that compiles. Imported here, quietly.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`torch.jit.script_method` is deprecated",
                                category=DeprecationWarning)
        importlib.import_module("torch.utils.mkldnn")
    return torch.compile(f, fullgraph=True, dynamic=False)
