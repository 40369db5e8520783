"""harness.app.commandline: the command line is checked before Hydra composes it, so a bad
choice fails at once, in one line, before a sweep launches a job."""
from __future__ import annotations

import pytest

from harness.app.commandline import group_choices, precheck
from harness.config.validate import ConfigError


@pytest.mark.parametrize("args, problem", [
    (["fn=sinn"], "unknown fn 'sinn' (did you mean 'sin'?); choose one of: abs, cos, cube, "
                  "discriminator, elu, erf, exp, expr, gelu, gelu_tanh, hardshrink, hardsigmoid, "
                  "hardswish, hardtanh, leaky_relu, log, logsigmoid, mish, nn, py, relu, relu6, "
                  "selu, sigmoid, silu, sin, sinc, softplus, softshrink, softsign, sqrt, tan, "
                  "tanh, tanhshrink, torch, tutorial_mlp"),
    (["-m", "method=autograd,finitte"],
     "unknown method 'finitte' (did you mean 'finite'?); choose one of: autograd, backward, "
     "compiled, complex_step, finite, forward_ad, loop, numdifftools, richardson, scipy, "
     "stencil, vmap_grad"),
    (["dtype=float8"], "unknown dtype 'float8' (did you mean 'float64'?); choose one of: "
                       "bfloat16, float16, float32, float64"),
    (["device=tpu"], "unknown device 'tpu'; choose one of: auto, cpu, cuda"),
    (["-m", "+sweep=nope"], "unknown sweep 'nope'; choose one of: atlas, methods, scaling, stepsize"),
])
def test_an_unknown_choice_is_one_line_that_lists_the_choices(args, problem):
    with pytest.raises(ConfigError) as info:
        precheck(args)
    assert str(info.value) == problem


@pytest.mark.parametrize("args", [[], ["fn=tanh", "method=loop", "dtype=float32"],
                                  ["-m", "fn=sin,tanh", "+sweep=stepsize", "grid.n=10"],
                                  ["fn.name=anything"],  # not a group choice: validate's job
                                  ["-m", "+sweep=methods", "method.h=1e-5"]])  # some take h
def test_a_good_or_not_checked_command_line_passes(args):
    assert precheck(args) is None


def test_group_choices_are_the_registered_ones_and_the_config_files():
    assert {"sin", "nn", "torch", "expr", "py", "tutorial_mlp", "discriminator"} <= \
        set(group_choices("fn"))
    assert group_choices("sweep") == ["atlas", "methods", "scaling", "stepsize"]
    assert group_choices("hydra/launcher") == ["basic", "joblib", "slurm", "submitit_local",
                                               "submitit_slurm"]
