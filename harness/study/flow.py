"""run_study: the one pipeline every study runs, whatever it differentiates.

support -> evaluate (the first call, timed apart) -> reference -> exclusions -> metrics ->
hunt (elementwise: local search for the worst point, harness.study.hunt) -> timing -> record. Order matters for honest numbers: the method's values are computed and
checked first, timing comes after (and never includes the reference or the plotting), and
the reference is evaluated at the exact dtype-rounded x that the method saw. What differs
between an elementwise function and a network is the spec (harness.study.spec).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import pandas as pd
import torch

from harness.methods import METHODS
from harness.study import hunt, triage
from harness.study.elementwise import ElementwiseSpec
from harness.study.machine import load_snapshot
from harness.study.metrics import estimate_calibration, point_errors, summarize, verdicts
from harness.study.network import NetworkSpec
from harness.study.record import (Unsupported, exclusion_counts, failure, timing_columns,
                                  unsupported_reason)
from harness.study.reference import Reference, reference_columns
from harness.study.spec import Checked, NetworkSubject, Spec, Study
from harness.study.timing import (PairTiming, combine, measure_pair, synced_timer, threads,
                                  timing_threads)

# Runs k fresh processes that each time the same study: k -> their measurements (run.py's
# app layer provides it; see harness.app.timing_worker).
TimingWorkers = Callable[[int], list[PairTiming]]


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


def run_study(study: Study, run_dir: Path, log: Callable[[str], None] = print,
              timing_workers: Optional[TimingWorkers] = None) -> Outcome:
    """One subject x method x order x dtype x device: values, errors, timing, a record."""
    torch.manual_seed(study.seed)
    spec = make_spec(study)
    with threads(study_threads(spec, study)):
        return _run_study(spec, study, run_dir, log, timing_workers)


def study_threads(spec: Spec, study: Study) -> int:
    """An elementwise study runs at the thread count it is timed at: what is checked is
    what is timed, and a compiled kernel (Dynamo guards on the thread count) is built once.
    A network study keeps torch's default: its float64 reference and cross-checks are
    matrix work that wants every core, and no network method compiles."""
    if isinstance(spec, NetworkSpec):
        return torch.get_num_threads()
    return timing_threads(study.timing, spec.n_timed())[0]


def _run_study(spec: Spec, study: Study, run_dir: Path, log: Callable[[str], None],
               timing_workers: Optional[TimingWorkers]) -> Outcome:
    identity = spec.identity(run_dir)
    try:
        first_call_s, raw = first_call(spec, study, log)
    except Unsupported as err:
        return Outcome(failure(identity, "unsupported", f"{study.method.name}: {err}"),
                       pd.DataFrame())
    checked = spec.checked(raw)
    ref = spec.reference(checked)
    reason = spec.exclusions(checked, ref)
    points = points_table(checked, ref, reason, study.dtype)
    extra = spec.extra(checked, ref, points)
    if isinstance(spec, ElementwiseSpec):
        extra.update(hunt_columns(spec, study, points))
    timing = measure(spec, study, log, timing_workers) if study.timing.enabled else {}
    record = {**identity, **accuracy_columns(study, checked, ref, reason),
              "time_first_call_s": first_call_s, "n_timed": 0, **timing, **extra}
    return Outcome(record, points)


def first_call(spec: Spec, study: Study, log: Callable[[str], None]):
    """(seconds, values) of the method's first call; Unsupported when it cannot run."""
    with unsupported_errors():
        reason = spec.unsupported()
        if reason:
            raise Unsupported(reason)
        study.method.begin()
        spec.prepare()
        start = synced_timer()
        raw = spec.call(log)
        return synced_timer() - start, raw


def probe(spec: ElementwiseSpec, study: Study, x64: np.ndarray) -> pd.DataFrame:
    """The pipeline's accuracy steps at chosen points: method, reference, exclusions,
    errors and triage, as a points table (what the hunt evaluates)."""
    x, raw = spec.call_at(x64)
    checked = spec.checked_at(x, raw)
    ref = spec.reference(checked)
    points = points_table(checked, ref, spec.exclusions(checked, ref), study.dtype)
    spec.extra(checked, ref, points)
    return points


