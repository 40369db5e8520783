"""harness.methods.vjp: the methods in their network form, vᵀJ = ∂(v·out)/∂x."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.methods import METHODS
from harness.methods.vjp import (LOOP_MAX_OUTPUTS, finite_with_kinks, vjp_autograd,
                                 vjp_backward, vjp_finite)
from support import network_parts


def test_backward_leaves_neither_weight_gradients_nor_the_input_touched():
    parts = network_parts("tutorial_mlp", "float64")
    before = parts.x.clone()
    vjp_backward(parts.model, parts.x, parts.v)
    vjp_backward(parts.model, parts.x, parts.v)
    assert all(p.grad is None for p in parts.model.parameters())
    assert torch.equal(parts.x, before) and parts.x.grad is None and not parts.x.requires_grad


def test_a_one_sided_difference_is_less_accurate_than_the_central_one():
    parts = network_parts("tutorial_mlp", "float64")
    idx = np.arange(0, 100, 5)
    ref = vjp_autograd(parts.model, parts.x, parts.v).reshape(-1)[idx]
    errors = {scheme: float((vjp_finite(parts.model, parts.x, parts.v, idx, scheme=scheme) - ref)
                            .abs().max()) for scheme in ("central", "forward")}
    assert errors["forward"] > 100 * errors["central"]


def test_a_relu_kink_inside_the_stencil_is_detected_and_one_outside_is_not():
    model = nn.Sequential(nn.ReLU())
    x = torch.tensor([1e-3, 1.0, -1.0])  # float32 step ~ 4.9e-3 reaches across 0 from 1e-3
    values, crossed = finite_with_kinks(model, x, torch.ones(3), np.arange(3))
    assert crossed.tolist() == [True, False, False]
    assert values[1:].tolist() == [1.0, 0.0]


def test_kink_watching_leaves_no_hooks_behind():
    parts = network_parts("discriminator", "float32")
    finite_with_kinks(parts.model, parts.x, parts.v, np.array([0]))
    assert all(not m._forward_hooks for m in parts.model.modules())


def test_the_loop_is_refused_for_large_outputs_only():
    supports = METHODS.get("loop").vjp.supports
    assert supports(LOOP_MAX_OUTPUTS) is None
    assert supports(LOOP_MAX_OUTPUTS + 1) == (
        "the output has 1001 elements; the loop does one backward pass per element and is "
        "run only up to 1000")
