"""The network cross-checks every network run carries, whatever the method:

  bitwise_backward_vs_autograd / max_abs_diff_backward_vs_autograd  in the run's dtype
  forward_mode_rel_diff  |v·(J u) - (vᵀJ)·u| / max of the two, u a seeded random direction
  gp_rel_err  gradient-penalty second order: g = autograd.grad(out, x, ones,
              create_graph=True), P = sum(g²), dP/dx by double backward vs a central
              difference of P, in float64, along a few seeded coordinate directions
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from harness.methods.differences import default_step
from harness.methods.vjp import Model, leaf, vjp_autograd, vjp_backward, with_element
from harness.networks.presets import stream_seed

V_KINDS = ("ones", "random")
GP_DIRECTIONS = 3


def cotangent(shape: torch.Size, v_kind: str, dtype: torch.dtype, device: torch.device,
              seed: int) -> torch.Tensor:
    """v: ones, or a seeded standard normal drawn in float64 and rounded once to dtype."""
    if v_kind == "ones":
        return torch.ones(shape, dtype=dtype, device=device)
    generator = torch.Generator().manual_seed(stream_seed(seed, "cotangent"))
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype).to(device)


def float64_copy(model: nn.Module) -> nn.Module:
    """The same network, weights cast to float64 (exactly: every dtype embeds in float64)."""
    return copy.deepcopy(model).to(torch.float64)


def backward_vs_autograd(model: Model, x: torch.Tensor, v: torch.Tensor) -> dict:
    """Whether out.backward(v) and autograd.grad(out, x, v) agree bit for bit, in x's dtype."""
    by_backward, by_grad = vjp_backward(model, x, v), vjp_autograd(model, x, v)
    return {"bitwise_backward_vs_autograd": bool(torch.equal(by_backward, by_grad)),
            "max_abs_diff_backward_vs_autograd":
                float((by_backward.double() - by_grad.double()).abs().max())}


def _rel_diff(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0 else 0.0


def forward_mode_check(model: Model, x: torch.Tensor, v: torch.Tensor, seed: int) -> dict:
    """v·(J u) by forward mode against (vᵀJ)·u by reverse mode, u a seeded random direction,
    both in x's dtype; the dots are accumulated in float64 so only the AD differs."""
    generator = torch.Generator().manual_seed(stream_seed(seed, "direction"))
    u = torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x.dtype).to(x.device)
    with torch.no_grad():
        _, ju = torch.func.jvp(model, (x.detach(),), (u,))
    forward = float((v.double() * ju.double()).sum())
    reverse = float((vjp_autograd(model, x, v).double() * u.double()).sum())
    return {"forward_mode_rel_diff": _rel_diff(forward, reverse)}


def penalty(model: Model, x: torch.Tensor,
            create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A gradient penalty's P = sum(g²), g = autograd.grad(out, x, ones) -> (P, leaf x)."""
    xg = leaf(x)
    with torch.enable_grad():
        out = model(xg)
        (g,) = torch.autograd.grad(out, xg, torch.ones_like(out), create_graph=create_graph)
        return (g * g).sum(), xg


def penalty_gradient(model: Model, x: torch.Tensor) -> torch.Tensor:
    """dP/dx by double backward (create_graph=True, then the gradient of P).

    materialize_grads: a piecewise-linear network's g does not depend on x, so dP/dx is 0.
    """
    value, xg = penalty(model, x, create_graph=True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(value, xg, allow_unused=True, materialize_grads=True)
    return grad


def _penalty_difference(model: Model, x: torch.Tensor, i: int) -> float:
    """Central difference of P along e_i, exact step, float64 step eps^(1/3)·max(1, |x_i|)."""
    xi = x.reshape(-1)[i]
    step = (xi + default_step(xi, "central", 1)) - xi
    hi = penalty(model, with_element(x, i, xi + step))[0]
    lo = penalty(model, with_element(x, i, xi - step))[0]
    return float((hi - lo) / (2 * step))


def gradient_penalty_check(model64: Model, x64: torch.Tensor, seed: int,
                           n_directions: int = GP_DIRECTIONS) -> dict:
    """Double-backward dP/dx against central differences of P, in float64.

    The directions are seeded random coordinates e_i rather than dense random vectors: a
    dense direction moves every ReLU input of the discriminator at once and almost surely
    crosses a kink within the step, where a difference of P means nothing.
    gp_rel_err = max |AD - FD| / max |FD or AD| (0 when both are exactly 0, as for a
    piecewise-linear network); gp_max_abs shows the size of what was compared.
    """
    generator = torch.Generator().manual_seed(stream_seed(seed, "penalty"))
    coords = torch.randperm(x64.numel(), generator=generator)[:n_directions].tolist()
    by_ad = penalty_gradient(model64, x64).reshape(-1)[coords].double().cpu().numpy()
    by_fd = np.array([_penalty_difference(model64, x64, i) for i in coords])
    scale = float(np.max(np.abs(np.concatenate([by_ad, by_fd]))))
    error = float(np.max(np.abs(by_ad - by_fd)))
    return {"gp_rel_err": error / scale if scale > 0 else 0.0, "gp_max_abs": scale,
            "gp_n_directions": len(coords)}


def cross_checks(model: Model, x: torch.Tensor, v: torch.Tensor, model64: Model,
                 seed: int) -> dict:
    """The network's consistency columns; the same for every method of a configuration."""
    return {**backward_vs_autograd(model, x, v), **forward_mode_check(model, x, v, seed),
            **gradient_penalty_check(model64, x.double(), seed)}
