"""Reference derivatives at the exact dtype-rounded grid values, and what backs them.

- `arb` (every function whose primitives all have a ball form): certified by Taylor-mode
  ball arithmetic (harness.study.certify): per point a rigorous bound, relative radius
  <= 2^-106 or |f'| <= 2^-1100, precision raised per point up to a cap; a point that
  cannot be certified is flagged (`uncertified`), excluded and counted, never used.
- `mpmath` (only where a primitive has no ball form): the symbolic derivative at `dps`
  digits, checked at `dps - 20` and re-evaluated at 4*dps where they disagree. Agreement is
  evidence, not a proof: the record says so, and names the primitives without a ball form.
  A point where the formula is 0/0 (a removable singularity) takes the symbolic limit.
- Functions with no symbolic form: float64 autograd (torch.nn classes with no closed form,
  networks), float64 Ridders from two tableaux with a per-point uncertainty (user code,
  whose backward may be what is under test), or the user's own trusted derivative.

Values are double-doubles (hi + lo, |lo| <= ulp(hi)/2; lo is zero for float64
references), so float64 methods are measured to far below one ULP. `Reference.backing`
is the sentence every record carries about what backs its reference.
"""
from __future__ import annotations

import hashlib
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from harness.atomic import atomic_write
from harness.functions.nodes import x_symbol
from harness.lazy import mpmath
from harness.lazy import sympy as sp
from harness.methods.autodiff import autograd
from harness.methods.differences import richardson
from harness.study import certify as ball

# What backs each kind of reference, as the record states it.
BACKING = {
    "arb": (f"Arb ball arithmetic (python-flint), Taylor mode: every used point certified, "
            f"relative bound <= 2^-{ball.TARGET_BITS} (or |f'| <= 2^-1100), precision raised "
            f"per point up to {ball.CAP_BITS} bits"),
    "mpmath": "mpmath from the symbolic derivative, checked at a second precision: "
              "agreement, not a rigorous bound",
    "float64-richardson": "float64 Ridders extrapolation of f from two tableaux: an estimate "
                          "with a per-point uncertainty (df_ref_uncertainty), not a bound",
    "float64-autograd": "float64 autograd of the same function or network: no "
                        "independent check; float64 rounding (about 1e-16 relative) is not "
                        "resolved",
    "user-derivative": "the user's fn.derivative in float64, trusted as given: no bound",
}


@dataclass(frozen=True)
class Reference:
    """The true derivative at the checked points: hi + lo (a double-double; lo is zero
    for float64 references), what backs it, and its per-point uncertainty (a rigorous
    bound for `arb`, an estimate for Ridders; None where nothing measures it)."""

    hi: np.ndarray
    lo: np.ndarray
    kind: str
    uncertainty: np.ndarray | None = None
    dps: int = 0
    # arb: per point, True where the cap was reached before the bound was tight.
    uncertified: np.ndarray | None = None
    # arb: the most bits any point needed.
    bits: int = 0
    # mpmath fallback: the primitives that have no ball form.
    missing: tuple[str, ...] = ()

    @property
    def backing(self) -> str:
        text = BACKING.get(self.kind, self.kind)
        if self.kind == "mpmath":
            text = f"{text} ({self.dps} digits, checked at {self.dps - 20})"
            if self.missing:
                text += f"; used because {', '.join(self.missing)} has no Arb form"
        return text


def reference_columns(ref: Reference, used: np.ndarray) -> dict:
    """What a record says about its reference: the kind, what backs it, and over the used
    points its largest uncertainty, absolute and relative to |f'| (NaN: none measured)."""
    largest = relative = float("nan")
    if ref.uncertainty is not None and used.any():
        bound, size = ref.uncertainty[used], np.abs(ref.hi[used])
        largest = float(np.max(bound))
        if np.any(size > 0):
            relative = float(np.max(bound[size > 0] / size[size > 0]))
    return {"reference": ref.kind, "reference_backing": ref.backing, "reference_dps": ref.dps,
            "reference_bits": ref.bits, "reference_rel_bound_max": relative,
            "reference_uncertainty_max": largest}


