"""harness.networks.checks: the cross-checks every network run carries, whatever the method."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.methods.vjp import vjp_autograd
from harness.networks.checks import (backward_vs_autograd, cotangent, float64_copy,
                                     penalty_gradient)
from harness.networks.presets import NETWORKS
from support import CPU, network_parts


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NETWORKS.names())
def test_backward_and_autograd_grad_agree_bitwise(name, dtype):
    parts = network_parts(name, dtype, v_kind="random")
    assert backward_vs_autograd(parts.model, parts.x, parts.v) == {
        "bitwise_backward_vs_autograd": True, "max_abs_diff_backward_vs_autograd": 0.0}


def test_penalty_gradient_is_the_exact_double_backward():
    # out = x^3: g = 3x^2, P = sum 9x^4, dP/dx = 36x^3.
    x = torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64)
    np.testing.assert_allclose(penalty_gradient(lambda t: t**3, x).numpy(), 36 * x.numpy()**3,
                               rtol=1e-15)


def test_train_mode_reference_sees_the_same_dropout_mask():
    parts = network_parts("discriminator", "float32", train=True)
    vjp32 = vjp_autograd(parts.model, parts.x, parts.v).double()
    vjp64 = vjp_autograd(float64_copy(parts.model), parts.x.double(), parts.v.double())
    assert float((vjp32 - vjp64).abs().max() / vjp64.abs().max()) <= 1e-5


def test_random_v_is_seeded_and_ones_is_ones():
    shape = torch.Size([10, 1])
    assert torch.equal(cotangent(shape, "ones", torch.float32, CPU, 0), torch.ones(shape))
    a = cotangent(shape, "random", torch.float32, CPU, 0)
    assert torch.equal(a, cotangent(shape, "random", torch.float32, CPU, 0))
    assert not torch.equal(a, cotangent(shape, "random", torch.float32, CPU, 1))
    assert torch.equal(a, cotangent(shape, "random", torch.float64, CPU, 0).float())
