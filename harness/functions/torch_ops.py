"""torch's differentiable unary elementwise ops, by torch's own name: `fn=torch fn.name=...`.

One registry list, keyed by the name relative to `torch` ("expm1", "special.erfcx",
"nn.functional.softplus"). Each op is a `Primitive` whose torch callable is looked up by
that name (the tutorial's getattr reflection, one level deeper), with its exact sympy
form, its Taylor-mode ball form for the certified reference, where its derivative exists,
its kinks, and whether the complex step applies. Ops that reuse a builtin primitive's
forms say so with `like=`.

`NOT_STUDIED` lists the unary ops of `torch`, `torch.special` and `torch.nn.functional`
that are not in the registry, each with its reason (an alias of a registered op, a
derivative that is zero wherever it exists, no derivative in torch, more than one input),
so nothing is left out silently and no reference is ever guessed.
"""
from __future__ import annotations

from dataclasses import replace
from functools import reduce
from typing import Callable

import numpy as np
import torch
from flint import arb

from harness.functions import arbforms as af
from harness.functions import arbspecial as s
from harness.functions.nodes import PRIMITIVES, Points, Primitive
from harness.lazy import sympy as sp
from harness.registry import Registry, choice_error


def torch_callable(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """torch.<name>, e.g. 'special.erfcx' -> torch.special.erfcx."""
    return reduce(getattr, name.split("."), torch)


def _op(name: str, sympy_fn=None, arb=None, *, like: str | None = None, **fields) -> Primitive:
    """The op `name`: a new primitive, or a builtin one's forms (`like`) under torch's name."""
    fn = torch_callable(name)
    if like is not None:
        return replace(PRIMITIVES.get(like), name=name, torch_fn=fn, **fields)
    return Primitive(name, fn, sympy_fn, arb=arb, **fields)


# Where f' exists (boundary excluded), in float64 on the grid; the docstring is what the
# docs table says.
def _positive(u):
    """x > 0"""
    return u > 0


def _above_minus_one(u):
    """x > -1"""
    return u > -1


def _inside_unit(u):
    """|x| < 1"""
    return np.abs(u) < 1


def _above_one(u):
    """x > 1"""
    return u > 1


def _open_unit_interval(u):
    """0 < x < 1"""
    return (u > 0) & (u < 1)


def _nonzero(u):
    """x != 0"""
    return u != 0


def _not_a_pole_of_gamma(u):
    """x not in 0, -1, -2, ..."""
    return ~((u <= 0) & (u == np.floor(u)))


ZERO = Points((0.0,))


def _sqrt2():
    return sp.sqrt(2)


def _rrelu_slope():
    """F.rrelu outside training: the fixed slope (lower + upper) / 2 with its defaults 1/8,
    1/3, which is 11/48 (the ball form's constant)."""
    return (sp.Rational(1, 8) + sp.Rational(1, 3)) / 2


def _abs_exp(u: sp.Expr) -> sp.Expr:
    """exp(-|x|) as a Piecewise (sympy's Abs differentiates to sign(), which lambdify
    evaluates poorly)."""
    return sp.Piecewise((sp.exp(u), u < 0), (sp.exp(-u), True))


def _log_abs_gamma(u: sp.Expr) -> sp.Expr:
    """log|Gamma(x)|; for x < 0 by reflection, with log|sin| as log(sin^2)/2 so that every
    derivative stays printable (sympy differentiates Abs into sign and DiracDelta)."""
    reflected = sp.log(sp.pi) - sp.log(sp.sin(sp.pi * u) ** 2) / 2 - sp.loggamma(1 - u)
    return sp.Piecewise((sp.loggamma(u), u > 0), (reflected, True))


def _ops() -> list[Primitive]:
    return [
        # trigonometric and their inverses
        _op("sin", like="sin"), _op("cos", like="cos"), _op("tan", like="tan"),
        _op("asin", lambda u: sp.asin(u), lambda u: u.asin(), domain=_inside_unit, analytic=True,
            singular=Points((-1.0, 1.0))),
        _op("acos", lambda u: sp.acos(u), lambda u: u.acos(), domain=_inside_unit, analytic=True,
            singular=Points((-1.0, 1.0))),
        _op("atan", lambda u: sp.atan(u), lambda u: u.atan(), analytic=True),
        _op("deg2rad", lambda u: u * sp.pi / 180, lambda u: u * (arb.pi() / 180)),
        _op("rad2deg", lambda u: u * 180 / sp.pi, lambda u: u * (180 / arb.pi())),
        _op("sinc", like="sinc"),
        # hyperbolic and their inverses
        _op("sinh", lambda u: sp.sinh(u), s.sinh, analytic=True),
        _op("cosh", lambda u: sp.cosh(u), s.cosh, analytic=True),
        _op("tanh", like="tanh"),
        _op("asinh", lambda u: sp.asinh(u), s.asinh, analytic=True),
        _op("acosh", lambda u: sp.acosh(u), s.acosh, domain=_above_one, singular=Points((1.0,)), analytic=True),
        _op("atanh", lambda u: sp.atanh(u), s.atanh, domain=_inside_unit, singular=Points((-1.0, 1.0)),
            analytic=True),
        # exponentials, logarithms, powers
        _op("exp", like="exp"),
        _op("exp2", lambda u: 2**u, s.exp2, analytic=True),
        _op("expm1", lambda u: sp.exp(u) - 1, af.expm1, analytic=True),
        _op("log", like="log"),
        _op("log2", lambda u: sp.log(u) / sp.log(2), s.log2, domain=_positive, singular=ZERO,
            analytic=True),
        _op("log10", lambda u: sp.log(u) / sp.log(10), s.log10, domain=_positive,
            singular=ZERO, analytic=True),
        _op("log1p", lambda u: sp.log(1 + u), af.log1p, domain=_above_minus_one,
            singular=Points((-1.0,)), analytic=True),
        _op("sqrt", like="sqrt"),
        _op("rsqrt", lambda u: 1 / sp.sqrt(u), lambda u: u.rsqrt(), domain=_positive,
            singular=ZERO, analytic=True),
        _op("reciprocal", lambda u: 1 / u, lambda u: 1 / u, domain=_nonzero, singular=ZERO,
            analytic=True),
        _op("square", lambda u: u**2, lambda u: u * u, analytic=True),
        _op("abs", like="abs"),
        _op("neg", lambda u: -u, lambda u: -u, analytic=True),
        # sigmoid and logit
        _op("sigmoid", like="sigmoid"),
        _op("logit", lambda u: sp.log(u / (1 - u)), s.logit, domain=_open_unit_interval,
            singular=Points((0.0, 1.0)), analytic=True),
        # error functions and the normal distribution
        _op("erf", like="erf"),
        _op("erfc", lambda u: sp.erfc(u), lambda u: u.erfc(), analytic=True),
        _op("erfinv", lambda u: sp.erfinv(u), s.erfinv, domain=_inside_unit, singular=Points((-1.0, 1.0)),
            analytic=True),
        _op("special.erfcx", lambda u: sp.exp(u**2) * sp.erfc(u), s.erfcx, analytic=True),
        _op("special.ndtr", lambda u: sp.erfc(-u / _sqrt2()) / 2, s.ndtr, analytic=True),
        # sympy's erfcinv has no mpmath printer: erfinv(2p - 1), exact, if cancelling near 0.
        _op("special.ndtri", lambda u: _sqrt2() * sp.erfinv(2 * u - 1), s.ndtri,
            domain=_open_unit_interval, singular=Points((0.0, 1.0)), analytic=True),
        _op("special.log_ndtr", lambda u: sp.log(sp.erfc(-u / _sqrt2()) / 2), s.log_ndtr,
            analytic=True),
        # gamma family
        _op("lgamma", _log_abs_gamma, s.lgamma,
            domain=_not_a_pole_of_gamma,
            note="log|Gamma(x)|: real for x < 0 too; poles at 0, -1, -2, ... excluded"),
        _op("digamma", lambda u: sp.digamma(u), s.digamma, domain=_not_a_pole_of_gamma, analytic=True,
            note="poles at 0, -1, -2, ... excluded"),
        # modified Bessel functions
        _op("i0", lambda u: sp.besseli(0, u), s.i0, analytic=True),
        _op("special.i0e", lambda u: _abs_exp(u) * sp.besseli(0, u), s.i0e, singular=ZERO,
            note="exp(-|x|) I0(x): a kink at 0"),
        _op("special.i1", lambda u: sp.besseli(1, u), s.i1, analytic=True),
        _op("special.i1e", lambda u: _abs_exp(u) * sp.besseli(1, u), s.i1e, singular=ZERO,
            note="exp(-|x|) I1(x): f'' jumps at 0"),
        # information theory
        _op("special.entr", lambda u: -u * sp.log(u), s.entr, domain=_positive, singular=ZERO,
            note="-x log x; torch gives -inf for x < 0 and 0 at 0, where f' does not exist"),
        # activations (torch.nn.functional)
        _op("nn.functional.relu", like="relu"), _op("nn.functional.relu6", like="relu6"),
        _op("nn.functional.elu", like="elu"), _op("nn.functional.celu", like="elu"),
        _op("nn.functional.selu", like="selu"), _op("nn.functional.gelu", like="gelu"),
        _op("nn.functional.silu", like="silu"), _op("nn.functional.mish", like="mish"),
        _op("nn.functional.softplus", like="softplus"),
        _op("nn.functional.softsign", like="softsign"),
        _op("nn.functional.logsigmoid", like="logsigmoid"),
        _op("nn.functional.tanhshrink", like="tanhshrink"),
        _op("nn.functional.hardtanh", like="hardtanh"),
        _op("nn.functional.hardswish", like="hardswish"),
        _op("nn.functional.hardsigmoid", like="hardsigmoid"),
        _op("nn.functional.hardshrink", like="hardshrink"),
        _op("nn.functional.softshrink", like="softshrink"),
        _op("nn.functional.leaky_relu", like="leaky_relu"),
        _op("nn.functional.rrelu",
            lambda u: sp.Piecewise((_rrelu_slope() * u, u < 0), (u, True)),
            lambda u: af.piecewise_linear(u, [("below", 0, lambda v: v * (arb(11) / 48))],
                                          lambda v: v),
            singular=ZERO,
            note="outside training: leaky_relu with the fixed slope (1/8 + 1/3)/2 = 11/48"),
    ]


TORCH_OPS: Registry[Primitive] = Registry("torch op", _ops())


def _aliases(canonical: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {alias: f"the same kernel as torch.{name}: fn.name={name}"
            for name, aliases in canonical.items() for alias in aliases}


ZERO_DERIVATIVE = "piecewise constant: its derivative is 0 wherever it exists"
NO_BACKWARD = "torch defines no derivative for it (autograd raises)"
NOT_UNARY = "not a one-argument elementwise map (needs a second tensor, an integer, or a dim)"

NOT_STUDIED: dict[str, str] = {
    **_aliases({
        "asin": ("arcsin",), "acos": ("arccos",), "atan": ("arctan",), "asinh": ("arcsinh",),
        "acosh": ("arccosh",), "atanh": ("arctanh",), "abs": ("absolute",), "neg": ("negative",),
        "sigmoid": ("special.expit", "nn.functional.sigmoid"), "tanh": ("nn.functional.tanh",),
        "exp2": ("special.exp2",), "expm1": ("special.expm1",), "log1p": ("special.log1p",),
        "erf": ("special.erf",), "erfc": ("special.erfc",), "erfinv": ("special.erfinv",),
        "logit": ("special.logit",), "sinc": ("special.sinc",), "i0": ("special.i0",),
        "lgamma": ("special.gammaln",), "digamma": ("special.digamma", "special.psi"),
        "nn.functional.relu": ("relu",), "nn.functional.selu": ("selu",),
        "nn.functional.celu": ("celu",), "nn.functional.rrelu": ("rrelu",),
        "nn.functional.hardshrink": ("hardshrink",),
    }),
    **dict.fromkeys(("floor", "ceil", "round", "trunc", "fix", "sign", "sgn", "signbit",
                     "special.round"), ZERO_DERIVATIVE),
    "frac": "x - trunc(x): its derivative is 1 wherever it exists",
    "positive": "the identity", "nan_to_num": "the identity on finite numbers",
    "angle": "0 or pi for real input: " + ZERO_DERIVATIVE,
    **dict.fromkeys(("special.airy_ai", "special.bessel_j0", "special.bessel_j1",
                     "special.bessel_y0", "special.bessel_y1", "special.modified_bessel_i0",
                     "special.modified_bessel_i1", "special.modified_bessel_k0",
                     "special.modified_bessel_k1", "special.scaled_modified_bessel_k0",
                     "special.scaled_modified_bessel_k1", "special.spherical_bessel_j0"),
                    NO_BACKWARD),
    **dict.fromkeys(("special.chebyshev_polynomial_t", "special.chebyshev_polynomial_u",
                     "special.chebyshev_polynomial_v", "special.chebyshev_polynomial_w",
                     "special.shifted_chebyshev_polynomial_t",
                     "special.shifted_chebyshev_polynomial_u",
                     "special.shifted_chebyshev_polynomial_v",
                     "special.shifted_chebyshev_polynomial_w", "special.hermite_polynomial_h",
                     "special.hermite_polynomial_he", "special.laguerre_polynomial_l",
                     "special.legendre_polynomial_p", "special.gammainc", "special.gammaincc",
                     "special.multigammaln", "special.polygamma", "special.zeta",
                     "special.xlogy", "special.xlog1py", "special.softmax",
                     "special.log_softmax", "special.logsumexp", "nn.functional.threshold",
                     "nn.functional.glu", "nn.functional.prelu", "nn.functional.softmax",
                     "nn.functional.softmin", "nn.functional.log_softmax"), NOT_UNARY),
}


def unknown_op_message(name: object) -> str:
    """fn=torch with a name not registered: why, if it is a known op left out, else the
    list of choices."""
    if name in NOT_STUDIED:
        return f"torch op {name!r} is not studied: {NOT_STUDIED[name]}"
    # 'erfcx' for 'special.erfcx': the namespace is what was missing.
    qualified = [n for n in TORCH_OPS.names() if n.rsplit(".", 1)[-1] == name]
    if qualified:
        return (f"unknown fn.name for fn=torch {name!r} (did you mean {qualified[0]!r}?); "
                f"choose one of: {', '.join(TORCH_OPS.names())}")
    return choice_error("fn.name for fn=torch", name, TORCH_OPS.names())