# The relative precision a double-double can carry: 2^-106.
AGREEMENT_BITS = 106
# 3: the Arb entries are keyed by the expression tree's own text (Node.key), not sympy's.
CACHE_VERSION = "3"


def _evaluate(fn: Callable, d: sp.Expr, x: float, dps: int):
    with mpmath.workdps(dps):
        try:
            value = fn(mpmath.mpf(x))
        except (ZeroDivisionError, ValueError):
            value = mpmath.nan
        if not mpmath.isfinite(value):
            # 0/0 at a removable singularity: the derivative is the limit there.
            limit = sp.limit(d, x_symbol(), sp.Rational(x))
            value = mpmath.mpf(sp.N(limit, dps)) if limit.is_finite else mpmath.nan
        return +value


def _precise(fn: Callable, d: sp.Expr, x: float, dps: int):
    value = _evaluate(fn, d, x, dps)
    check = _evaluate(fn, d, x, dps - 20)
    if mpmath.isfinite(value) and abs(value - check) > mpmath.ldexp(abs(value), -AGREEMENT_BITS):
        value = _evaluate(fn, d, x, 4 * dps)
    return value


def _split(value) -> tuple[float, float]:
    """mpf -> (hi, lo) with hi the nearest float64 and lo the rest, rounded. A complex
    value (sqrt' at x < 0) is outside the real function's domain: nan."""
    if isinstance(value, mpmath.mpc) or not mpmath.isfinite(value):
        return float("nan"), 0.0
    hi = float(value)
    with mpmath.workdps(60):
        lo = float(value - mpmath.mpf(hi))
    return hi, lo


