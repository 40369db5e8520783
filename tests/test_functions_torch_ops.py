"""harness.functions.torch_ops: every op's ball (Arb) series form against an independent
high-precision reference, across its range and into its tails; the ops resolve by torch's
name; the ops left out are listed with a reason; fn=torch reaches them."""
from __future__ import annotations

import math
from fractions import Fraction as Q

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flint import arb, arb_series, ctx

from harness.config.validate import ConfigError, validate
from harness.functions.catalog import resolve_function
from harness.functions.torch_ops import NOT_STUDIED, TORCH_OPS, torch_callable

mp = mpmath
ONE_MINUS = 1 - 2.0**-53  # the largest double below 1
TINY = 1e-300


def _sig(x):
    """sigmoid and sigmoid', computed without cancellation in either tail."""
    e = mp.exp(-abs(x))
    s = 1 / (1 + e) if x >= 0 else e / (1 + e)
    return s, e / (1 + e) ** 2


def _phi(x):
    return mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def _ndtr(x):
    return mp.erfc(-x / mp.sqrt(2)) / 2


def _ndtri(p):
    return mp.sqrt(2) * mp.erfinv(2 * p - 1)


def _erfcx(x):
    return mp.exp(x * x) * mp.erfc(x)


def _polygamma(n, x):
    """psi_n(x); for x < -1e3 by reflection (mpmath's own route there takes minutes):
    psi(x) = psi(1-x) - pi cot(pi x), psi_1(x) = -psi_1(1-x) + pi^2 csc^2(pi x),
    psi_2(x) = psi_2(1-x) - 2 pi^3 csc^2(pi x) cot(pi x)."""
    if x > -1e3:
        return mp.psi(n, x)
    pi, cot, csc2 = mp.pi, mp.cot(mp.pi * x), mp.csc(mp.pi * x) ** 2
    return {0: mp.psi(0, 1 - x) - pi * cot, 1: -mp.psi(1, 1 - x) + pi**2 * csc2,
            2: mp.psi(2, 1 - x) - 2 * pi**3 * csc2 * cot}[n]


def _bessel_i(n, x):
    """(I_n, I_n', I_n'') by DLMF 10.29.1: I_n' = (I_(n-1) + I_(n+1))/2, I_(-n) = I_n."""
    i = {k: mp.besseli(abs(k), x) for k in range(n - 2, n + 3)}
    return i[n], (i[n - 1] + i[n + 1]) / 2, (i[n - 2] + 2 * i[n] + i[n + 2]) / 4


def _scaled_bessel(order):
    """(f', f'') of exp(-|x|) I_order(x), by Leibniz from I', I''."""
    def derivs(x):
        s = mp.sign(x)
        i, d1, d2 = _bessel_i(order, x)
        e = mp.exp(-abs(x))
        return e * (d1 - s * i), e * (d2 - 2 * s * d1 + i)
    return derivs


def _piecewise(slopes, cuts):
    """(f', f'') of a piecewise-linear map: its slope (a Fraction, made exact at the working
    precision) on each interval between the sorted cuts."""
    def derivs(x):
        slope = slopes[sum(x > c for c in cuts)]
        return mp.mpf(slope.numerator) / slope.denominator, 0
    return derivs


def _selu(x):
    alpha = mp.mpf("1.6732632423543772848170429916717")
    scale = mp.mpf("1.0507009873554804934193349852946")
    return (scale * alpha * mp.exp(x),) * 2 if x < 0 else (scale, 0)


