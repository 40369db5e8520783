"""The settings of a study that are not a registry choice: grid, timing, reference.

Plain dataclasses: the study reads them, and harness.config stores the same classes in
Hydra's ConfigStore (a comment above each field is its documentation)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class GridConf:
    # arange | linspace | binades | random; null: arange, or linspace when n is set.
    # binades: per_binade points per binade [2^e, 2^(e+1)), evenly spaced in log2|x|, on
    # both signs, plus -0 and +0, across the dtype's whole finite range (start, stop and
    # step unused); random: n seeded uniform draws over the dtype's bit patterns (finite
    # ones kept). Both keep only points in the function's domain.
    kind: Optional[str] = None
    # The tutorial's np.arange(start, stop, step): stop excluded.
    start: float = -10.0
    stop: float = 10.0
    step: float = 0.01
    # If set: n evenly spaced points from start to stop inclusive (np.linspace); with
    # kind=random, the number of draws (null: 2000).
    n: Optional[int] = None
    # kind=binades: points per binade.
    per_binade: int = 4
    # kind=binades: the subnormal binades too (below the dtype's smallest normal number).
    subnormals: bool = False
    # kind=random: seed of the draws (null: the run's seed).
    seed: Optional[int] = None


@dataclass
class HuntConf:
    # The worst-case hunt after the grid (harness.study.hunt): rounds of local search
    # around the worst points; 0 turns it off.
    rounds: int = 3
    # How many of the worst checked points to start from.
    seeds: int = 4
    # Points spread over each bracket per round (plus the worst point's 8 neighbouring floats).
    probes: int = 8


@dataclass
class TimingConf:
    enabled: bool = True
    # Stop once the medians of the method, of the forward pass and of their ratio are each
    # known to +- this fraction (95 % confidence), after at least min_run_time seconds.
    # 5 %: a quarter of the run-to-run agreement dydx promises (20 %); on a shared 2-core
    # machine +-2 % took the whole max_run_time in most runs (about 2 s, then flagged), 5 %
    # a median of about 0.4 s. Ask for less (0.01) where a finer number matters.
    precision: float = 0.05
    # Seconds of interleaved measurement at least (after the warm-up), however precise.
    min_run_time: float = 0.1
    # Seconds of measurement at most (the warm-up gets as much again); a median not known
    # to `precision` by then is flagged in time_noisy_reason.
    max_run_time: float = 2.0
    # Threads while timed. null: 1 below 32768 points timed (torch runs elementwise
    # kernels that small on one thread anyway: a pool only adds wake-ups), else torch's
    # default for this machine. Every record states the count in num_threads.
    num_threads: Optional[int] = None
    # Repeat the measurement in this many fresh processes (as pyperf does): the record
    # then gives the median over processes and their spread.
    processes: int = 1


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
