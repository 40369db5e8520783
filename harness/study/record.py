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
from harness.study.timing import Timing

# Statuses: ok (numbers), and the failures that carry a reason instead.
OK = "ok"
STATUSES = (OK, "invalid", "unsupported", "timeout", "oom", "error")
# Phrases with which torch (and the peers) say an op has no kernel for a dtype or device:
# such a run is `unsupported`, not an error.
UNSUPPORTED_PHRASES = ("not implemented for", "not supported", "does not support",
                       "does not currently support")


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
            **{f"n_excluded_{k}": int((reason == k).sum()) for k in ("domain", "kink", "stencil")},
            "n_uncertified": int((reason == "uncertified").sum())}


def timing_columns(method: Optional[Timing], forward: Optional[Timing], n_timed: int,
                   first_call_s: float) -> dict:
    """Steady-state columns; time_first_call_s is the very first call (compile, warm-up)."""
    if method is None:
        return {"n_timed": 0, "time_first_call_s": first_call_s}
    return {
        "n_timed": n_timed,
        "time_first_call_s": first_call_s,
        "time_median_s": method.median_s,
        "time_iqr_s": method.iqr_s,
        "time_min_s": method.min_s,
        "time_noisy": method.noisy,
        "n_repeats": method.n_repeats,
        "raw_times_s": list(method.raw_times_s),
        "forward_median_s": forward.median_s,
        "points_per_s": n_timed / method.median_s,
        "ns_per_point": method.median_s / n_timed * 1e9,
        "cost_vs_forward": method.median_s / forward.median_s,
        "num_threads": method.num_threads,
    }
