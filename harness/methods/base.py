"""What a method is, and the pieces every difference method shares.

A method is a pure function `fn(f, x, n=1, **params)`, n being the derivative order: it
sees only the callable and the grid tensor (already in the run's dtype and on its device)
and returns the derivative as a tensor, or a `(derivative, error_estimate)` pair when the
method estimates its own error. It does no I/O, logging or device choice. Its parameters
are a small dataclass whose defaults become the method's Hydra config
(`method.<field>=...`); `check` returns a one-line error for parameters it cannot use, and
`supports` says why a function, dtype, device or derivative order cannot be done (the run
is then recorded as unsupported). A method that also applies to networks carries a `vjp`:
its vector-Jacobian form (harness.methods.vjp).

A difference stencil sum_k w_k f(x + k*step) / step^n has one error model, used by the
failure triage and by the step-size analysis alike: round-off eps * sum|w_k| * |f| / h^n,
truncation sum over m of c_m h^(m-n) |f^(m)(x)| with c_m = |sum_k w_k k^m| / m!.
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional

import torch

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class NoParams:
    """Parameters of a method that takes none."""


def no_check(**_) -> Optional[str]:
    return None


def supports_all(function, dtype, device, n, **_) -> Optional[str]:
    return None


def order_at_most(limit: int, why: str) -> Callable[..., Optional[str]]:
    def supports(function, dtype, device, n, **_) -> Optional[str]:
        return None if n <= limit else why
    return supports


@dataclass(frozen=True)
class VjpForm:
    """A method's form for networks: the vector-Jacobian product vᵀJ of model at x.

    Whole-input forms: fn(model, x, v) -> vᵀJ shaped like x. Per-point forms:
    fn(model, x, v, idx, **params) -> the entries at the flat indices idx."""

    fn: Callable[..., torch.Tensor]
    per_point: bool = False
    # n_outputs -> why the method cannot run on this network, or None.
    supports: Callable[[int], Optional[str]] = lambda n_outputs: None
    # Same values as fn, plus per point whether its stencil crossed a kink.
    with_kinks: Optional[Callable[..., tuple]] = None


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable[..., object]
    params: type = NoParams
    check: Callable[..., Optional[str]] = no_check
    # (function, dtype, device, n, **params) -> reason it cannot run, or None.
    supports: Callable[..., Optional[str]] = supports_all
    # (x, n, **params) -> (lo, hi): the interval of x values the method evaluates f at,
    # so a stencil that crosses a kink, pole or domain edge is excluded and counted.
    reach: Optional[Callable[..., tuple[torch.Tensor, torch.Tensor]]] = None
    # Per-point methods cost one Python-level call per x: the study may evaluate and time
    # them on a subsample of a large grid (and says so in the record).
    per_point: bool = False
    # (dtype, n, **params) -> record fields such as scheme, h, h_mode.
    describe: Callable[..., dict] = lambda dtype, n, **_: {}
    # (x, n, **params) -> (step, offsets): the difference stencil sum_k w_k f(x + k*step),
    # for methods that are one; the failure triage models their round-off and truncation.
    model: Optional[Callable[..., tuple[torch.Tensor, list[int]]]] = None
    # One line for docs tables; the fn's docstring's first sentence when empty.
    summary: str = ""
    # f -> the callable the method is given, built once per run outside the timed region
    # (torch.compile: users compile once and call many times, so that is what is timed).
    prepare: Callable[[Fn], Fn] = lambda f: f
    # Run once before each study, ahead of any `prepare` (torch.compile: a cold compiler).
    begin: Callable[[], None] = lambda: None
    # The prepared callable is specialized to its input's shape (torch.compile with static
    # shapes): the study evaluates chosen points padded to the grid's size, so the kernel
    # that is checked and timed is the one built for the grid, and one probe size is not
    # one more compilation.
    shape_specialized: bool = False
    # The method's form for networks (None: it does not apply to networks).
    vjp: Optional[VjpForm] = None
    # It evaluates f on complex input (the complex step): precision lost inside f's
    # complex kernel gets its own triage class.
    complex_input: bool = False

    @property
    def headline(self) -> str:
        """One line for docs tables and --help: `summary`, else the first sentence of fn's
        docstring."""
        paragraph = " ".join((self.fn.__doc__ or "").strip().split("\n\n")[0].split())
        return self.summary or paragraph.split(". ")[0].rstrip(".")


def parameter_notes(params: type) -> dict[str, str]:
    """{field: the comment above it} of a parameters dataclass (the house's way to document
    a config field, as in Hydra's own schemas), read from its source."""
    notes, comment = {}, []
    for line in inspect.getsource(params).splitlines():
        text = line.strip()
        if not line[:1].isspace():  # the decorator and the class line
            continue
        if text.startswith("#"):
            comment.append(text.lstrip("#").strip())
        elif ":" in text and not text.startswith(('"', "'")):
            notes[text.split(":")[0].strip()] = " ".join(comment)
            comment = []
    return notes


def ones_like(x: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(x)


def scale(x: torch.Tensor) -> torch.Tensor:
    """max(1, |x|): steps are relative for large |x| and absolute near 0."""
    return x.abs().clamp(min=1.0)


def check_h(h: Optional[float], what: str = "method.h") -> Optional[str]:
    if h is not None and not (math.isfinite(h) and h > 0):
        return f"{what} must be a finite number > 0 (or null for the dtype's default), got {h}"
    return None


# --- difference stencils and their error model ------------------------------------------

def weights(n: int, offsets: list[int]) -> list[float]:
    """Exact finite-difference weights for the n-th derivative on these integer offsets."""
    return [float(w) for w in fornberg(n, tuple(offsets))]


@functools.lru_cache(maxsize=None)
def fornberg(n: int, offsets: tuple[int, ...]) -> tuple[Fraction, ...]:
    """Fornberg's recursion (Math. Comp. 51, 1988) in exact rationals: the weights w_k with
    f^(n)(0) = sum_k w_k f(offsets[k]) + O(h^...) for h = 1, using every offset.
    delta[m][k] holds the order-m weight of node k on the nodes seen so far."""
    a = [Fraction(o) for o in offsets]
    delta = [[Fraction(0)] * len(a) for _ in range(n + 1)]
    delta[0][0] = Fraction(1)
    c1 = Fraction(1)
    for j in range(1, len(a)):
        c2 = Fraction(1)
        for k in range(j):
            c3 = a[j] - a[k]
            c2 *= c3
            if k == j - 1:  # the new node's weights, from the previous node's
                for m in range(min(j, n), -1, -1):
                    lower = delta[m - 1][j - 1] if m else Fraction(0)
                    delta[m][j] = c1 * (m * lower - a[j - 1] * delta[m][j - 1]) / c2
            for m in range(min(j, n), -1, -1):  # the old nodes', updated in place
                lower = delta[m - 1][k] if m else Fraction(0)
                delta[m][k] = (a[j] * delta[m][k] - m * lower) / c3
        c1 = c2
    return tuple(delta[n])


def roundoff_factor(n: int, offsets: list[int]) -> float:
    """sum |w_k|: the round-off of the stencil is eps * this * |f| / h^n."""
    return sum(abs(w) for w in weights(n, offsets))


def truncation_terms(n: int, offsets: list[int], count: int = 2) -> list[tuple[int, float]]:
    """The first `count` nonzero Taylor terms (m, c_m) of the stencil's truncation error
    c_m h^(m-n) |f^(m)(x)|, with c_m = |sum_k w_k k^m| / m! from the exact weights.

    Central f' from [-1, 1]: [(3, 1/6), (5, 1/120)]; forward [0, 1]: [(2, 1/2), (3, 1/6)]."""
    w = weights(n, offsets)
    moments = [(m, sum(wk * k**m for wk, k in zip(w, offsets))) for m in range(n + 1, n + 14)]
    return [(m, abs(total) / math.factorial(m)) for m, total in moments if abs(total) > 1e-9][:count]


def represented_step(x: torch.Tensor, h: torch.Tensor, offsets: list[int]) -> torch.Tensor:
    """The step the floating-point grid really takes from x. Measured on the side the
    stencil reaches that is away from zero (where the spacing is coarser), so x + k*step
    is exact on the side towards zero as well; a one-sided stencil uses its own side."""
    if min(offsets) >= 0:
        return (x + h) - x
    if max(offsets) <= 0:
        return x - (x - h)
    return (x.abs() + h) - x.abs()


def combine(f: Fn, x: torch.Tensor, step: torch.Tensor, offsets: list[int], n: int):
    """sum_k w_k f(x + k*step) / step^n, with step as actually represented in x's dtype."""
    step = represented_step(x, step, offsets)
    total = sum(w * f(x + k * step) for w, k in zip(weights(n, offsets), offsets) if w != 0)
    return total / step**n
