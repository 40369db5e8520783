"""harness.networks.presets: the tutorial's two networks, seeded, on seeded inputs."""
from __future__ import annotations

import torch
from torch import nn

from harness.networks.presets import (DISCRIMINATOR_KERNELS, NETWORKS, network_input,
                                      prepare_network)
from support import CPU, network_parts


def test_presets_take_the_documented_inputs_and_give_the_documented_outputs():
    shapes = {}
    for name in NETWORKS:
        parts = network_parts(name, "float32")
        shapes[name] = (tuple(parts.x.shape), tuple(parts.v.shape))
    assert shapes == {"tutorial_mlp": ((10, 1, 10), (10, 1, 10)),
                      "discriminator": ((10, 1, 2048), (10, 1))}


def test_discriminator_has_six_conv_branches_then_dropout_and_two_linear_layers():
    model = NETWORKS.get("discriminator").build(0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert [c.kernel_size[0] for c in convs] == list(DISCRIMINATOR_KERNELS) == \
        [5, 17, 33, 65, 129, 257]
    assert all(c.in_channels == 1 and c.out_channels == 4 for c in convs)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(1536, 64), (64, 1)]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.3]
    assert not model.training


def test_build_is_seeded_and_leaves_the_callers_rng_alone():
    preset = NETWORKS.get("tutorial_mlp")
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = preset.build(0), preset.build(0), preset.build(1)
    assert torch.equal(torch.rand(3), expected_next)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_network_input_is_one_float64_draw_rounded_to_the_dtype():
    preset = NETWORKS.get("tutorial_mlp")
    x64 = network_input(preset, torch.float64, CPU, 7)
    x32 = network_input(preset, torch.float32, CPU, 7)
    assert torch.equal(x32, x64.float())
    assert not torch.equal(x64, network_input(preset, torch.float64, CPU, 8))


def test_prepared_network_has_the_run_dtype_and_mode():
    model = prepare_network(NETWORKS.get("discriminator"), torch.float64, CPU, 0, train=True)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert all(m.training for m in model.modules())


def test_train_mode_is_reproducible_and_differs_from_eval_when_dropout_is_present():
    from harness.methods.vjp import vjp_autograd

    def vjp(train, seed=0):
        parts = network_parts("discriminator", "float32", train=train, seed=seed)
        return vjp_autograd(parts.model, parts.x, parts.v)

    train = vjp(True)
    assert torch.equal(train, vjp(True))
    assert not torch.equal(train, vjp(False))
    assert not torch.equal(train, vjp(True, seed=1))