def mpmath_reference(expr: sp.Expr, x: np.ndarray, dps: int = 50,
                     n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """d^n expr/dx^n at every x (float64 values, exact), as double-double arrays (hi, lo)."""
    d = sp.diff(expr, x_symbol(), n)
    fn = sp.lambdify([x_symbol()], d, modules="mpmath")
    pairs = [_split(_precise(fn, d, float(v), dps)) for v in x]
    hi, lo = (np.array(column, dtype=np.float64) for column in zip(*pairs)) if pairs \
        else (np.empty(0), np.empty(0))
    return hi, lo


def autograd64_reference(f64: Callable, x: np.ndarray, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Fallback for functions with no symbolic form: vectorized float64 autograd on the CPU."""
    grad = autograd(f64, torch.tensor(x, dtype=torch.float64), n)
    return grad.numpy().copy(), np.zeros_like(x)


def cache_key(engine: str, subject: str, x: np.ndarray, settings: str, n: int = 1) -> str:
    """The file name of one reference: engine, cache format, the function as canonical
    text (Node.key, or sympy's srepr for a symbolic form), the engine's settings (digits;
    target and cap), derivative order and the exact x values."""
    digest = hashlib.sha256()
    for part in (CACHE_VERSION, engine, subject, settings, str(n)):
        digest.update(part.encode())
    digest.update(np.ascontiguousarray(x, dtype=np.float64).tobytes())
    return digest.hexdigest()[:32]


# Cache folders already said to be unwritable in this process.
_UNWRITABLE: set[str] = set()


def cached(key: str, cache_dir: Path | None,
           compute: Callable[[], dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], bool]:
    """compute()'s arrays, read from / written to `cache_dir` when given. Returns (arrays,
    hit). The cache only saves time: an unreadable entry is computed again, and a cache
    that cannot be written is a warning, never a lost run."""
    path = None if cache_dir is None else Path(cache_dir) / f"{key}.npz"
    if path is not None and path.is_file():
        try:
            with np.load(path) as stored:
                return {name: stored[name] for name in stored.files}, True
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged entry: compute it again and replace it
    arrays = compute()
    if path is not None:
        try:
            atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")
        except OSError as err:
            if str(cache_dir) not in _UNWRITABLE:  # once: the hunt asks for many references
                _UNWRITABLE.add(str(cache_dir))
                warnings.warn(f"reference.cache_dir {cache_dir} cannot be written "
                              f"({err.strerror or err}); the reference was computed but not "
                              f"cached")
    return arrays, False


def arb_reference(node, x: np.ndarray, n: int, cache_dir: Path | None) -> tuple[Reference, bool]:
    """The certified reference of an expression tree (points outside its domain: nan, not
    evaluated). Returns (reference, cache hit)."""
    skip = node.outside_domain(x)
    settings = f"target 2^-{ball.TARGET_BITS}, start {ball.START_BITS}, cap {ball.CAP_BITS}"

    def compute() -> dict[str, np.ndarray]:
        c = ball.certify(node, x, n, skip)
        return {"hi": c.hi, "lo": c.lo, "uncertainty": c.uncertainty, "bits": c.bits}

    arrays, hit = cached(cache_key("arb", node.key(), x, settings, n), cache_dir, compute)
    bits = arrays["bits"]
    return Reference(arrays["hi"], arrays["lo"], "arb", arrays["uncertainty"],
                     uncertified=(bits == 0) & ~skip,
                     bits=int(bits.max()) if bits.size else 0), hit


def cached_mpmath_reference(expr: sp.Expr, x: np.ndarray, dps: int, cache_dir: Path | None,
                            n: int = 1) -> tuple[np.ndarray, np.ndarray, bool]:
    """mpmath_reference, read from / written to `cache_dir` when given. Returns (hi, lo, hit)."""
    def compute() -> dict[str, np.ndarray]:
        hi, lo = mpmath_reference(expr, x, dps, n)
        return {"hi": hi, "lo": lo}

    arrays, hit = cached(cache_key("mpmath", sp.srepr(expr), x, str(dps), n), cache_dir, compute)
    return arrays["hi"], arrays["lo"], hit


def richardson_reference(f64: Callable, x64: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Ridders in float64 from two different tableaux, keeping per point the value with the
    smaller error estimate, so one unlucky early stop cannot leak into the reference.
    Its uncertainty is the larger of that estimate and the two tableaux' disagreement."""
    x = torch.tensor(x64, dtype=torch.float64)
    a, err_a = richardson(f64, x, order, h=0.02, con=1.4)
    b, err_b = richardson(f64, x, order, h=0.05, con=2.0)
    value = torch.where(err_a <= err_b, a, b)
    # Below the round-off of the finest difference in the tableau no estimate is trusted.
    with torch.no_grad():
        finest = 0.02 * x.abs().clamp(min=1.0) / 1.4 ** 9
        floor = 4 * torch.finfo(torch.float64).eps * f64(x).abs() / finest ** order
    uncertainty = torch.maximum(torch.minimum(err_a, err_b), (a - b).abs())
    return value.numpy().copy(), torch.maximum(uncertainty, floor).numpy().copy()


def user_reference(derivative: Callable, x64: np.ndarray, order: int) -> np.ndarray:
    """The user's trusted derivative, in float64 (for order 2, differentiated once more by
    float64 autograd: the user vouched for f', not f'')."""
    x = torch.tensor(x64, dtype=torch.float64)
    if order == 1:
        with torch.no_grad():
            return derivative(x).double().numpy().copy()
    return autograd64_reference(derivative, x64, order - 1)[0]


def function_reference(function, x64: np.ndarray, order: int, dps: int,
                       cache_dir: Path | None) -> Reference:
    """The reference an elementwise function's kind calls for (Function.reference_kind)."""
    kind, zeros = function.reference_kind, np.zeros_like(x64)
    if kind == "arb":
        return arb_reference(function.node, x64, order, cache_dir)[0]
    if kind == "mpmath":
        hi, lo, _ = cached_mpmath_reference(function.symbolic(), x64, dps, cache_dir, order)
        return Reference(hi, lo, kind, dps=dps, missing=function.node.without_arb())
    if kind == "user-derivative":
        return Reference(user_reference(function.user_derivative, x64, order), zeros, kind)
    f64 = function.callable_for(torch.float64, "cpu")
    if kind == "float64-richardson":
        value, uncertainty = richardson_reference(f64, x64, order)
        return Reference(value, zeros, kind, uncertainty)
    return Reference(*autograd64_reference(f64, x64, order), kind)
