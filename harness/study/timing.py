"""Timing with torch.utils.benchmark.Timer: warm-up apart, raw times kept, accelerator synced.

The first call is timed on its own (it pays for lazy initialisation, allocator warm-up or
compilation) and never enters the steady-state statistics. Timer's default clock
synchronizes the accelerator before reading the time, so GPU work is counted when done,
not when queued. `timer` is injectable so tests can use a fake clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.benchmark import Timer
from torch.utils.benchmark.utils.timer import timer as synced_timer

# torch.utils.benchmark's own threshold for a measurement it calls noisy.
NOISY_IQR_OVER_MEDIAN = 0.1


@dataclass(frozen=True)
class Timing:
    first_call_s: float
    raw_times_s: tuple[float, ...]  # seconds per call, one per measured block
    median_s: float
    iqr_s: float
    min_s: float
    number_per_run: int
    num_threads: int

    @property
    def n_repeats(self) -> int:
        return len(self.raw_times_s) * self.number_per_run

    @property
    def noisy(self) -> bool:
        return self.iqr_s / self.median_s > NOISY_IQR_OVER_MEDIAN if self.median_s > 0 else False


def time_call(fn: Callable[[], object], *, min_run_time: float, num_threads: int,
              timer: Callable[[], float] = synced_timer) -> Timing:
    """Time fn(): one first call apart, then Timer.blocked_autorange for >= min_run_time."""
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        start = timer()
        fn()
        first = timer() - start
    finally:
        torch.set_num_threads(previous)
    measurement = Timer(stmt="fn()", globals={"fn": fn}, num_threads=num_threads,
                        timer=timer).blocked_autorange(min_run_time=min_run_time)
    times = tuple(float(t) for t in measurement.times)
    return Timing(first, times, float(measurement.median), float(measurement.iqr),
                  min(times), int(measurement.number_per_run), num_threads)
