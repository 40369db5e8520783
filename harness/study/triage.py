"""Failure triage: why does a method disagree with the reference at a point?

Every checked point whose error is above the noise floor (NOISE_ULP units in the last
place of the run's dtype, at the reference value) gets one class, tried in this order:

- `kink`: the point, or the method's stencil, touches a kink or pole of f;
- `domain_edge`: the point is outside f's domain or on its edge;
- `cancellation`: the derivative is much smaller than the terms it is computed from
  (sum of |terms| of the symbolic derivative > CANCEL_RATIO x |f'|), and the error is
  what rounding those terms costs (<= ROUND_ULPS * eps * sum|terms|);
- `roundoff`: the error is explained by rounding: for a difference stencil
  eps * sum|w_k| * |f| / h^n (evaluations of f rounded, divided by h^n); for other methods
  ROUND_ULPS * eps * sum|terms| (or, with no symbolic form, ROUND_ULPS * eps *
  max(|f'|, |f|/max(1,|x|))), or within the method's own error estimate;
- `truncation`: the error is explained by the stencil's leading Taylor term
  c * h^p * |f^(n+p)(x)|, with c from the stencil's exact weights;
- `mismatch`: none of the above: a likely bug (a wrong backward, a wrong formula).

A model "explains" an error when error <= EXPLAIN_FACTOR x model. When the reference is
itself an estimate (float64 Ridders for user code), errors within EXPLAIN_FACTOR x its
uncertainty are not triaged: the reference cannot tell them apart. Pure: arrays in, labels out.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import sympy as sp

from harness.functions.numeric import derivative, evaluate
from harness.methods.base import roundoff_factor, truncation_terms

CLASSES = ("kink", "domain_edge", "cancellation", "roundoff", "truncation", "mismatch")
NOISE_ULP = 4.0
ROUND_ULPS = 16.0
CANCEL_RATIO = 8.0
EXPLAIN_FACTOR = 4.0


def term_size(expr: sp.Expr | None, x: np.ndarray, n: int) -> np.ndarray | None:
    """Sum of |additive terms| of d^n f/dx^n at x: the size of what gets cancelled."""
    d = None if expr is None else derivative(expr, n, expand=True)
    if d is None:
        return None
    terms = d.args if isinstance(d, sp.Add) else (d,)
    return sum(np.abs(evaluate(t, x)) for t in terms)


def taylor_term(expr: sp.Expr | None, x: np.ndarray, order: int) -> np.ndarray | None:
    """|f^(order)(x)|, or None when f has no (affordable) symbolic form."""
    d = None if expr is None else derivative(expr, order)
    return None if d is None else np.abs(evaluate(d, x))


def stencil_bounds(higher: Callable[[int], np.ndarray | None], f_abs: np.ndarray, n: int,
                   eps: float, step: np.ndarray, offsets: list[int]):
    """(roundoff, truncation) error models of sum_k w_k f(x + k h) / h^n.

    Truncation is the first two nonzero Taylor terms, c_m h^(m-n) |f^(m)(x)| with
    c_m = |sum_k w_k k^m| / m!: two, so a point where the leading derivative vanishes (sin''
    at a multiple of pi) is still explained. `higher(m)` gives |f^(m)(x)| (symbolic, or
    numeric when f has no symbolic form)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a step that rounded to 0
        roundoff = eps * roundoff_factor(n, offsets) * f_abs / step**n
    terms = truncation_terms(n, offsets)
    derivatives = [higher(m) for m, _ in terms]
    if not terms or any(d is None for d in derivatives):
        return roundoff, None
    truncation = sum(c * np.abs(step) ** (m - n) * d for (m, c), d in zip(terms, derivatives))
    return roundoff, truncation


def classify(abs_err: np.ndarray, ulp_err: np.ndarray, excluded: np.ndarray, ref: np.ndarray,
             eps: float, terms: np.ndarray | None, roundoff: np.ndarray | None,
             truncation: np.ndarray | None, estimate: np.ndarray | None,
             ref_uncertainty: np.ndarray | None = None,
             rounding_scale: np.ndarray | None = None) -> np.ndarray:
    """Per point: '' (within the noise floor, or within what the reference can resolve)
    or one of CLASSES."""
    label = np.full(abs_err.shape, "", dtype=object)
    label[(excluded == "kink") | (excluded == "stencil")] = "kink"
    label[excluded == "domain"] = "domain_edge"
    todo = (excluded == "") & ~(ulp_err <= NOISE_ULP)  # NaN errors are triaged too
    if ref_uncertainty is not None:
        todo &= ~(abs_err <= EXPLAIN_FACTOR * ref_uncertainty)
    scale = terms if terms is not None else rounding_scale
    rounding = None if scale is None else ROUND_ULPS * eps * scale
    cancelled = None if terms is None else \
        (abs_err <= rounding) & (terms > CANCEL_RATIO * np.abs(ref))
    checks = (("cancellation", cancelled),
              ("roundoff", _within(abs_err, [rounding, roundoff, estimate])),
              ("truncation", _within(abs_err, [truncation])))
    if roundoff is not None:
        # The step rounded away (x + h == x): 0/0 is round-off taken to its limit.
        step_lost = todo & ~np.isfinite(abs_err) & np.isinf(roundoff)
        label[step_lost] = "roundoff"
        todo &= ~step_lost
    for name, mask in checks:
        if mask is not None:
            hit = todo & mask
            label[hit] = name
            todo &= ~hit
    label[todo] = "mismatch"
    return label


def _within(abs_err: np.ndarray, models: list[np.ndarray | None]) -> np.ndarray | None:
    """Mask of errors <= EXPLAIN_FACTOR x any of the available models."""
    present = [m for m in models if m is not None]
    if not present:
        return None
    bound = np.max(np.stack([np.abs(m) for m in present]), axis=0)
    return abs_err <= EXPLAIN_FACTOR * bound


def magnitude(ref: np.ndarray, f: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Rounding scale when f has no symbolic form: max(|f'|, |f| / max(1, |x|)), the size of
    the quantities a derivative of f is typically assembled from."""
    return np.maximum(np.abs(ref), np.abs(f) / np.maximum(1.0, np.abs(x)))


def counts(labels: np.ndarray) -> dict:
    return {f"triage_{name}": int(np.sum(labels == name)) for name in CLASSES}