# name -> (points, x -> (f'(x), f''(x))): closed forms in mpmath, written from the
# mathematics and not from the code under test; None: mpmath.diff of the function in the
# third column at the working precision (smooth functions at moderate points).
INDEPENDENT = {
    "sin": ([-1e300, -3.5, 1e-300, 2.0, 1e22], lambda x: (mp.cos(x), -mp.sin(x))),
    "cos": ([-1e300, -3.5, 1e-300, 2.0, 1e22], lambda x: (-mp.sin(x), -mp.cos(x))),
    "tan": ([-1e300, -1.5, 1e-300, 1.5707963267948966, 1e22],
            lambda x: (mp.sec(x) ** 2, 2 * mp.sec(x) ** 2 * mp.tan(x))),
    "asin": ([-ONE_MINUS, -0.5, TINY, 0.75], lambda x: (1 / mp.sqrt(1 - x * x),
                                                      x / (1 - x * x) ** 1.5)),
    "acos": ([-ONE_MINUS, -0.5, TINY, 0.75], lambda x: (-1 / mp.sqrt(1 - x * x),
                                                      -x / (1 - x * x) ** 1.5)),
    "atan": ([-1e300, -2.5, TINY, 1e10], lambda x: (1 / (1 + x * x), -2 * x / (1 + x * x) ** 2)),
    "deg2rad": ([-1e300, 3.0], lambda x: (mp.pi / 180, 0)),
    "rad2deg": ([-1e300, 3.0], lambda x: (180 / mp.pi, 0)),
    "sinc": ([-3.25, 0.5, 7.75, 1e5 + 0.25], None, lambda x: mp.sincpi(x)),
    "sinh": ([-700.0, -1e-300, 0.5, 710.0], lambda x: (mp.cosh(x), mp.sinh(x))),
    "cosh": ([-700.0, -1e-300, 0.5, 710.0], lambda x: (mp.sinh(x), mp.cosh(x))),
    "tanh": ([-400.0, -1e-300, 0.5, 20.0], lambda x: (mp.sech(x) ** 2,
                                                     -2 * mp.tanh(x) * mp.sech(x) ** 2)),
    "asinh": ([-1e300, -1e-300, 0.5, 1e10], lambda x: (1 / mp.sqrt(1 + x * x),
                                                      -x / (1 + x * x) ** 1.5)),
    "acosh": ([1 + 2.0**-52, 1.5, 1e300], lambda x: (1 / mp.sqrt(x * x - 1),
                                                    -x / (x * x - 1) ** 1.5)),
    "atanh": ([-ONE_MINUS, -1e-300, 0.5], lambda x: (1 / (1 - x * x), 2 * x / (1 - x * x) ** 2)),
    "exp": ([-745.0, -1e-300, 3.5, 709.0], lambda x: (mp.exp(x), mp.exp(x))),
    "exp2": ([-1074.0, -0.5, 1023.5], lambda x: (mp.log(2) * 2**x, mp.log(2) ** 2 * 2**x)),
    "expm1": ([-745.0, -1e-300, 3.5, 709.0], lambda x: (mp.exp(x), mp.exp(x))),
    "log": ([5e-324, 0.5, 1 + 2.0**-52, 1e308], lambda x: (1 / x, -1 / x**2)),
    "log2": ([5e-324, 0.5, 1e308], lambda x: (1 / (x * mp.log(2)), -1 / (x**2 * mp.log(2)))),
    "log10": ([5e-324, 0.5, 1e308], lambda x: (1 / (x * mp.log(10)), -1 / (x**2 * mp.log(10)))),
    "log1p": ([-ONE_MINUS, -1e-300, 0.5, 1e308], lambda x: (1 / (1 + x), -1 / (1 + x) ** 2)),
    "sqrt": ([5e-324, 0.5, 1e308], lambda x: (1 / (2 * mp.sqrt(x)), -1 / (4 * x**1.5))),
    "rsqrt": ([5e-324, 0.5, 1e308], lambda x: (-1 / (2 * x**1.5), 3 / (4 * x**2.5))),
    "reciprocal": ([-1e300, -0.5, 1e-300, 3.0], lambda x: (-1 / x**2, 2 / x**3)),
    "square": ([-1e300, 0.0, 3.0], lambda x: (2 * x, 2)),
    "abs": ([-1e300, -0.5, 3.0], lambda x: (mp.sign(x), 0)),
    "neg": ([-1e300, 3.0], lambda x: (-1, 0)),
    "sigmoid": ([-745.0, -20.0, 0.0, 1e-300, 40.0, 745.0],
                lambda x: (_sig(x)[1], -mp.tanh(x / 2) * _sig(x)[1])),
    "logit": ([TINY, 0.25, 0.5, ONE_MINUS], lambda x: (1 / (x * (1 - x)),
                                                      (2 * x - 1) / (x * x * (1 - x) ** 2))),
    "erf": ([-30.0, -1e-300, 0.5, 27.0], lambda x: (2 / mp.sqrt(mp.pi) * mp.exp(-x * x),
                                                   -4 * x / mp.sqrt(mp.pi) * mp.exp(-x * x))),
    "erfc": ([-30.0, -1e-300, 0.5, 27.0], lambda x: (-2 / mp.sqrt(mp.pi) * mp.exp(-x * x),
                                                    4 * x / mp.sqrt(mp.pi) * mp.exp(-x * x))),
    "erfinv": ([-ONE_MINUS, -1e-300, 0.5, 1 - 2.0**-40],
               lambda x: (mp.sqrt(mp.pi) / 2 * mp.exp(mp.erfinv(x) ** 2),
                          mp.pi / 2 * mp.erfinv(x) * mp.exp(2 * mp.erfinv(x) ** 2))),
    "special.erfcx": ([-26.0, -1.5, 0.0, 1.75, 2.0, 3e3, 1e150],
                      lambda x: (2 * x * _erfcx(x) - 2 / mp.sqrt(mp.pi),
                                 (4 * x * x + 2) * _erfcx(x) - 4 * x / mp.sqrt(mp.pi))),
    "special.ndtr": ([-1e10, -40.0, -1.5, -1e-300, 0.5, 40.0], lambda x: (_phi(x), -x * _phi(x))),
    "special.ndtri": ([1e-300, 0.025, 0.5, ONE_MINUS],
                      lambda p: (mp.sqrt(2 * mp.pi) * mp.exp(_ndtri(p) ** 2 / 2),
                                 2 * mp.pi * _ndtri(p) * mp.exp(_ndtri(p) ** 2))),
    "special.log_ndtr": ([-1e10, -40.0, -1.5, -1e-300, 0.5, 40.0],
                         lambda x: (_phi(x) / _ndtr(x),
                                    -x * _phi(x) / _ndtr(x) - (_phi(x) / _ndtr(x)) ** 2)),
    "lgamma": ([-1e15 + 0.25, -2.5, -1e-300, 1e-300, 2.5, 1e300],
               lambda x: (_polygamma(0, x), _polygamma(1, x))),
    "digamma": ([-1e15 + 0.25, -2.5, -1e-300, 1e-300, 2.5, 1e300],
                lambda x: (_polygamma(1, x), _polygamma(2, x))),
    "i0": ([-3.5, 0.0, 1e-300, 40.0, 700.0],
           lambda x: _bessel_i(0, x)[1:]),
    "special.i1": ([-3.5, 0.0, 1e-300, 40.0, 700.0],
                   lambda x: _bessel_i(1, x)[1:]),
    "special.i0e": ([-3.5, 1e-300, 40.0, 1e4], _scaled_bessel(0)),
    "special.i1e": ([-3.5, 1e-300, 40.0, 1e4], _scaled_bessel(1)),
    "special.entr": ([5e-324, 0.5, 1e308], lambda x: (-(mp.log(x) + 1), -1 / x)),
    "nn.functional.relu": ([-1e300, 2.0], _piecewise([Q(0), Q(1)], [0])),
    "nn.functional.relu6": ([-1.0, 2.0, 1e300], _piecewise([Q(0), Q(1), Q(0)], [0, 6])),
    "nn.functional.leaky_relu": ([-1e300, 2.0], _piecewise([Q(1, 100), Q(1)], [0])),
    "nn.functional.rrelu": ([-1e300, 2.0], _piecewise([Q(11, 48), Q(1)], [0])),
    "nn.functional.hardtanh": ([-5.0, 0.5, 1e300], _piecewise([Q(0), Q(1), Q(0)], [-1, 1])),
    "nn.functional.hardsigmoid": ([-5.0, 0.5, 1e300], _piecewise([Q(0), Q(1, 6), Q(0)], [-3, 3])),
    "nn.functional.hardshrink": ([-5.0, 0.25, 1e300], _piecewise([Q(1), Q(0), Q(1)], [-0.5, 0.5])),
    "nn.functional.softshrink": ([-5.0, 0.25, 1e300], _piecewise([Q(1), Q(0), Q(1)], [-0.5, 0.5])),
    "nn.functional.hardswish": ([-5.0, -1.5, 2.0, 1e300],
                                lambda x: ((0, 0) if x < -3 else (1, 0) if x > 3
                                           else ((2 * x + 3) / 6, mp.mpf(1) / 3))),
    "nn.functional.elu": ([-745.0, -1e-300, 2.0], lambda x: (mp.exp(x), mp.exp(x)) if x < 0
                          else (1, 0)),
    "nn.functional.celu": ([-745.0, -1e-300, 2.0], lambda x: (mp.exp(x), mp.exp(x)) if x < 0
                           else (1, 0)),
    "nn.functional.selu": ([-745.0, -1e-300, 2.0], _selu),
    "nn.functional.softsign": ([-1e300, -0.5, 3.0],
                               lambda x: (1 / (1 + abs(x)) ** 2, -2 * mp.sign(x) / (1 + abs(x)) ** 3)),
    "nn.functional.softplus": ([-745.0, -3.0, 0.5, 40.0, 745.0],
                               lambda x: (_sig(x)[0], _sig(x)[1])),
    "nn.functional.logsigmoid": ([-745.0, -3.0, 0.5, 40.0, 745.0],
                                 lambda x: (1 - _sig(x)[0] if x < 0 else _sig(-x)[0], -_sig(x)[1])),
    "nn.functional.silu": ([-745.0, -3.0, 0.5, 40.0],
                           lambda x: (_sig(x)[0] + x * _sig(x)[1],
                                      _sig(x)[1] * (2 - x * mp.tanh(x / 2)))),
    "nn.functional.tanhshrink": ([-400.0, -1e-300, 0.5, 20.0],
                                 lambda x: (mp.tanh(x) ** 2, 2 * mp.tanh(x) * mp.sech(x) ** 2)),
    "nn.functional.gelu": ([-40.0, -3.0, 1e-300, 0.5, 40.0],
                           lambda x: (_ndtr(x) + x * _phi(x), (2 - x * x) * _phi(x))),
    "nn.functional.mish": ([-3.0, -0.5, 0.5, 4.0], None,
                           lambda x: x * mp.tanh(mp.log1p(mp.exp(x)))),
}


