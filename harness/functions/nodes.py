"""Building blocks of every elementwise function: primitives and expression nodes.

A function is a small tree (`X`, `Const`, `Apply(primitive, arg)`, `BinOp`). From one tree
we derive everything a study needs, so the pieces can never disagree:

- `torch(x)`: the callable that methods differentiate;
- `sympy()`: the exact symbolic form the high-precision reference differentiates;
- `outside_domain(x)`: points where f' does not exist (log at x <= 0, 1/x at 0, ...);
- `singular_in(lo, hi)`: whether [lo, hi] holds a point where f is not smooth (a kink,
  a pole, a domain edge), so a point there, or a finite-difference stencil across one,
  is excluded from error statistics instead of averaged in silently.

Domain and kink checks run in float64 on the (already dtype-rounded) grid.
"""
from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from harness.functions import arbforms as af
from harness.lazy import sympy as sp
from harness.registry import Registry

# SELU's constants as published (Klambauer et al. 2017), to 31 digits, so the reference is
# the mathematical function and torch's float rounding of them shows up as error.
SELU_ALPHA = "1.6732632423543772848170429916717"
SELU_SCALE = "1.0507009873554804934193349852946"


@functools.lru_cache(maxsize=None)
def x_symbol():
    """The real variable x of every symbolic form."""
    return sp.Symbol("x", real=True)


def selu_constant(digits: str):
    return sp.Float(digits, 40)


