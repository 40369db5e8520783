"""The record: one row per study, whatever its status. The columns every record has come
from here, so a finished run, an unsupported one and a failed job group alike."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from harness.study.machine import machine_info
from harness.study.timing import PairTiming, spread

# Statuses: ok (numbers), and the failures that carry a reason instead.
OK = "ok"
STATUSES = (OK, "invalid", "unsupported", "timeout", "oom", "error")
# Phrases with which torch (and the peers) say an op has no kernel for a dtype or device:
# such a run is `unsupported`, not an error.
# "derivative for aten::hardsigmoid_backward is not implemented": no second derivative.
UNSUPPORTED_PHRASES = ("not implemented for", "not supported", "does not support",
                       "does not currently support", "is not implemented")


class Unsupported(Exception):
    """The method cannot compute this function in this dtype/device/order."""


def unsupported_reason(err: BaseException) -> Optional[str]:
    """torch's 'no kernel for this dtype/device' errors, as one line; None for other errors."""
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return first_line[:300] if any(p in first_line for p in UNSUPPORTED_PHRASES) else None


def identity_columns(fn: str, fn_source: str, method: str, describe: dict, order: int,
                     dtype: str, device: str, n: float, seed: int, run_dir: Path,
                     notes: str = "") -> dict:
    """What ran, where and when: the columns every record has, whatever its status."""
    return {
        "fn": fn, "fn_source": fn_source, "method": method, "scheme": "", "h": math.nan,
        "h_mode": "", "accuracy_order": math.nan, **describe,
        "order": order, "dtype": dtype, "device": device, "n": n,
        **machine_info(torch.device(device if device in ("cpu", "cuda") else "cpu")),
        "seed": seed,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
        "notes": notes,
    }


def failure(identity: dict, status: str, reason: str) -> dict:
    return {**identity, "status": status, "status_reason": reason}


def exclusion_counts(reason: np.ndarray) -> dict:
    """n_excluded and its split by cause ('' marks a checked point); n_uncertified: points
    whose reference could not be certified (excluded, never used)."""
    return {"n_excluded": int((reason != "").sum()),
            **{f"n_excluded_{k}": int((reason == k).sum())
               for k in ("domain", "kink", "stencil", "beyond_range")},
            "n_uncertified": int((reason == "uncertified").sum())}


def timing_columns(pair: PairTiming, n_timed: int, threads_rule: str, before: dict) -> dict:
    """The steady-state columns (harness.study.timing): the method's time per call, the
    forward pass beside it, their ratio, how far each can be trusted and why not."""
    m, f = pair.method, pair.forward
    reasons = list(pair.reasons)
    if any("contended" in r for r in reasons):
        reasons.append(f"when timing began: load average {before['load_avg_1m']:.1f}, "
                       f"{before['runnable_others']} other runnable tasks, {before['cpus']} CPUs")
    processes = pair.processes or (pair,)
    return {
        "n_timed": n_timed,
        "time_median_s": m.median_s, "time_iqr_s": m.iqr_s, "time_min_s": m.min_s,
        "time_ci_rel": m.ci_rel,
        "time_noisy": pair.noisy, "time_noisy_reason": "; ".join(reasons),
        "n_repeats": m.n_repeats, "n_blocks": m.n_blocks,
        "n_blocks_stalled": m.n_blocks - m.n_clean, "n_blocks_shared": m.n_shared,
        "raw_times_s": list(m.raw_times_s), "raw_times_stalled": list(m.stalled),
        "time_cpu_per_wall": m.cpu_per_wall, "time_faults_per_call": m.faults_per_call,
        "time_warmup_s": pair.warmup_s, "time_warmup_blocks": pair.warmup_blocks,
        "time_settled": pair.settled, "time_early_s": pair.early_s,
        "time_early_faults_per_call": pair.early_faults_per_call,
        "forward_median_s": f.median_s, "forward_iqr_s": f.iqr_s,
        "forward_raw_times_s": list(f.raw_times_s),
        "forward_raw_times_stalled": list(f.stalled),
        "forward_faults_per_call": f.faults_per_call,
        "points_per_s": n_timed / m.median_s, "ns_per_point": m.median_s / n_timed * 1e9,
        "cost_vs_forward": pair.ratio, "cost_vs_forward_ci_rel": pair.ratio_ci_rel,
        "num_threads": pair.num_threads, "num_threads_rule": threads_rule,
        "time_processes": len(processes),
        "time_process_medians_s": [p.method.median_s for p in processes],
        "time_process_spread": spread([p.method.median_s for p in processes]),
        **before,
    }
