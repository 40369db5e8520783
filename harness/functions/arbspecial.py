"""Taylor-mode ball forms of torch's special and inverse functions (for harness.functions.
torch_ops), built on the helpers of harness.functions.arbforms.

Arb has values (not series) for many of these (erfinv, digamma, bessel_i, ...). Two ways
turn a value routine into a series f(u(t)) that the certified reference can use:

- `taylor(u, coefficients)`: f's Taylor coefficients at u0, from identities that need only
  values (Bessel I_n^(k) from I_(n-k) ... I_(n+k); digamma's from lgamma's series), composed
  with u - u0;
- `recursive(u, f0, fprime)`: f from its value and the form of f', where f' is written with
  f itself (erfinv' = sqrt(pi)/2 exp(erfinv^2)); the derivative form is called on a series
  one term shorter, so the recursion ends.

Forms are chosen so that tails do not cancel (erfcx through Kummer's U, sinh through its
own value, atanh' as 1/((1-x)(1+x))): a ball stays rigorous either way, but a cancelling
form needs far more bits to certify at |x| = 1e300.
"""
from __future__ import annotations

from math import comb
from typing import Callable

from flint import arb, arb_series

from harness.functions import arbforms as af
from harness.functions.arbforms import constant, length, value


def shorter(u: arb_series) -> arb_series:
    """u truncated by one term (at least one term left)."""
    n = max(1, length(u) - 1)
    return arb_series(u.coeffs()[:n], prec=n)


def recursive(u: arb_series, f0: arb, fprime: af.Form) -> arb_series:
    """f(u) = f(u0) + integral of f'(u) u', with f' evaluated on a one-shorter series (all
    the integral needs), so a derivative form that calls f itself terminates."""
    if length(u) <= 1:
        return constant(f0, u)
    return constant(f0, u) + (fprime(shorter(u)) * u.derivative()).integral()


def taylor(u: arb_series, coefficients: Callable[[arb, int], list[arb]]) -> arb_series:
    """sum_k c_k (u - u0)^k, with c_0 .. c_(n-1) = coefficients(u0, n): f's Taylor
    coefficients at u0."""
    n, u0 = length(u), value(u)
    c = coefficients(u0, n)
    w = u - constant(u0, u)
    total, power = constant(c[0], u), constant(arb(1), u)
    for k in range(1, n):
        power = power * w
        total = total + c[k] * power
    return total


def sign_of(u: arb_series) -> int:
    return -1 if value(u) < 0 else 1


# --- hyperbolic and their inverses ------------------------------------------------------

def sinh(u):
    """From sinh's own value: (e^x - e^-x)/2 would cancel near 0 (x = 1e-300)."""
    return af.with_derivative(u, value(u).sinh(), af.cosh)


def cosh(u):
    return af.with_derivative(u, value(u).cosh(), sinh)


def asinh(u):
    return af.with_derivative(u, value(u).asinh(), lambda v: (1 + v * v).rsqrt())


def acosh(u):
    return af.with_derivative(u, value(u).acosh(), lambda v: ((v - 1) * (v + 1)).rsqrt())


def atanh(u):
    """atanh' = 1/((1-x)(1+x)): 1 - x is exact for a float x, 1 - x^2 would cancel."""
    return af.with_derivative(u, value(u).atanh(), lambda v: 1 / ((1 - v) * (1 + v)))


# --- exponentials and logarithms --------------------------------------------------------

def exp2(u): return (u * arb(2).log()).exp()
def log2(u): return u.log() / arb(2).log()
def log10(u): return u.log() / arb(10).log()


def logit(u):
    """log(x/(1-x)) from log x - log1p(-x) (no cancellation near 1/2)."""
    u0 = value(u)
    return af.with_derivative(u, u0.log() - (-u0).log1p(), lambda v: 1 / (v * (1 - v)))


def entr(u):
    return -(u * u.log())


# --- error function family --------------------------------------------------------------

def _sqrt_pi() -> arb:
    return arb.pi().sqrt()


def erfinv(u):
    """erfinv' = sqrt(pi)/2 exp(erfinv^2)."""
    return recursive(u, value(u).erfinv(), lambda v: _sqrt_pi() / 2 * (erfinv(v) ** 2).exp())


def ndtr(u):
    """The normal CDF erfc(-x/sqrt 2)/2; for x < -1 as erfcx(-x/sqrt 2) exp(-x^2/2)/2, whose
    factors stay tight where erfc of a huge argument does not (x = -1e10)."""
    z = -u / arb(2).sqrt()
    if value(u) < -1:
        return erfcx(z) * (-(u * u) / 2).exp() / 2
    return z.erfc() / 2


def ndtri(u):
    """The normal quantile -sqrt2 erfcinv(2p) (accurate for p near 0, where erfinv(2p-1)
    would lose everything); ndtri' = sqrt(2 pi) exp(ndtri^2 / 2)."""
    u0 = value(u)
    return recursive(u, -arb(2).sqrt() * (2 * u0).erfcinv(),
                     lambda v: (2 * arb.pi()).sqrt() * (ndtri(v) ** 2 / 2).exp())


