"""Planted ops for the hunt and atlas tests: torch ops whose backward we control, as
`fn=torch` functions with exact sympy and ball forms (so the reference is the real one).

- `unstable_expm1`: expm1, right forward, backward computed from the result as (y + 1):
  mathematically exact, numerically it loses digits for x < 0 and returns 0 below ~ -37.
- `wrong_sinh_beyond`: sinh whose backward is twice the truth for |x| > WRONG_BEYOND only.
- `spike_sin`: sin whose backward is cos(x) (1 + 2^-30 / |x - SPIKE|): its error grows
  without bound towards SPIKE, a point no grid of binades lands on.
- `right_sin`: sin with backward cos: correct (the control).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp
import torch

from harness.functions import arbforms as af
from harness.functions import arbspecial as s
from harness.functions.catalog import Function
from harness.functions.nodes import Apply, Primitive, X
from harness.methods import METHODS
from harness.study.settings import GridConf, HuntConf, ReferenceConf, TimingConf
from harness.study.spec import Study

WRONG_BEYOND = 50.0
SPIKE = 3.3


def planted_op(name: str, forward, derivative) -> type:
    """A torch op whose forward is `forward` and whose backward is grad * derivative(x, y),
    with y = forward(x): the planted formula reads the input or the rounded output."""
    class Op(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = forward(x)
            ctx.save_for_backward(x, y)
            return y

        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            return grad * derivative(x, y)

    Op.__name__ = Op.__qualname__ = name
    return Op


# Mathematically exact, computed from the rounded result.
UnstableExpm1 = planted_op("UnstableExpm1", torch.expm1, lambda x, y: y + 1)
WrongSinhBeyond = planted_op(
    "WrongSinhBeyond", torch.sinh,
    lambda x, y: torch.where(x.abs() > WRONG_BEYOND, 2 * torch.cosh(x), torch.cosh(x)))
SpikeSin = planted_op("SpikeSin", torch.sin,
                      lambda x, y: torch.cos(x) * (1 + 2.0**-30 / (x - SPIKE).abs()))
RightSin = planted_op("RightSin", torch.sin, lambda x, y: torch.cos(x))


@dataclass(frozen=True)
class Planted:
    name: str
    cls: type
    sympy_fn: object
    arb: object
    # The forward takes complex input (so the complex step applies: it never calls backward).
    analytic: bool = False


PLANTED = {p.name: p for p in (
    Planted("unstable_expm1", UnstableExpm1, lambda u: sp.exp(u) - 1, af.expm1, analytic=True),
    Planted("wrong_sinh_beyond", WrongSinhBeyond, sp.sinh, s.sinh),
    Planted("spike_sin", SpikeSin, sp.sin, lambda u: u.sin()),
    Planted("right_sin", RightSin, sp.sin, lambda u: u.sin()),
)}


def planted_function(name: str) -> Function:
    p = PLANTED[name]
    prim = Primitive(f"planted.{name}", p.cls.apply, p.sympy_fn, arb=p.arb, analytic=p.analytic)
    return Function(f"torch.planted.{name}", "torch", Apply(prim, X()))


def planted_study(name: str, cache, dtype=torch.float64, per_binade: int = 2,
                  hunt: HuntConf = HuntConf(), method: str = "autograd") -> Study:
    """The study `fn=torch` would run for a planted op: binade grid, hunt, no timing."""
    return Study(subject=planted_function(name), method=METHODS.get(method), params={},
                 order=1, dtype=dtype, device=torch.device("cpu"),
                 timing=TimingConf(enabled=False),
                 reference=ReferenceConf(cache_dir=str(cache)),
                 grid=GridConf(kind="binades", per_binade=per_binade), hunt=hunt)


def binade_neighbours(x: float, per_binade: int) -> tuple[float, float]:
    """The binade grid's points around x > 0."""
    k = math.floor(math.log2(x) * per_binade)
    return 2.0 ** (k / per_binade), 2.0 ** ((k + 1) / per_binade)
