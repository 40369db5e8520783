"""Failure triage: why does a method disagree with the reference at a point?

Every checked point whose error is above the noise floor (NOISE_ULP units in the last
place of the run's dtype, at the reference value) and that the reference resolves (not
reference-limited, harness.study.metrics) gets one class. Each class is a measurable
criterion on the method's results; none reads the function's formula, so the same
phenomenon gets the same label for a builtin, an expression, a torch.nn module or user
code. Tried in this order:

- `kink`: the point, or the method's stencil, touches a kink or pole of f;
- `domain_edge`: the point is outside f's domain or on its edge;
- `roundoff`: explained by rounding: for a difference stencil eps * sum|w_k| * |f| / h^n
  (evaluations of f rounded, divided by h^n, also when x + h rounds back to x); else
  ROUND_ULPS * eps * |f'| (a few roundings of quantities the size of the result), or the
  method's own error estimate;
- `truncation`: explained by the stencil's leading Taylor terms c * h^p * |f^(n+p)(x)|;
- precision lost in a correct formula, when the error is
  *precision-dependent*: the same method at the same point in another dtype (float64, or
  float32 for a float64 run) shows it scaling with the dtype's precision, as rounding does
  (in the narrower dtype it is above its noise floor and larger by more than
  sqrt(eps_narrow / eps_wide)), where a wrong formula's error does not change; or
  *absorbed*: within EXPLAIN_FACTOR x ROUND_ULPS x eps x S in every dtype tried, S the
  size of the terms a formula is typically built from (unit_scale: 1, |x|, |x|^-n,
  |f|/max(1,|x|)) when S > CANCEL_RATIO x |f'| (a difference stencil multiplies by its
  gain sum|w_k|/h^n: f itself was computed from such terms). Named by its symptom:
  - `overflow`: the result is nan/inf (and f' is finite);
  - `underflow`: f', or the (non-zero) result, is below the dtype's smallest normal
    number (a result of exactly 0 where f' is normal is `cancellation`: lost entirely);
  - `complex_kernel`: the method evaluates f on complex input (the complex step cannot
    cancel, so the loss is inside f's complex kernel);
  - `cancellation`: the rest;
- `overflow` also: a nan/inf result where |f| or |f'| is within a factor 1/eps of the
  dtype's largest finite number;
- `mismatch`: none of the above: the error does not scale with precision and no model
  explains it, so the math is likely wrong (a wrong backward, a wrong formula).

A model "explains" an error when error <= EXPLAIN_FACTOR x model. Pure: arrays in, labels
out; the evaluation in the other dtype is done by the study (harness.study.elementwise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from harness.functions.numeric import derivative, evaluate
from harness.lazy import sympy as sp
from harness.methods.base import roundoff_factor, truncation_terms

CLASSES = ("kink", "domain_edge", "roundoff", "truncation", "cancellation", "underflow",
           "overflow", "complex_kernel", "mismatch")
# The precision-loss classes: a correct formula, evaluated in too few bits.
PRECISION_LOSS = ("cancellation", "underflow", "overflow", "complex_kernel")
NOISE_ULP = 4.0
ROUND_ULPS = 16.0
CANCEL_RATIO = 8.0
EXPLAIN_FACTOR = 4.0


@dataclass(frozen=True)
class DtypeRun:
    """One evaluation of the method at the triaged points, in one dtype: its absolute
    errors (inf where it returned nan/inf), its errors in ULPs of that dtype, its eps, and
    for a difference stencil its gain sum|w_k| / h^n (what it multiplies f's rounding by)."""

    abs_err: np.ndarray
    ulp_err: np.ndarray
    eps: float
    gain: np.ndarray | None = None


@dataclass(frozen=True)
class Evidence:
    """What the classes are judged on, per point (None where a run has no such model)."""

    run: DtypeRun
    # |f'(x)| as computed (nan/inf kept), |f(x)|, |f'(x)| (the reference), and the run
    # dtype's smallest normal and largest finite numbers.
    df_abs: np.ndarray
    f_abs: np.ndarray
    ref_abs: np.ndarray
    tiny: float
    huge: float
    x_abs: np.ndarray | None = None
    # The difference stencil's round-off and truncation models, the method's estimate.
    roundoff: np.ndarray | None = None
    truncation: np.ndarray | None = None
    estimate: np.ndarray | None = None
    # The same method in the comparison dtype (float64, or float32 for a float64 run).
    other: DtypeRun | None = None
    # The method evaluates f on complex input (the complex step).
    complex_input: bool = False
    # The derivative's order.
    order: int = 1


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


def precision_dependent(run: DtypeRun, other: DtypeRun | None) -> np.ndarray | None:
    """Mask of errors that scale with the dtype's precision (see the module doc)."""
    if other is None:
        return None
    narrow, wide = (run, other) if run.eps > other.eps else (other, run)
    factor = math.sqrt(narrow.eps / wide.eps)
    # An inf/nan in the comparison run when it is the narrower one is its range running
    # out, not evidence about the run's precision (sinh'(500) overflows float32 whatever a
    # float64 backward does); in the run itself it is the symptom being explained.
    narrow_said = np.isfinite(narrow.abs_err) | (narrow is run)
    with np.errstate(invalid="ignore"):
        return (narrow.ulp_err > NOISE_ULP) & (narrow.abs_err >= factor * wide.abs_err) \
            & np.isfinite(wide.abs_err) & narrow_said


def unit_scale(e: Evidence) -> np.ndarray:
    """max(1, |x|, |x|^-n, |f| / max(1, |x|)): the size of the terms f and its n-th
    derivative are typically assembled from: constants (the 1 in 1 + erf), x (in
    x * sigmoid(x)), x^-n (the n-th derivative of a removable singularity computed by
    dividing by x, as in sin(pi x)/(pi x)), and f itself."""
    x_abs = np.zeros_like(e.f_abs) if e.x_abs is None else e.x_abs
    with np.errstate(divide="ignore", over="ignore"):
        inverse = np.where(x_abs > 0, x_abs ** -float(e.order), 1.0)
    return np.maximum.reduce([np.ones_like(x_abs), x_abs, inverse,
                              e.f_abs / np.maximum(1.0, x_abs)])


def absorbed(e: Evidence) -> np.ndarray:
    """Mask of errors within the rounding of unit-size terms (times a stencil's gain, for
    a difference method: f itself was computed from them) in every dtype tried, at points
    where those terms are much larger than f' (a term absorbed by a larger one)."""
    scale = unit_scale(e)
    runs = [e.run] + ([e.other] if e.other is not None else [])
    within = [r.abs_err <= EXPLAIN_FACTOR * r.eps * scale
              * (ROUND_ULPS if r.gain is None else np.maximum(ROUND_ULPS, r.gain))
              for r in runs]
    return np.logical_and.reduce(within) & (scale > CANCEL_RATIO * e.ref_abs)


def precision_loss_class(e: Evidence) -> np.ndarray:
    """The symptom's name for each point, assuming precision was lost there."""
    name = np.full(e.df_abs.shape, "complex_kernel" if e.complex_input else "cancellation",
                   dtype=object)
    name[(e.ref_abs < e.tiny) | ((e.df_abs < e.tiny) & (e.df_abs > 0))] = "underflow"
    name[~np.isfinite(e.df_abs)] = "overflow"
    return name


def to_classify(excluded: np.ndarray, limited: np.ndarray, run: DtypeRun) -> np.ndarray:
    """Mask of the points that get a class beyond kink/domain_edge: checked, resolved by the
    reference, and above the noise floor (nan/inf errors included)."""
    return (excluded == "") & ~(run.ulp_err <= NOISE_ULP) & ~limited


def classify(excluded: np.ndarray, limited: np.ndarray, e: Evidence) -> np.ndarray:
    """Per point: '' (within the noise floor, excluded for another reason, or not resolved
    by the reference) or one of CLASSES."""
    label = np.full(excluded.shape, "", dtype=object)
    label[(excluded == "kink") | (excluded == "stencil")] = "kink"
    label[excluded == "domain"] = "domain_edge"
    todo = to_classify(excluded, limited, e.run)
    df_finite = np.isfinite(e.df_abs)
    if e.roundoff is not None:
        # The step rounded away (x + h == x): 0/0 is round-off taken to its limit.
        step_lost = todo & ~df_finite & np.isinf(e.roundoff)
        label[step_lost] = "roundoff"
        todo &= ~step_lost
    dependent = precision_dependent(e.run, e.other)
    lost = absorbed(e) | (dependent if dependent is not None else False)
    loss_name = precision_loss_class(e)
    near_max = ~df_finite & (np.maximum(e.f_abs, e.ref_abs) >= e.huge * e.run.eps)
    checks = (
        (_within(e.run.abs_err, [ROUND_ULPS * e.run.eps * e.ref_abs, e.roundoff, e.estimate]),
         "roundoff"),
        (_within(e.run.abs_err, [e.truncation]), "truncation"),
        (lost, loss_name),
        (near_max, "overflow"),
    )
    for mask, name in checks:
        if mask is None:
            continue
        hit = todo & mask
        label[hit] = name[hit] if isinstance(name, np.ndarray) else name
        todo &= ~hit
    label[todo] = "mismatch"
    return label


def _within(abs_err: np.ndarray, models: list[np.ndarray | None]) -> np.ndarray | None:
    """Mask of errors <= EXPLAIN_FACTOR x any of the available models."""
    present = [m for m in models if m is not None]
    if not present:
        return None
    bound = np.max(np.stack([np.abs(m) for m in present]), axis=0)
    with np.errstate(invalid="ignore"):
        return abs_err <= EXPLAIN_FACTOR * bound


def counts(labels: np.ndarray) -> dict:
    return {f"triage_{name}": int(np.sum(labels == name)) for name in CLASSES}