def log_ndtr(u):
    """log ndtr; for x < -1 as log(erfcx(-x/sqrt 2)/2) - x^2/2 (both terms of one sign)."""
    if value(u) < -1:
        return (erfcx(-u / arb(2).sqrt()) / 2).log() - u * u / 2
    return ndtr(u).log()


def _kummer_u_half(z0: arb, n: int) -> list[arb]:
    """Taylor coefficients at z0 of U(1/2, 1/2, z) = sqrt(pi) erfcx(sqrt z): its k-th
    derivative is (-1)^k (1/2)_k U(1/2+k, 1/2+k, z) (DLMF 13.3.22), with no cancellation."""
    half = arb(1) / 2
    coefficients, pochhammer = [], arb(1)
    for k in range(n):
        a = half + k
        coefficients.append((-1) ** k * pochhammer * z0.hypgeom_u(a, a) / arb.fac_ui(k))
        pochhammer = pochhammer * a
    return coefficients


def erfcx(u):
    """exp(x^2) erfc(x). For x < 2 the product of the two series (no cancellation there);
    for x >= 2 Kummer's U(1/2, 1/2, x^2)/sqrt(pi), whose derivatives do not cancel where
    2x erfcx(x) - 2/sqrt(pi) does (x = 1e10: twenty digits)."""
    if value(u) < 2:
        return (u * u).exp() * u.erfc()
    return taylor(u * u, _kummer_u_half) / _sqrt_pi()


# --- gamma family -----------------------------------------------------------------------

def lgamma(u):
    """log|Gamma(x)|, torch's lgamma (real for x < 0, unlike Arb's). For x < 0 by the
    reflection log|Gamma(x)| = log pi - log|sin(pi x)| - log Gamma(1 - x)."""
    if value(u) > 0:
        return u.lgamma()
    s = u.sin_pi()
    s = -s if value(s) < 0 else s
    return constant(arb.pi().log(), u) - s.log() - (1 - u).lgamma()


def _digamma_taylor(u0: arb, n: int) -> list[arb]:
    """psi's Taylor coefficients at u0 > 0: the derivative of lgamma's series at u0."""
    return arb_series([u0, 1], prec=n + 1).lgamma().derivative().coeffs()[:n]


def digamma(u):
    """psi(x); for x < 0 by the reflection psi(x) = psi(1 - x) - pi cot(pi x)."""
    if value(u) > 0:
        return taylor(u, _padded(_digamma_taylor))
    return digamma(1 - u) - arb.pi() * u.cot_pi()


def _padded(coefficients: Callable[[arb, int], list[arb]]) -> Callable[[arb, int], list[arb]]:
    """coeffs() drops trailing zero coefficients: pad back to n."""
    def padded(u0: arb, n: int) -> list[arb]:
        c = list(coefficients(u0, n))
        return c + [arb(0)] * (n - len(c))
    return padded


# --- modified Bessel functions I_0, I_1 and their scaled forms ----------------------------

def _bessel_i_derivative(x0: arb, order: int, k: int, scaled: bool) -> arb:
    """d^k/dx^k I_order(x) = 2^-k sum_j C(k, j) I_(order-k+2j)(x) (from I_n' = (I_(n-1) +
    I_(n+1))/2, with I_-n = I_n), at x0 >= 0; each I scaled by e^-x0 when asked."""
    total = sum(comb(k, j) * x0.bessel_i(abs(order - k + 2 * j), scaled=scaled)
                for j in range(k + 1))
    return total / 2 ** k


def _bessel_i_taylor(order: int, scaled: bool) -> Callable[[arb, int], list[arb]]:
    """Taylor coefficients at x0 >= 0 of I_order(x), or of e^-x I_order(x) when scaled
    (Leibniz: sum_m C(k, m) (-1)^(k-m) I^(m) e^-x)."""
    def coefficients(x0: arb, n: int) -> list[arb]:
        derivs = [_bessel_i_derivative(x0, order, m, scaled) for m in range(n)]
        if scaled:
            derivs = [sum(comb(k, m) * (-1) ** (k - m) * derivs[m] for m in range(k + 1))
                      for k in range(n)]
        return [d / arb.fac_ui(k) for k, d in enumerate(derivs)]
    return coefficients


def _bessel(order: int, scaled: bool) -> af.Form:
    """I_order (even for order 0, odd for 1; e^-|x| I_order when scaled), from x0 >= 0."""
    def form(u):
        if value(u) >= 0:
            return taylor(u, _bessel_i_taylor(order, scaled))
        return (-1) ** order * form(-u)
    return form


i0, i1 = _bessel(0, False), _bessel(1, False)
i0e, i1e = _bessel(0, True), _bessel(1, True)
