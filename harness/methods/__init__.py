"""Ways of computing f'(x) (or f''(x)): the one registry of methods, as a list.

Each entry names a pure function (see harness.methods.base for the contract), its
parameters, what it supports, and, where it applies to networks, its vector-Jacobian form.
A new method is one entry here: CLI choices, docs tables, sweeps and the contract tests
all read this list.
"""
from __future__ import annotations

from harness.methods import autodiff, complex_step, differences, peers, vjp
from harness.methods.base import Method, VjpForm, order_at_most
from harness.registry import Registry

METHODS: Registry[Method] = Registry("method", [
    Method("autograd", autodiff.autograd, vjp=VjpForm(vjp.vjp_autograd)),
    Method("backward", autodiff.backward, vjp=VjpForm(vjp.vjp_backward)),
    Method("loop", autodiff.loop, per_point=True,
           vjp=VjpForm(vjp.vjp_loop, supports=vjp.few_outputs)),
    Method("forward_ad", autodiff.forward_ad, vjp=VjpForm(vjp.vjp_forward, per_point=True)),
    Method("vmap_grad", autodiff.vmap_grad),
    Method("compiled", autodiff.autograd, prepare=autodiff.compile_function,
           begin=autodiff.fresh_compiler, shape_specialized=True,
           summary="torch.compile(f) (inductor: fused forward and backward kernels) "
                   "differentiated by autograd; compilation is timed apart, as the first call",
           supports=order_at_most(1, "torch.compile's AOTAutograd does not support double "
                                     "backward")),
    Method("finite", differences.finite, differences.FiniteParams, differences.check_finite,
           reach=differences.finite_reach, describe=differences.describe_finite,
           model=differences.finite_model,
           vjp=VjpForm(vjp.vjp_finite, per_point=True, with_kinks=vjp.finite_with_kinks)),
    Method("stencil", differences.stencil, differences.StencilParams,
           differences.check_stencil, reach=differences.stencil_reach,
           describe=differences.describe_stencil, model=differences.stencil_model),
    Method("richardson", differences.richardson, differences.RichardsonParams,
           differences.check_richardson, reach=differences.richardson_reach,
           model=differences.richardson_model, describe=differences.describe_richardson),
    Method("complex_step", complex_step.complex_step, complex_step.ComplexStepParams,
           complex_step.check, supports=complex_step.supports,
           describe=complex_step.describe, complex_input=True),
    Method("scipy", peers.scipy_derivative, peers.ScipyParams, supports=peers.cpu_float,
           reach=peers.scipy_reach, model=peers.scipy_model, describe=peers.describe_scipy),
    Method("numdifftools", peers.numdifftools_derivative, supports=peers.numdifftools_supports,
           reach=peers.numdifftools_reach, model=peers.numdifftools_model,
           describe=peers.describe_numdifftools),
])
