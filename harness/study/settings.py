"""The settings of a study that are not a registry choice: grid, timing, reference.

Plain dataclasses: the study reads them, and harness.config stores the same classes in
Hydra's ConfigStore (a comment above each field is its documentation)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class GridConf:
    # The tutorial's np.arange(start, stop, step): stop excluded.
    start: float = -10.0
    stop: float = 10.0
    step: float = 0.01
    # If set: n evenly spaced points from start to stop inclusive (np.linspace).
    n: Optional[int] = None


@dataclass
class TimingConf:
    enabled: bool = True
    # Seconds of steady-state measurement per timed callable (method, forward pass).
    min_run_time: float = 0.5
    # Threads torch may use while timed; null = torch's default for this machine.
    num_threads: Optional[int] = None


@dataclass
class ReferenceConf:
    # Error is checked on at most this many points: all of them up to this size, else an
    # evenly strided deterministic subsample (first and last point included); see n_checked.
    # Per-point methods (the loop) are then also evaluated and timed on that subsample only.
    max_points: int = 20000
    # mpmath working precision in decimal digits: only for functions with a primitive that
    # has no ball form (the certified Arb reference needs no setting; see its record).
    dps: int = 50
    # Reference values are cached here, keyed by function, exact x values and precision.
    cache_dir: Optional[str] = "results/.cache/reference"
