"""Certified reference derivatives: Taylor-mode ball arithmetic (Arb, via python-flint).

f^(n)(x) = n! * [t^n] f(x + t), from the primitives' ball forms composed along the
expression tree (harness.functions.arbforms): no symbolic differentiation, any order. Each
coefficient is a ball [mid +/- rad] that provably holds the true value. Per point the
working precision starts at START_BITS and is raised until the ball is tight:

- certified: rad <= 2^-TARGET_BITS * |mid| (2^-106: what a double-double hi + lo carries),
  or the ball holds 0 and rad <= ZERO_BOUND (2^-1100, far below half the smallest float64
  subnormal, so f' is 0 to float64 and an error is measured to within 2^-1100);
- uncertified: still not tight at CAP_BITS, or a piecewise primitive's branch cannot be
  decided (the ball straddles the cut) at any precision up to it. Such a point is
  excluded from every statistic and counted (n_uncertified), never used.

Each certified value is returned as a double-double (hi the nearest float64, lo the
rounded rest) with its uncertainty: the ball's radius plus what the double-double drops.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from flint import arb, arb_series, ctx

from harness.functions.arbforms import Ambiguous
from harness.functions.nodes import Node

TARGET_BITS = 106
ZERO_BOUND = arb(2) ** -1100
START_BITS = 128
# The documented cap: 4096 bits (about 1233 digits). A derivative that loses more than
# ~3900 bits to cancellation inside its ball form is not certified.
CAP_BITS = 4096
# Bits added beyond the measured loss when a ball is too wide, so one retry usually does.
MARGIN_BITS = 32


@dataclass(frozen=True)
class Certified:
    """Per point: hi + lo (nan where not certified), the uncertainty |true - (hi + lo)|
    bound, and the precision in bits that certified it (0: not certified)."""

    hi: np.ndarray
    lo: np.ndarray
    uncertainty: np.ndarray
    bits: np.ndarray


def coefficient(node: Node, x: float, n: int) -> arb:
    """f^(n)(x) as a ball at the current working precision."""
    series = node.arb(arb_series([arb(x), 1], prec=n + 1))
    coeffs = series.coeffs()  # drops trailing exact zeros
    return coeffs[n] * math.factorial(n) if len(coeffs) > n else arb(0)


def is_tight(value: arb) -> bool:
    if not value.is_finite():
        return False
    if value.contains(0):
        return bool(value.rad() <= ZERO_BOUND)
    return bool(value.rad() <= abs(value.mid()) * arb(2) ** -TARGET_BITS)


def next_bits(value: arb | None, bits: int) -> int:
    """Double the precision, or jump past the bits the ball lost when that is further."""
    accuracy = value.rel_accuracy_bits() if value is not None and value.is_finite() else 0
    lost = bits - accuracy if 0 < accuracy < bits else 0
    return max(2 * bits, lost + TARGET_BITS + MARGIN_BITS)


def certify_point(node: Node, x: float, n: int) -> tuple[arb | None, int]:
    """(ball, bits) of f^(n)(x) tight enough, or (None, 0) when the cap is reached."""
    bits = START_BITS
    while True:
        with ctx.workprec(bits):
            try:
                value = coefficient(node, x, n)
            except (Ambiguous, ValueError, ZeroDivisionError):
                # A branch the ball cannot decide, or a series division by a ball that
                # holds 0 (an exponential beyond Arb's range): not certifiable here.
                value = None
            if value is not None and is_tight(value):
                return value, bits
        if bits >= CAP_BITS:
            return None, 0
        bits = min(CAP_BITS, next_bits(value, bits))


def split(value: arb, bits: int) -> tuple[float, float, float]:
    """(hi, lo, uncertainty) of a certified ball: hi the nearest float64 to its midpoint,
    lo the nearest to the rest; uncertainty bounds |true - (hi + lo)| from above."""
    with ctx.workprec(bits + 64):
        mid = value.mid()
        if value.contains(0):
            # Tight around 0: f' is 0 to float64, within the ball's radius.
            return 0.0, 0.0, _up(value.rad() + abs(mid))
        hi = float(mid)
        if not math.isfinite(hi):
            return hi, 0.0, math.inf  # beyond float64's range
        rest = mid - arb(hi)
        lo = float(rest)
        return hi, lo, _up(value.rad() + abs(rest - arb(lo)))


def _up(bound: arb) -> float:
    """A float64 upper bound of a non-negative ball's upper end (0 stays 0: exact)."""
    upper = float(bound.upper())
    return upper if bound.is_zero() else float(np.nextafter(upper, np.inf))


def certify(node: Node, x: np.ndarray, n: int, skip: np.ndarray | None = None) -> Certified:
    """Certified f^(n) at every x (float64 values, exact); points in `skip` (outside f's
    domain) are not evaluated and stay nan with bits 0."""
    size = np.shape(x)[0]
    hi, lo = np.full(size, np.nan), np.zeros(size)
    uncertainty, used_bits = np.full(size, np.nan), np.zeros(size, dtype=np.int64)
    for i, v in enumerate(np.asarray(x, dtype=np.float64)):
        if skip is not None and skip[i]:
            continue
        value, bits = certify_point(node, float(v), n)
        if value is not None:
            hi[i], lo[i], uncertainty[i] = split(value, bits)
            used_bits[i] = bits
    return Certified(hi, lo, uncertainty, used_bits)