@dataclass(frozen=True)
class Points:
    """A set of special points: finite (`at`), or `at + k*period` for every integer k."""

    at: tuple[float, ...] = ()
    period: float | None = None

    def hits(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Mask of intervals [lo, hi] (elementwise, lo <= hi) that contain a point of the set."""
        hit = np.zeros(np.shape(lo), dtype=bool)
        for a in self.at:
            if self.period is None:
                hit |= (lo <= a) & (a <= hi)
            else:
                hit |= np.ceil((lo - a) / self.period) <= np.floor((hi - a) / self.period)
        return hit


def _positive(u: np.ndarray) -> np.ndarray:
    return u > 0


@dataclass(frozen=True)
class Primitive:
    """One elementary function of one argument, in torch and in sympy."""

    name: str
    torch_fn: Callable[[torch.Tensor], torch.Tensor]
    sympy_fn: Callable[[sp.Expr], sp.Expr]
    # Where f' exists (points on the boundary excluded); None means everywhere.
    domain: Callable[[np.ndarray], np.ndarray] | None = None
    # Kinks, poles and domain edges: where f is not infinitely differentiable.
    singular: Points = field(default_factory=Points)
    # Shown in reports: where torch's implementation is known to differ from the math.
    note: str = ""
    # Holomorphic, so the complex step Im f(x+ih)/h is its derivative (torch may still
    # lack a complex kernel for it; that is reported as unsupported at run time).
    analytic: bool = False
    # Taylor-mode ball form (harness.functions.arbforms): the series of f(u) from the
    # series u, for the certified reference; None when Arb has no way to evaluate it.
    arb: af.Form | None = None


def _pw(*pieces: tuple[sp.Expr, object]) -> sp.Expr:
    """Piecewise with a final catch-all piece, so mpmath lambdify gives plain if/else."""
    return sp.Piecewise(*pieces)


def _half():
    return sp.Rational(1, 2)


def _primitives() -> list[Primitive]:
    return [
        Primitive("sin", torch.sin, lambda u: sp.sin(u), analytic=True, arb=lambda u: u.sin()),
        Primitive("cos", torch.cos, lambda u: sp.cos(u), analytic=True, arb=lambda u: u.cos()),
        Primitive("tan", torch.tan, lambda u: sp.tan(u), singular=Points((math.pi / 2,), math.pi), analytic=True, arb=lambda u: u.tan()),
        Primitive("exp", torch.exp, lambda u: sp.exp(u), analytic=True, arb=lambda u: u.exp()),
        Primitive("log", torch.log, lambda u: sp.log(u), _positive, Points((0.0,)), analytic=True, arb=lambda u: u.log()),
        Primitive("sqrt", torch.sqrt, lambda u: sp.sqrt(u), _positive, Points((0.0,)), analytic=True, arb=lambda u: u.sqrt()),
        Primitive("tanh", torch.tanh, lambda u: sp.tanh(u), analytic=True, arb=af.tanh),
        Primitive("erf", torch.erf, lambda u: sp.erf(u), analytic=True, arb=lambda u: u.erf()),
        Primitive("sigmoid", torch.sigmoid, lambda u: 1 / (1 + sp.exp(-u)), analytic=True, arb=af.sigmoid),
        Primitive("relu", torch.relu, lambda u: _pw((0, u < 0), (u, True)), singular=Points((0.0,)),
                  arb=af.relu),
        Primitive("leaky_relu", F.leaky_relu, lambda u: _pw((u / 100, u < 0), (u, True)),
                  singular=Points((0.0,)),
                  arb=af.leaky_relu),
        Primitive("elu", F.elu, lambda u: _pw((sp.exp(u) - 1, u < 0), (u, True)),
                  singular=Points((0.0,)),
                  arb=af.elu),
        Primitive("selu", F.selu,
                  lambda u: selu_constant(SELU_SCALE) * _pw(
                      (selu_constant(SELU_ALPHA) * (sp.exp(u) - 1), u < 0), (u, True)),
                  singular=Points((0.0,)),
                  arb=lambda u: af.decimal(SELU_SCALE) * af.piecewise_linear(
                      u, [("below", 0, lambda v: af.decimal(SELU_ALPHA) * af.expm1(v))], lambda v: v)),
        Primitive("gelu", F.gelu, lambda u: u / 2 * (1 + sp.erf(u / sp.sqrt(2))),
                  arb=af.gelu),
        Primitive("gelu_tanh", lambda u: F.gelu(u, approximate="tanh"),
                  lambda u: u / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi)
                                                 * (u + sp.Rational("0.044715") * u**3))),
                  arb=af.gelu_tanh),
        Primitive("silu", F.silu, lambda u: u / (1 + sp.exp(-u)), analytic=True,
                  arb=af.silu),
        Primitive("mish", F.mish, lambda u: u * sp.tanh(sp.log(1 + sp.exp(u))),
                  arb=af.mish),
        Primitive("softplus", F.softplus, lambda u: sp.log(1 + sp.exp(u)),
                  note="torch's softplus returns x itself for x > 20 (threshold=20), "
                       "so its derivative there is 1, not sigmoid(x)",
                  arb=af.softplus),
        Primitive("softsign", F.softsign, lambda u: _pw((u / (1 - u), u < 0), (u / (1 + u), True)),
                  singular=Points((0.0,)),
                  arb=af.softsign),
        Primitive("logsigmoid", F.logsigmoid, lambda u: -sp.log(1 + sp.exp(-u)),
                  arb=af.logsigmoid),
        Primitive("tanhshrink", F.tanhshrink, lambda u: u - sp.tanh(u), analytic=True,
                  arb=af.tanhshrink),
        Primitive("hardtanh", F.hardtanh, lambda u: _pw((-1, u < -1), (1, u > 1), (u, True)),
                  singular=Points((-1.0, 1.0)),
                  arb=af.hardtanh),
        Primitive("hardswish", F.hardswish,
                  lambda u: _pw((0, u < -3), (u, u > 3), (u * (u + 3) / 6, True)),
                  singular=Points((-3.0, 3.0)),
                  arb=af.hardswish),
        Primitive("hardsigmoid", F.hardsigmoid,
                  lambda u: _pw((0, u < -3), (1, u > 3), (u / 6 + _half(), True)),
                  singular=Points((-3.0, 3.0)),
                  arb=af.hardsigmoid),
        Primitive("relu6", F.relu6, lambda u: _pw((0, u < 0), (6, u > 6), (u, True)),
                  singular=Points((0.0, 6.0)),
                  arb=af.relu6),
        Primitive("softshrink", F.softshrink,
                  lambda u: _pw((u + _half(), u < -_half()), (u - _half(), u > _half()), (0, True)),
                  singular=Points((-0.5, 0.5)),
                  arb=af.softshrink),
        Primitive("hardshrink", F.hardshrink,
                  lambda u: _pw((u, u < -_half()), (u, u > _half()), (0, True)),
                  singular=Points((-0.5, 0.5)),
                  arb=af.hardshrink),
        Primitive("abs", torch.abs, lambda u: _pw((-u, u < 0), (u, True)), singular=Points((0.0,)),
                  arb=af.abs_),
        # Normalized sinc, sin(pi x)/(pi x): smooth, with a removable singularity at 0 that
        # the reference resolves by a symbolic limit.
        Primitive("sinc", torch.sinc, lambda u: sp.sin(sp.pi * u) / (sp.pi * u), analytic=True,
                  arb=af.sinc),
    ]


PRIMITIVES: Registry[Primitive] = Registry("function", _primitives())


def _float64(node: "Node", x: np.ndarray) -> np.ndarray:
    """Evaluate a node in float64 without autograd (for domain and kink checks)."""
    with torch.no_grad():
        value = node.torch(torch.as_tensor(x, dtype=torch.float64))
    return np.broadcast_to(np.asarray(value, dtype=np.float64), np.shape(x))


def _value_range(node: "Node", lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Range of node over [lo, hi], from its ends and midpoint (exact for x itself, and
    for any node monotone on the interval, which is what finite stencils are)."""
    if isinstance(node, X):
        return lo, hi
    values = np.stack([_float64(node, v) for v in (lo, (lo + hi) / 2, hi)])
    return values.min(axis=0), values.max(axis=0)


class Node:
    """Base of the expression tree (see module doc for the four derived views)."""

    def torch(self, x: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def sympy(self) -> sp.Expr:  # pragma: no cover - abstract
        raise NotImplementedError

    def key(self) -> str:  # pragma: no cover - abstract
        """The tree as canonical text (primitives by name, constants exactly): what the
        reference cache is keyed by, without building the sympy form."""
        raise NotImplementedError

    def outside_domain(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(np.shape(x), dtype=bool)

    def singular_in(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return np.zeros(np.shape(lo), dtype=bool)

    def notes(self) -> list[str]:
        return []

    @property
    def analytic(self) -> bool:
        return True

    def arb(self, u: af.Series) -> af.Series:  # pragma: no cover - abstract
        """The series of this node at the series u of x (Taylor mode, in balls)."""
        raise NotImplementedError

    def without_arb(self) -> tuple[str, ...]:
        """The primitives in this tree that have no ball form (the certified reference
        needs none; otherwise the reference falls back to mpmath)."""
        return ()


@dataclass(frozen=True)
class X(Node):
    def torch(self, x):
        return x

    def sympy(self):
        return x_symbol()

    def key(self):
        return "x"

    def arb(self, u):
        return u


@dataclass(frozen=True)
class Const(Node):
    value: float
    # The exact value: a sympy number, or a Python int (no sympy needed to build it).
    exact: sp.Expr | int

    def torch(self, x):
        return self.value

    def sympy(self):
        return sp.Integer(self.exact) if isinstance(self.exact, int) else self.exact

    def key(self):
        return f"Integer({self.exact})" if isinstance(self.exact, int) else sp.srepr(self.exact)

    def arb(self, u):
        return af.constant(af.exact(self.sympy()), u)


@dataclass(frozen=True)
class Apply(Node):
    prim: Primitive
    arg: Node

    def torch(self, x):
        inner = self.arg.torch(x)
        if not isinstance(inner, torch.Tensor):
            inner = torch.full_like(x, inner)
        return self.prim.torch_fn(inner)

    def sympy(self):
        return self.prim.sympy_fn(self.arg.sympy())

    def key(self):
        return f"{self.prim.name}({self.arg.key()})"

    def arb(self, u):
        if self.prim.arb is None:
            raise NotImplementedError(f"{self.prim.name} has no ball (Arb) form")
        return self.prim.arb(self.arg.arb(u))

    def without_arb(self):
        own = () if self.prim.arb is not None else (self.prim.name,)
        return tuple(dict.fromkeys(own + self.arg.without_arb()))

    def outside_domain(self, x):
        out = self.arg.outside_domain(x)
        if self.prim.domain is not None:
            out = out | ~self.prim.domain(_float64(self.arg, x))
        return out

    def singular_in(self, lo, hi):
        return self.arg.singular_in(lo, hi) | self.prim.singular.hits(*_value_range(self.arg, lo, hi))

    def notes(self):
        own = [f"{self.prim.name}: {self.prim.note}"] if self.prim.note else []
        return own + self.arg.notes()

    @property
    def analytic(self):
        return self.prim.analytic and self.arg.analytic


_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
        "**": operator.pow}


@dataclass(frozen=True)
class BinOp(Node):
    op: str
    left: Node
    right: Node

    def torch(self, x):
        return _OPS[self.op](self.left.torch(x), self.right.torch(x))

    def sympy(self):
        return _OPS[self.op](self.left.sympy(), self.right.sympy())

    def key(self):
        return f"({self.left.key()} {self.op} {self.right.key()})"

    def arb(self, u):
        left = self.left.arb(u)
        if self.op == "**" and isinstance(self.right, Const):
            power = self.right.sympy()
            return left ** int(power) if power.is_Integer else left ** af.exact(power)
        if self.op == "**":
            return (self.right.arb(u) * left.log()).exp()
        return _OPS[self.op](left, self.right.arb(u))

    def without_arb(self):
        return tuple(dict.fromkeys(self.left.without_arb() + self.right.without_arb()))

    def _zero_is_singular(self) -> Node | None:
        """The operand at whose zero this operation has a pole or a domain edge."""
        if self.op == "/":
            return self.right
        if self.op == "**":
            exponent = self.right
            smooth = isinstance(exponent, Const) and float(exponent.value).is_integer() \
                and exponent.value >= 0
            return None if smooth else self.left
        return None

    def _needs_positive_base(self) -> bool:
        exponent = self.right
        return self.op == "**" and not (isinstance(exponent, Const)
                                        and float(exponent.value).is_integer())

    def outside_domain(self, x):
        out = self.left.outside_domain(x) | self.right.outside_domain(x)
        zero_at = self._zero_is_singular()
        if zero_at is not None:
            value = _float64(zero_at, x)
            out = out | ((value <= 0) if self._needs_positive_base() else (value == 0))
        return out

    def singular_in(self, lo, hi):
        out = self.left.singular_in(lo, hi) | self.right.singular_in(lo, hi)
        zero_at = self._zero_is_singular()
        if zero_at is not None:
            out = out | Points((0.0,)).hits(*_value_range(zero_at, lo, hi))
        return out

    def notes(self):
        return self.left.notes() + self.right.notes()

    @property
    def analytic(self):
        return self.left.analytic and self.right.analytic


@dataclass(frozen=True)
class Neg(Node):
    arg: Node

    def torch(self, x):
        return -self.arg.torch(x)

    def sympy(self):
        return -self.arg.sympy()

    def key(self):
        return f"(-{self.arg.key()})"

    def arb(self, u):
        return -self.arg.arb(u)

    def without_arb(self):
        return self.arg.without_arb()

    def outside_domain(self, x):
        return self.arg.outside_domain(x)

    def singular_in(self, lo, hi):
        return self.arg.singular_in(lo, hi)

    def notes(self):
        return self.arg.notes()

    @property
    def analytic(self):
        return self.arg.analytic
