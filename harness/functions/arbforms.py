"""Taylor-mode ball arithmetic (Arb, via python-flint) for the primitives' reference forms.

A primitive's `arb` form maps a truncated power series u(t) = u0 + u1 t + ... (an
`arb_series` of balls) to the series of f(u(t)): composing forms along an expression tree
gives every derivative at once, f^(n)(x) = n! * coefficient n of f(x + t), each with a
rigorous error bound (the ball's radius). Nothing here chooses the precision: the caller
sets flint.ctx.prec and raises it until the bound is tight (harness.study.reference).

Forms should be numerically kind where it is cheap (gelu through erfc, not 1 + erf): a ball
stays rigorous either way, but a cancelling form needs far more bits to certify.
"""
from __future__ import annotations

from typing import Callable, Sequence

from flint import arb, arb_series

from harness.lazy import sympy as sp

Series = arb_series
Form = Callable[[arb_series], arb_series]


class Ambiguous(ArithmeticError):
    """The ball cannot decide a branch (it straddles a kink): the point is not certifiable."""


def length(u: arb_series) -> int:
    """The series' truncation length (coeffs() drops trailing zeros; prec does not)."""
    return u.prec


def value(u: arb_series) -> arb:
    """u0, the series' constant coefficient."""
    coeffs = u.coeffs()
    return coeffs[0] if coeffs else arb(0)


def constant(c: arb, like: arb_series) -> arb_series:
    """The constant c as a series of the same length as `like`."""
    return arb_series([c], prec=length(like))


def decimal(digits: str) -> arb:
    """A decimal constant (such as SELU's published digits) as a ball around its value."""
    return arb(digits)


def exact(expr: sp.Expr) -> arb:
    """A sympy constant (integers, rationals, decimals, pi, e, + - * / **) as a ball."""
    if expr.is_Integer:
        return arb(int(expr))
    if expr.is_Rational:
        return arb(int(expr.p)) / int(expr.q)
    if expr.is_Float:
        return arb(str(expr))
    if expr == sp.pi:
        return arb.pi()
    if expr == sp.E:
        return arb.const_e()
    args = [exact(a) for a in expr.args]
    if expr.is_Add:
        return sum(args[1:], args[0])
    if expr.is_Mul:
        product = args[0]
        for a in args[1:]:
            product = product * a
        return product
    if expr.is_Pow:
        base, power = args
        return base ** int(expr.args[1]) if expr.args[1].is_Integer else base ** power
    raise ValueError(f"no exact ball for the constant {expr}")


def with_derivative(u: arb_series, f0: arb, fprime: Form) -> arb_series:
    """f(u) from its value at u0 and its derivative's form: f(u(t)) = f(u0) +
    integral of f'(u(tau)) u'(tau). For functions whose value has an accurate Arb routine
    (expm1, log1p) but no series one."""
    if length(u) <= 1:
        return constant(f0, u)
    return constant(f0, u) + (fprime(u) * u.derivative()).integral()


def branch(u: arb_series, pieces: Sequence[tuple[Callable[[arb], bool], Form]],
           otherwise: Form) -> arb_series:
    """A piecewise function: the first piece whose condition holds *for the whole ball* of
    u0, else `otherwise` when every condition is certainly false; a ball that neither holds
    nor certainly fails a condition straddles its boundary: Ambiguous."""
    u0 = value(u)
    for condition, form in pieces:
        if condition(u0):
            return form(u)
        if not condition_is_false(condition, u0):
            raise Ambiguous(f"the ball {u0} straddles a branch boundary")
    return otherwise(u)


def condition_is_false(condition: Callable[[arb], bool], u0: arb) -> bool:
    """Conditions are written as certain comparisons (u0 < c); its negation is certain when
    the opposite comparison holds for the whole ball."""
    negated = getattr(condition, "negation", None)
    return negated(u0) if negated is not None else True


def below(c: float) -> Callable[[arb], bool]:
    """The condition u0 < c, with its certain negation u0 >= c attached."""
    cond = lambda u0: bool(u0 < c)  # noqa: E731
    cond.negation = lambda u0: bool(u0 >= c)
    return cond


def above(c: float) -> Callable[[arb], bool]:
    cond = lambda u0: bool(u0 > c)  # noqa: E731
    cond.negation = lambda u0: bool(u0 <= c)
    return cond


# --- forms that arb_series lacks, built from the ones it has ----------------------------

def sinh(u: arb_series) -> arb_series:
    e = u.exp()
    return (e - 1 / e) / 2


def cosh(u: arb_series) -> arb_series:
    e = u.exp()
    return (e + 1 / e) / 2


