"""run_study: the one pipeline every study runs, whatever it differentiates.

support -> evaluate (the first call, timed apart) -> reference -> exclusions -> metrics ->
timing -> record. Order matters for honest numbers: the method's values are computed and
checked first, timing comes after (and never includes the reference or the plotting), and
the reference is evaluated at the exact dtype-rounded x that the method saw. What differs
between an elementwise function and a network is the spec (harness.study.spec).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch
from torch.utils.benchmark.utils.timer import timer as synced_timer

from harness.study.elementwise import ElementwiseSpec
from harness.study.metrics import estimate_calibration, point_errors, summarize, verdicts
from harness.study.network import NetworkSpec
from harness.study.record import (Unsupported, exclusion_counts, failure, timing_columns,
                                  unsupported_reason)
from harness.study.reference import Reference, reference_columns
from harness.study.spec import Checked, NetworkSubject, Spec, Study
from harness.study.timing import time_call


@dataclass(frozen=True)
class Outcome:
    record: dict
    points: pd.DataFrame


def make_spec(study: Study) -> Spec:
    return NetworkSpec(study) if isinstance(study.subject, NetworkSubject) else ElementwiseSpec(study)


@contextmanager
def unsupported_errors() -> Iterator[None]:
    """torch's 'no kernel for this dtype/device' errors become Unsupported; others pass."""
    try:
        yield
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as err:
        reason = unsupported_reason(err)
        if reason is None:
            raise
        raise Unsupported(reason) from err


def run_study(study: Study, run_dir: Path, log: Callable[[str], None] = print) -> Outcome:
    """One subject x method x order x dtype x device: values, errors, timing, a record."""
    torch.manual_seed(study.seed)
    spec = make_spec(study)
    identity = spec.identity(run_dir)
    try:
        with unsupported_errors():
            reason = spec.unsupported()
            if reason:
                raise Unsupported(reason)
            spec.prepare()
            start = synced_timer()
            raw = spec.call(log)
            first_call_s = synced_timer() - start
    except Unsupported as err:
        return Outcome(failure(identity, "unsupported", f"{study.method.name}: {err}"),
                       pd.DataFrame())
    checked = spec.checked(raw)
    ref = spec.reference(checked)
    reason = spec.exclusions(checked, ref)
    points = points_table(checked, ref, reason, study.dtype)
    extra = spec.extra(checked, ref, points)
    timing = measure(spec, study) if study.timing.enabled else (None, None, 0)
    record = {**identity, **accuracy_columns(study, checked, ref, reason),
              **timing_columns(*timing, first_call_s=first_call_s), **extra}
    return Outcome(record, points)


def accuracy_columns(study: Study, checked: Checked, ref: Reference, reason: np.ndarray) -> dict:
    excluded = reason != ""
    return {
        "n_checked": len(checked.index), "x_min": float(checked.x.min()),
        "x_max": float(checked.x.max()),
        **reference_columns(ref, ~excluded & np.isfinite(ref.hi)),
        "status": "ok", "status_reason": "",
        **summarize(checked.df, ref.hi, ref.lo, excluded, study.dtype, ref.uncertainty),
        **estimate_calibration(checked.estimate, checked.df, ref.hi, ref.lo, excluded),
        **exclusion_counts(reason),
    }


def measure(spec: Spec, study: Study) -> tuple:
    """Steady-state time of the method and of the plain forward pass, on the same input."""
    method_call, forward_call, n_timed = spec.timed()
    threads = study.timing.num_threads or torch.get_num_threads()
    run_time = study.timing.min_run_time
    return (time_call(method_call, min_run_time=run_time, num_threads=threads),
            time_call(forward_call, min_run_time=run_time, num_threads=threads), n_timed)


def points_table(checked: Checked, ref: Reference, reason: np.ndarray,
                 dtype: torch.dtype) -> pd.DataFrame:
    """One row per checked point: where, the values, the errors, why excluded, the verdict."""
    abs_err, ulp_err = point_errors(checked.df, ref.hi, ref.lo, dtype)
    columns = {"index": checked.index, "x": checked.x}
    if checked.f is not None:
        columns["f"] = checked.f
    table = pd.DataFrame({**columns, "df": checked.df, "df_ref": ref.hi, "df_ref_lo": ref.lo,
                          "abs_err": abs_err, "ulp_err": ulp_err,
                          "excluded": reason.astype(str),
                          "verdict": verdicts(checked.df, ref.hi, ref.lo, reason != "", dtype,
                                              ref.uncertainty).astype(str)})
    if checked.estimate is not None:
        table["err_estimate"] = checked.estimate
    if ref.uncertainty is not None:
        table["df_ref_uncertainty"] = ref.uncertainty
    return table