def arb_derivatives(form, x: float, n: int = 2) -> list:
    """f^(k)(x), k = 1..n, from the ball form, precision raised until every ball is tight
    (relative radius <= 2^-80) or exactly zero: a test-side certification loop."""
    for prec in (128, 256, 512, 1024, 2048, 4096, 8192):
        ctx.prec = prec
        try:
            coeffs = form(arb_series([arb(x), 1], prec=n + 1)).coeffs()
            coeffs = coeffs + [arb(0)] * (n + 1 - len(coeffs))
            values = [coeffs[k] * math.factorial(k) for k in range(1, n + 1)]
        finally:
            ctx.prec = 53
        if all(v.is_exact() or v.rel_accuracy_bits() >= 80 for v in values):
            return values
    raise AssertionError(f"no tight ball at {x} up to 8192 bits: {values}")


def as_mpf(ball: arb):
    return mp.mpf(ball.mid().str(60, radius=False))


def test_every_registered_op_has_an_independent_reference_in_this_test():
    assert set(INDEPENDENT) == set(TORCH_OPS.names())


@pytest.mark.parametrize("name", TORCH_OPS.names())
def test_arb_form_matches_an_independent_mpmath_reference_into_the_tails(name):
    points, closed, *plain = INDEPENDENT[name]
    prim = TORCH_OPS.get(name)
    with mp.workdps(400):
        for x in points:
            if closed is not None:
                truth = closed(mp.mpf(x))
            else:
                truth = tuple(mp.diff(plain[0], mp.mpf(x), k) for k in (1, 2))
            got = arb_derivatives(prim.arb, x)
            for order, (g, t) in enumerate(zip(got, truth), start=1):
                t = mp.mpf(t)
                err = abs(as_mpf(g) - t)
                assert err <= mp.mpf(10) ** -25 * abs(t) or (t == 0 and err < mp.mpf(10) ** -40), \
                    f"{name}^({order}) at {x}: arb {g} vs mpmath {mp.nstr(t, 20)}"