def tanh(u: arb_series) -> arb_series:
    """tanh through exp(-2|u|), so neither exp overflows the working exponent range."""
    sign = -1 if value(u) < 0 else 1
    e = (-2 * sign * u).exp()
    return sign * (1 - e) / (1 + e)


def sigmoid(u: arb_series) -> arb_series:
    """1/(1 + e^-x), as e^x/(1 + e^x) for x < 0, so the exponential never overflows Arb's
    range (a series division by an infinite ball fails) and no bits are needed for it."""
    if value(u) < 0:
        e = u.exp()
        return e / (1 + e)
    return 1 / (1 + (-u).exp())


def expm1(u: arb_series) -> arb_series:
    return with_derivative(u, value(u).expm1(), lambda v: v.exp())


def log1p(u: arb_series) -> arb_series:
    return with_derivative(u, value(u).log1p(), lambda v: 1 / (1 + v))


def zero(u: arb_series) -> arb_series:
    return constant(arb(0), u)


def piecewise_linear(u: arb_series, cuts: Sequence[tuple[str, float, Form]],
                     middle: Form) -> arb_series:
    """The activations' shape: ('below', c, form) / ('above', c, form) pieces, else middle."""
    test = {"below": below, "above": above}
    return branch(u, [(test[side](c), form) for side, c, form in cuts], middle)


def relu(u): return piecewise_linear(u, [("below", 0, zero)], lambda v: v)
def leaky_relu(u): return piecewise_linear(u, [("below", 0, lambda v: v / 100)], lambda v: v)
def elu(u): return piecewise_linear(u, [("below", 0, expm1)], lambda v: v)
def softsign(u): return piecewise_linear(u, [("below", 0, lambda v: v / (1 - v))], lambda v: v / (1 + v))
def abs_(u): return piecewise_linear(u, [("below", 0, lambda v: -v)], lambda v: v)


def hardtanh(u):
    return piecewise_linear(u, [("below", -1, lambda v: constant(arb(-1), v)),
                                ("above", 1, lambda v: constant(arb(1), v))], lambda v: v)


def hardswish(u):
    return piecewise_linear(u, [("below", -3, zero), ("above", 3, lambda v: v)],
                            lambda v: v * (v + 3) / 6)


def hardsigmoid(u):
    return piecewise_linear(u, [("below", -3, zero), ("above", 3, lambda v: constant(arb(1), v))],
                            lambda v: v / 6 + arb(1) / 2)


def relu6(u):
    return piecewise_linear(u, [("below", 0, zero), ("above", 6, lambda v: constant(arb(6), v))],
                            lambda v: v)


def softshrink(u):
    half = arb(1) / 2
    return piecewise_linear(u, [("below", -0.5, lambda v: v + half),
                                ("above", 0.5, lambda v: v - half)], zero)


def hardshrink(u):
    return piecewise_linear(u, [("below", -0.5, lambda v: v), ("above", 0.5, lambda v: v)], zero)


def gelu(u):
    """x/2 * erfc(-x/sqrt 2): the same function as x/2 (1 + erf(x/sqrt 2)) without the
    cancellation in the left tail (gelu'(-20) = -1.1e-86 needs no extra bits)."""
    return u * (-u / arb(2).sqrt()).erfc() / 2


def gelu_tanh(u):
    """x/2 (1 + tanh z) = x sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3): no cancellation."""
    z = (2 / arb.pi()).sqrt() * (u + arb(44715) / 1000000 * u * u * u)
    return u * sigmoid(2 * z)


def silu(u): return u * sigmoid(u)
def softplus(u): return log1p(u.exp())
def mish(u): return u * tanh(softplus(u))
def logsigmoid(u): return -log1p((-u).exp())


def tanhshrink(u):
    """x - tanh x, whose derivative tanh(x)^2 has no cancellation near 0."""
    return with_derivative(u, value(u) - value(u).tanh(), lambda v: tanh(v) ** 2)


def sinc(u):
    """sin(pi x)/(pi x), sin(pi x) by Arb's sin_pi (exact argument reduction: no bits lost
    at large |x|, where pi x itself would be rounded); at exactly 0 (a removable
    singularity) from the entire series sin(w)/w = sum_k (-1)^k w^(2k) / (2k+1)!, with
    w = pi u of valuation >= 1."""
    w = arb.pi() * u
    if not value(u).is_zero():
        return u.sin_pi() / w
    total, power = constant(arb(1), u), constant(arb(1), u)
    for k in range(1, length(u) // 2 + 1):
        power = power * w * w
        total = total + (-1) ** k * power / arb.fac_ui(2 * k + 1)
    return total