def hunt_columns(spec: ElementwiseSpec, study: Study, points: pd.DataFrame) -> dict:
    """Where the hunt found the largest error, and the study's method and the cross-check
    methods evaluated there alone (one element, as a repro line evaluates it: a vectorized
    kernel may round differently from the scalar one)."""
    hunted = pd.DataFrame()
    if study.hunt.rounds > 0:
        with unsupported_errors():
            hunted = hunt.hunt(lambda x: probe(spec, study, x), points, study.dtype, study.hunt)
    worst_x = hunt.worst_x(points, hunted)
    n_wrong_hunt = int(hunt.wrong(hunted).sum()) if len(hunted) else 0
    columns = {"n_hunt": len(hunted), "n_wrong_hunt": n_wrong_hunt,
               "n_wrong_found": int(hunt.wrong(points).sum()) + n_wrong_hunt, "worst_x": worst_x}
    at_worst = hunt.at_worst_columns(probe(spec, study, np.array([worst_x]))
                                     if not np.isnan(worst_x) else None)
    # Only a finding needs a workaround: elsewhere the cross-check would cost for nothing.
    finding = at_worst["worst_ulp"] > triage.NOISE_ULP
    return {**columns, **at_worst, **cross_check(study, worst_x if finding else np.nan)}


# Methods tried at the worst point, so a reader knows whether a workaround gets it right.
CROSS_CHECK = ("autograd", "forward_ad", "complex_step")


def cross_check(study: Study, worst_x: float) -> dict:
    """ulp_at_worst_<method>: each CROSS_CHECK method's ULP error at worst_x, alone (NaN
    where it does not apply or fails, or where there is no worst point or no finding)."""
    columns = {f"ulp_at_worst_{name}": float("nan") for name in CROSS_CHECK}
    if np.isnan(worst_x):
        return columns
    for name in CROSS_CHECK:
        other = ElementwiseSpec(replace(study, method=METHODS.get(name), params={}))
        if other.unsupported():
            continue
        try:
            table = probe(other, study, np.array([worst_x]))
        except (RuntimeError, NotImplementedError, TypeError, ValueError):
            continue  # e.g. forward mode of an autograd.Function without jvp: no workaround
        columns[f"ulp_at_worst_{name}"] = hunt.at_worst_columns(table)["worst_ulp"]
    return columns


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


def measure(spec: Spec, study: Study, log: Callable[[str], None],
            workers: Optional[TimingWorkers] = None) -> dict:
    """The timing columns: the method and the forward pass on the same input, interleaved
    (harness.study.timing), here or in timing.processes fresh processes."""
    n_timed = spec.n_timed()
    threads, rule = timing_threads(study.timing, n_timed)
    before = load_snapshot()
    k = study.timing.processes
    if k > 1 and workers is not None:
        log(f"  timing in {k} fresh processes ...")
        pair = combine(workers(k))
    else:
        pair = time_spec(spec, study, threads)
    return timing_columns(pair, n_timed, rule, before)


def time_spec(spec: Spec, study: Study, threads: int) -> PairTiming:
    """The protocol in this process, on a spec whose first call has run."""
    method_call, forward_call = spec.timed()
    return measure_pair(method_call, forward_call, budget=study.timing, num_threads=threads,
                        cpu_bound=study.device.type == "cpu")


def time_study(study: Study, log: Callable[[str], None] = print) -> PairTiming:
    """Only the timing of a study, from scratch (what a fresh timing process runs)."""
    torch.manual_seed(study.seed)
    spec = make_spec(study)
    with threads(study_threads(spec, study)):
        first_call(spec, study, log)
        return time_spec(spec, study, timing_threads(study.timing, spec.n_timed())[0])


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