@pytest.mark.parametrize("name", TORCH_OPS.names())
def test_op_is_torchs_own_callable_found_by_its_name(name):
    assert TORCH_OPS.get(name).torch_fn is torch_callable(name)


def test_names_resolve_through_torchs_namespaces():
    assert torch_callable("special.erfcx") is torch.special.erfcx
    assert torch_callable("nn.functional.softplus") is F.softplus
    assert torch_callable("expm1") is torch.expm1


def test_every_torch_special_function_is_registered_or_left_out_with_a_reason():
    names = {f"special.{n}" for n in torch.special.__all__}
    unaccounted = names - set(TORCH_OPS.names()) - set(NOT_STUDIED)
    assert unaccounted == set()


def _compact(name: str) -> str:
    return name.lower().replace("_", "")


def test_every_nn_activation_has_its_functional_registered_or_left_out_with_a_reason():
    functional = {_compact(n): f"nn.functional.{n}" for n in dir(F)
                  if not n.startswith("_") and not n.endswith("_")}  # in-place variants
    accounted = set(TORCH_OPS.names()) | set(NOT_STUDIED)
    missing = []
    for cls in torch.nn.modules.activation.__all__:
        name = functional.get(_compact(cls))
        if name is not None and name not in accounted:
            missing.append(name)
    assert missing == []


