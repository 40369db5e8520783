"""The elementwise spec: f'(x) (or f''(x)) of a function of one variable on a grid.

Vectorized methods run on the whole grid (that is what is being measured); per-point
methods (the loop) run only on the checked points, which is equivalent point by point.
The reference is evaluated at the exact dtype-rounded x that the method saw.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch

from harness.dtypes import facts
from harness.methods.base import roundoff_factor
from harness.methods.differences import stencil
from harness.study import triage
from harness.study.grid import TAIL_KINDS, check_indices, grid_kind, make_grid
from harness.study.metrics import abs_error, ulp
from harness.study.record import identity_columns
from harness.study.reference import Reference, function_reference
from harness.study.spec import Checked, Raw, Study

# Per-point methods report progress every this many points.
PROGRESS_CHUNK = 2000


class ElementwiseSpec:
    def __init__(self, study: Study) -> None:
        self.study, self.function, self.method = study, study.subject, study.method
        self.x_full = self._grid()
        self.index = check_indices(self.x_full.numel(), study.reference.max_points)
        self.at = torch.as_tensor(self.index, device=study.device)
        self.f = self.function.callable_for(study.dtype, study.device)
        self.f_method = self.f
        self.x_eval = self.x_full[self.at] if self.method.per_point else self.x_full

    def _grid(self) -> torch.Tensor:
        """The grid; a tail grid (binades, random) kept to the function's domain."""
        s = self.study
        x = make_grid(s.grid, s.dtype, s.device, s.seed)
        if grid_kind(s.grid) in TAIL_KINDS:
            inside = ~self.function.outside_domain(_numpy(x))
            x = x[torch.as_tensor(inside, device=x.device)]
        return x

    def identity(self, run_dir: Path) -> dict:
        s = self.study
        return identity_columns(
            self.function.name, self.function.source, self.method.name,
            self.method.describe(s.dtype, s.order, **s.params), s.order, facts(s.dtype).name,
            s.device.type, self.x_full.numel(), s.seed, run_dir,
            notes="; ".join(self.function.notes()))

    def unsupported(self) -> Optional[str]:
        s = self.study
        return self.method.supports(self.function, s.dtype, s.device, s.order, **s.params)

    def prepare(self) -> None:
        if self.function.source == "py":  # your code: check what it returns before using it
            self.function.check_user_code(self.x_full)
        self.f_method = self.method.prepare(self.f)

    def _once(self, x: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        return evaluate(self.study, self.f_method, x, self.x_eval.numel())

    def call(self, log: Callable[[str], None]) -> Raw:
        """The method at every point of x_eval (per-point methods in chunks, with progress)."""
        x = self.x_eval
        if not self.method.per_point or x.numel() <= PROGRESS_CHUNK:
            return Raw(*self._once(x))
        parts, start = [], time.perf_counter()
        for lo in range(0, x.numel(), PROGRESS_CHUNK):
            parts.append(self._once(x[lo:lo + PROGRESS_CHUNK])[0])
            done = lo + parts[-1].numel()
            log(f"  {self.method.name}: {done}/{x.numel()} points "
                f"({time.perf_counter() - start:.1f} s)")
        return Raw(torch.cat(parts))

    def call_at(self, x64: np.ndarray) -> tuple[torch.Tensor, Raw]:
        """The method at chosen points (values of the run's dtype, given in float64)."""
        x = self.tensor(x64)
        return x, Raw(*self._once(x))

    def tensor(self, x64: np.ndarray) -> torch.Tensor:
        """float64 values of the run's dtype back as the run's tensor (exact)."""
        s = self.study
        return torch.as_tensor(np.asarray(x64, dtype=np.float64)).to(s.dtype).to(s.device)

    def checked_at(self, x: torch.Tensor, raw: Raw) -> Checked:
        """Checked values at points off the grid (index -1)."""
        with torch.no_grad():
            fx = self.f(x)
        estimate = None if raw.estimate is None else _numpy(raw.estimate)
        return Checked(np.full(x.numel(), -1), _numpy(x), _numpy(raw.values), estimate,
                       f=_numpy(fx))

    def checked(self, raw: Raw) -> Checked:
        values, estimate = raw.values, raw.estimate
        if not self.method.per_point:
            values = values[self.at]
            estimate = None if estimate is None else estimate[self.at]
        x = self.x_full[self.at]
        with torch.no_grad():
            fx = self.f(x)
        return Checked(self.index, _numpy(x), _numpy(values),
                       None if estimate is None else _numpy(estimate), f=_numpy(fx))

    def reference(self, checked: Checked) -> Reference:
        conf = self.study.reference
        cache = Path(conf.cache_dir) if conf.cache_dir else None
        return function_reference(self.function, checked.x, self.study.order, conf.dps, cache)

    def exclusions(self, checked: Checked, ref: Reference) -> np.ndarray:
        """Per point: '' (checked), 'uncertified' (the reference could not be certified),
        'domain', 'kink', 'stencil' (a stencil across a kink) or 'beyond_range' (the true
        derivative is beyond the dtype's range: inf is its rounding); the later reasons win."""
        x64, function = checked.x, self.function
        uncertified = np.zeros(x64.shape, dtype=bool) if ref.uncertified is None \
            else ref.uncertified
        outside = function.outside_domain(x64)
        with np.errstate(invalid="ignore"):
            beyond = ~outside & ~uncertified & (np.abs(ref.hi) >= overflow_threshold(self.study.dtype))
        domain = outside | (~np.isfinite(ref.hi) & ~uncertified & ~beyond)
        kink = function.singular_in(x64, x64) & ~domain
        stencil = np.zeros_like(kink)
        if self.method.reach is not None:
            x = self.tensor(x64)
            lo, hi = (_numpy(t) for t in self.method.reach(x, n=self.study.order,
                                                            **self.study.params))
            stencil = function.singular_in(lo, hi) & ~domain & ~kink
        reason = np.full(x64.shape, "", dtype=object)
        for name, mask in (("uncertified", uncertified), ("beyond_range", beyond),
                           ("domain", domain), ("kink", kink),
                           ("stencil", stencil)):
            reason[mask] = name
        return reason

    def timed(self):
        s, x = self.study, self.x_eval

        def forward():
            with torch.no_grad():
                return self.f(x)

        return (lambda: self.method.fn(self.f_method, x, n=s.order, **s.params)), forward

    def n_timed(self) -> int:
        return self.x_eval.numel()

    def extra(self, checked: Checked, ref: Reference, points: pd.DataFrame) -> dict:
        """The failure triage of every point (a `triage` column) and its counts."""
        points["triage"] = triage_points(self.study, self.tensor(checked.x), points,
                                         checked.estimate, self.x_eval.numel())
        return triage.counts(points["triage"].to_numpy())


def evaluate(study: Study, f, x: torch.Tensor,
             size: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(values, estimate or None) of the study's method on the prepared f at x. A
    shape-specialized method sees x in pieces of exactly `size` elements (the grid's), the
    last one padded with its own last point, so that points off the grid reuse the kernel
    built for the grid: an elementwise derivative at a point does not depend on its
    neighbours."""
    s = study

    def run(z: torch.Tensor):
        result = s.method.fn(f, z, n=s.order, **s.params)
        return result if isinstance(result, tuple) else (result, None)

    m = x.numel()
    if not s.method.shape_specialized or m == size or m == 0:
        return run(x)
    pieces = []
    for lo in range(0, m, size):
        piece = x[lo:lo + size]
        short = size - piece.numel()
        values, estimate = run(torch.cat([piece, piece[-1:].expand(short)]) if short else piece)
        pieces.append((values[:piece.numel()],
                       None if estimate is None else estimate[:piece.numel()]))
    values = torch.cat([v for v, _ in pieces])
    estimate = None if pieces[0][1] is None else torch.cat([e for _, e in pieces])
    return values, estimate


def overflow_threshold(dtype: torch.dtype) -> float:
    """The smallest magnitude that rounds to inf in `dtype`: its largest finite number plus
    half a unit in its last place (inf for float64, whose halfway point is not a double)."""
    emax = math.frexp(torch.finfo(dtype).max)[1] - 1
    with np.errstate(over="ignore"):
        return float(np.float64(2 - 2.0 ** -(facts(dtype).nmant + 1)) * np.float64(2.0) ** emax)


def _numpy(t: torch.Tensor) -> np.ndarray:
    # force: autograd returns a ZeroTensor for a derivative it knows is 0 (abs's f'').
    return t.detach().double().cpu().numpy(force=True)


def higher_derivative(study: Study, x64: np.ndarray) -> Callable[[int], np.ndarray | None]:
    """m -> |f^(m)(x)|: symbolic when f has a symbolic form, else a float64 central stencil
    (accuracy 2, step eps^(1/(m+2))), which is plenty for an error *model*."""
    expr = study.subject.symbolic()
    if expr is not None:
        return lambda m: triage.taylor_term(expr, x64, m)
    f64 = study.subject.callable_for(torch.float64, "cpu")
    x = torch.tensor(x64, dtype=torch.float64)
    return lambda m: stencil(f64, x, n=m, accuracy=2).abs().numpy()


def dtype_run(study: Study, x: torch.Tensor, df: np.ndarray, ref: Reference,
              dtype: torch.dtype) -> triage.DtypeRun:
    """Errors of one evaluation at x (in `dtype`) against the reference there (inf where the
    method returned nan/inf), with the method's stencil gain."""
    err = np.where(np.isfinite(df), abs_error(df, ref.hi, ref.lo), np.inf)
    return triage.DtypeRun(err, err / ulp(ref.hi, dtype), facts(dtype).eps,
                           stencil_gain(study, x))


def stencil_gain(study: Study, x: torch.Tensor) -> np.ndarray | None:
    """sum|w_k| / h^n of a difference method's stencil at x (None for other methods)."""
    if study.method.model is None:
        return None
    step, offsets = study.method.model(x, n=study.order, **study.params)
    with np.errstate(divide="ignore"):
        return roundoff_factor(study.order, offsets) / np.abs(_numpy(step)) ** study.order


def comparison_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for a narrower run; float32 for a float64 run (there is nothing wider)."""
    return torch.float32 if dtype == torch.float64 else torch.float64


def other_dtype_run(study: Study, x64: np.ndarray, todo: np.ndarray,
                    size: int) -> triage.DtypeRun | None:
    """The same method at the points in `todo`, in the comparison dtype (at x rounded to
    it), against the reference there; nan elsewhere. None when it cannot run. `size`: the
    grid's, to which a shape-specialized method's points are padded (see evaluate)."""
    s, other = study, comparison_dtype(study.dtype)
    if not todo.any() or s.method.supports(s.subject, other, s.device, s.order, **s.params):
        return None
    x = torch.tensor(x64[todo], dtype=torch.float64).to(device=s.device, dtype=other)
    try:
        f = s.method.prepare(s.subject.callable_for(other, s.device))
        values = _numpy(evaluate(s, f, x, size)[0])
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return None  # no kernel for this dtype: the evidence is simply not there
    conf = s.reference
    ref = function_reference(s.subject, _numpy(x), s.order, conf.dps,
                             Path(conf.cache_dir) if conf.cache_dir else None)
    part = dtype_run(s, x, values, ref, other)
    return triage.DtypeRun(*(_spread(a, todo) for a in (part.abs_err, part.ulp_err)),
                           part.eps, None if part.gain is None else _spread(part.gain, todo))


def _spread(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """values at the True positions of `where`, nan elsewhere."""
    out = np.full(where.shape, np.nan)
    out[where] = values
    return out


def stencil_models(study: Study, x: torch.Tensor, points: pd.DataFrame):
    """(roundoff, truncation) of a difference method's stencil, or (None, None). The
    round-off scale is the largest |f| the stencil evaluates (in float64)."""
    if study.method.model is None:
        return None, None
    x64, n = points["x"].to_numpy(), study.order
    step, offsets = study.method.model(x, n=n, **study.params)
    step = _numpy(step)
    f64 = study.subject.callable_for(torch.float64, "cpu")
    with torch.no_grad():
        f_abs = np.max([np.abs(_numpy(f64(torch.tensor(x64 + k * step)))) for k in offsets],
                       axis=0)
    return triage.stencil_bounds(higher_derivative(study, x64), f_abs, n,
                                 facts(study.dtype).eps, step, offsets)


def triage_points(study: Study, x: torch.Tensor, points: pd.DataFrame,
                  estimate: np.ndarray | None, size: int) -> np.ndarray:
    """Class of each point's error (see harness.study.triage); `size`: the grid's."""
    x64, df = points["x"].to_numpy(), points["df"].to_numpy()
    ref = Reference(points["df_ref"].to_numpy(), points["df_ref_lo"].to_numpy(), "")
    run = dtype_run(study, x, df, ref, study.dtype)
    excluded = points["excluded"].to_numpy()
    limited = (points["verdict"] == "reference_limited").to_numpy()
    todo = triage.to_classify(excluded, limited, run)
    roundoff, truncation = stencil_models(study, x, points)
    info = torch.finfo(study.dtype)
    evidence = triage.Evidence(
        run, np.abs(df), np.abs(points["f"].to_numpy()), np.abs(ref.hi), info.tiny, info.max,
        np.abs(x64), roundoff, truncation, estimate, other_dtype_run(study, x64, todo, size),
        study.method.complex_input, study.order)
    return triage.classify(excluded, limited, evidence)