# torch's unary pointwise math (torch.* docs, "Pointwise Ops"), real inputs.
TORCH_UNARY = ("abs absolute acos arccos acosh arccosh angle asin arcsin asinh arcsinh atan "
               "arctan atanh arctanh ceil cos cosh deg2rad digamma erf erfc erfinv exp exp2 "
               "expm1 fix floor frac lgamma log log10 log1p log2 logit i0 nan_to_num neg "
               "negative positive rad2deg reciprocal round rsqrt sigmoid sign sgn signbit sin "
               "sinc sinh sqrt square tan tanh trunc").split()


def test_every_unary_pointwise_torch_op_is_registered_or_left_out_with_a_reason():
    accounted = set(TORCH_OPS.names()) | set(NOT_STUDIED)
    assert [n for n in TORCH_UNARY if n not in accounted] == []


def test_every_op_left_out_is_a_real_torch_name_with_a_reason():
    for name, reason in NOT_STUDIED.items():
        assert callable(torch_callable(name)) and reason
        assert name not in TORCH_OPS


def test_fn_torch_resolves_to_the_op_under_its_full_name():
    function = resolve_function("torch", "special.erfcx")
    assert function.name == "torch.special.erfcx" and function.source == "torch"
    x = torch.tensor([1.0, 30.0], dtype=torch.float64)
    assert torch.equal(function.callable_for(torch.float64, "cpu")(x), torch.special.erfcx(x))


def test_fn_torch_alias_says_which_registered_op_is_the_same_kernel(compose_config):
    cfg = compose_config("fn=torch", "fn.name=special.expit")
    with pytest.raises(ConfigError, match=r"^torch op 'special.expit' is not studied: the "
                                          r"same kernel as torch.sigmoid: fn.name=sigmoid$"):
        validate(cfg)


def test_fn_torch_unknown_name_suggests_the_qualified_name_and_lists_the_ops(compose_config):
    cfg = compose_config("fn=torch", "fn.name=erfcx")
    with pytest.raises(ConfigError, match=r"^unknown fn.name for fn=torch 'erfcx' \(did you "
                                          r"mean 'special.erfcx'\?\); choose one of: abs, acos"):
        validate(cfg)


def test_domain_restricts_where_the_derivative_exists():
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    assert list(TORCH_OPS.get("erfinv").domain(x)) == [False, True, True, True, False]
    poles = np.array([-3.0, -2.5, 0.0, 0.5, -1e300])
    assert list(TORCH_OPS.get("lgamma").domain(poles)) == [False, True, False, True, False]


def test_a_derivative_autograd_knows_is_zero_is_measured_not_an_error(run):
    # abs's f'' comes back from autograd as a ZeroTensor (no storage); it is 0 everywhere
    # off the kink, and the reference says so.
    outcome = run("fn=torch", "fn.name=abs", "order=2", "grid.n=9", "grid.start=-2", "grid.stop=2")
    assert outcome.record["status"] == "ok" and outcome.record["max_abs_err"] == 0.0
    assert outcome.record["n_excluded_kink"] == 1

