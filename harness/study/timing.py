"""Timing that holds on a busy machine: the protocol behind every time dydx prints.

1. Blocks. A timed callable runs in blocks of `calls` calls lasting at least BLOCK_S, so
   the clock's own cost is negligible; a block's time per call is its wall time / calls.
   The wall clock is torch.utils.benchmark's, which synchronizes the accelerator, so GPU
   work is counted when done, not when queued.
2. Warm-up until the times stop drifting. Method and forward blocks alternate until the
   median of the last WINDOW undisturbed blocks of each is within DRIFT of the WINDOW
   before (detected, not a guessed count), within a budget of `max_run_time`.
3. Interleaved measurement: method, forward, method, forward, ... Each method block has a
   forward block beside it that saw the same machine, so `cost_vs_forward` is the median
   of per-pair ratios, in which slow drift (frequency, allocator, other load) cancels.
4. Contention is measured, not guessed. Around each block we read the process's CPU
   time, page faults and (Linux) the time its threads were ready but waiting for a CPU.
   A block whose threads waited more than STALL_WAIT of its wall time, or (work on the
   CPU) that got less than STALL_CPU CPU-seconds per second, was stretched by other work:
   it stays in the raw times and is left out of the statistics. (The kernel books waits
   at its ticks, so a wait can land in the next block; the CPU-time test, read exactly,
   catches a stretched single-threaded block either way.)
5. It stops when the median of the method, of the forward pass and of their ratio are
   each known to ±`precision` (a distribution-free 95 % confidence interval of the
   median), after at least `min_run_time`; or at `max_run_time`, and then says so.

A measurement that cannot be trusted carries its reasons (`PairTiming.reasons`): still
drifting after the warm-up, most blocks contended, the median not known to the target,
or a wide spread (IQR/median above torch.utils.benchmark's 0.1). Everything that reads
the clock or the operating system is injectable (`Probes`), so tests use fake ones.
"""
from __future__ import annotations

import functools
import math
import re
import timeit
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from statistics import median
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from harness.study.machine import cpu_seconds, page_faults, run_queue_wait, runnable_others
from harness.study.settings import TimingConf


def synced_timer() -> float:
    """torch.utils.benchmark's clock (its `timer`): wait for the accelerator's queued work,
    then read the wall clock. Written out because importing torch.utils.benchmark pulls in
    setuptools through its C++ JIT: about a second of every run's start."""
    if torch.accelerator.is_available():
        torch.accelerator.synchronize()
    return timeit.default_timer()

# A block lasts at least this long: the synchronizing clock costs ~1 µs (< 0.01 %), and
# a few scheduler ticks (4 ms at 250 Hz) fit in it.
BLOCK_S = 0.01
# Calls per block at most (a block of 10 ms holds ~10^5 calls of the cheapest op).
MAX_CALLS = 10**6
# Warm-up: settled when the median of the last WINDOW blocks is within DRIFT of the
# WINDOW before them.
WINDOW = 3
DRIFT = 0.05
# A block whose threads waited for a CPU for more than this share of its wall time was
# stretched by other work (the kernel's run-queue accounting).
STALL_WAIT = 0.05
# Without that accounting: a CPU block that got less than this many CPU-seconds per
# second of wall time was not running all the time it was timed.
STALL_CPU = 0.8
# torch.utils.benchmark's threshold for a measurement it calls noisy.
NOISY_IQR_OVER_MEDIAN = 0.1
# Fewer undisturbed blocks than this share of all blocks: the machine was busy.
MIN_CLEAN_SHARE = 0.5
# More blocks than this share began with another process's task running or ready to run:
# a neighbour on the other core (or the other hyperthread) shares caches and memory
# bandwidth, which moved cost_vs_forward by up to 23 % in runs beside one busy core
# although this process never waited for a CPU (benchmarks/done_means.py, check busy).
NEIGHBOUR_SHARE = 0.5
# Fresh processes whose medians span more than this (relative to their median) disagree.
PROCESS_SPREAD = 0.1
# The median's confidence interval leaves 1/40 = 2.5 % in each tail: 95 %, two-sided.
TAIL = Fraction(1, 40)


@dataclass(frozen=True)
class Probes:
    """Where timing reads the clock and the operating system (fakes in tests)."""

    wall: Callable[[], float] = synced_timer
    cpu: Callable[[], float] = cpu_seconds
    faults: Callable[[], int] = page_faults
    waited: Callable[[], Optional[float]] = run_queue_wait
    others: Callable[[], Optional[int]] = runnable_others


@dataclass(frozen=True)
class Block:
    calls: int
    wall_s: float
    cpu_s: float
    faults: int
    waited_s: Optional[float]  # None where the kernel does not say
    # Other processes' tasks running or ready to run as the block began (None: unknown).
    others: Optional[int] = None

    @property
    def per_call_s(self) -> float:
        return self.wall_s / self.calls

    def stalled(self, cpu_bound: bool) -> bool:
        """Stretched by other work: our threads waited for a CPU, or (work on the CPU) the
        process got less CPU time than the block's wall time said it was running."""
        waited = self.waited_s is not None and self.waited_s > STALL_WAIT * self.wall_s
        return waited or (cpu_bound and self.cpu_s < STALL_CPU * self.wall_s)


def run_block(fn: Callable[[], object], calls: int, probes: Probes) -> Block:
    """`calls` calls of fn, timed as one block, with the process's counters around it."""
    others = probes.others()
    waited, cpu, faults = probes.waited(), probes.cpu(), probes.faults()
    start = probes.wall()
    for _ in range(calls):
        fn()
    wall = probes.wall() - start
    cpu, faults, after = probes.cpu() - cpu, probes.faults() - faults, probes.waited()
    return Block(calls, wall, cpu, faults,
                 None if waited is None or after is None else after - waited, others)


def calls_per_block(fn: Callable[[], object], probes: Probes) -> int:
    """How many calls make a block of at least BLOCK_S (grown from 1, at most 1000x a step;
    at most MAX_CALLS, for a clock too coarse to see the calls)."""
    calls = 1
    while True:
        wall = run_block(fn, calls, probes).wall_s
        if wall >= BLOCK_S or calls >= MAX_CALLS:
            return calls
        grow = BLOCK_S / wall if wall > 0 else 1000.0
        calls = min(MAX_CALLS, max(calls + 1, math.ceil(calls * min(1000.0, grow * 1.1))))


# --- statistics ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def lower_rank(n: int) -> int:
    """1-based rank k such that [x_(k), x_(n+1-k)] covers the median with >= 95 %
    (the binomial order-statistic interval, in exact integers); 0 when n is too small.

    With X ~ Binomial(n, 1/2) the number of samples below the true median, the interval
    misses it with probability 2 P(X <= k - 1): the largest k keeping that <= 2 TAIL."""
    k, at_most = 0, 0  # at_most = C(n, 0) + ... + C(n, k) = 2^n P(X <= k)
    while True:
        at_most += math.comb(n, k)
        if at_most > TAIL * 2**n:
            return k
        k += 1


def median_ci_rel(values: Sequence[float]) -> float:
    """Half-width of the median's confidence interval over the median (inf: unknown)."""
    n = len(values)
    k = lower_rank(n) if n else 0
    mid = median(values) if n else 0.0
    if k == 0 or mid <= 0:
        return math.inf
    ordered = sorted(values)
    return (ordered[n - k] - ordered[k - 1]) / (2 * mid)


def iqr(values: Sequence[float]) -> float:
    """Interquartile range, linear quantiles (torch.utils.benchmark's Measurement.iqr)."""
    q75, q25 = np.quantile(np.asarray(values, dtype=float), [0.75, 0.25])
    return float(q75 - q25)


@dataclass(frozen=True)
class Timing:
    """One callable's measured blocks and their statistics (over undisturbed blocks)."""

    raw_times_s: tuple[float, ...]  # seconds per call, one per measured block, all blocks
    stalled: tuple[bool, ...]  # per block: stretched by other work, left out below
    calls_per_block: int
    median_s: float
    iqr_s: float
    min_s: float
    ci_rel: float  # half-width of the median's 95 % interval / median (inf: unknown)
    cpu_per_wall: float  # CPU-seconds per wall-second, median over undisturbed blocks
    faults_per_call: float  # page faults per call over all measured blocks
    # Blocks that began with another process's task runnable (-1: the kernel does not say).
    n_shared: int = -1

    @property
    def n_blocks(self) -> int:
        return len(self.raw_times_s)

    @property
    def n_clean(self) -> int:
        return self.n_blocks - sum(self.stalled)

    @property
    def n_repeats(self) -> int:
        return self.n_blocks * self.calls_per_block

    @property
    def spread(self) -> float:
        return self.iqr_s / self.median_s if self.median_s > 0 else 0.0


def summarize(blocks: Sequence[Block], cpu_bound: bool) -> Timing:
    """Statistics over the undisturbed blocks; over all of them when every block was
    stalled (the measurement is then flagged as contended, but still says what it saw)."""
    stalled = tuple(b.stalled(cpu_bound) for b in blocks)
    clean = [b for b, s in zip(blocks, stalled) if not s] or list(blocks)
    times = [b.per_call_s for b in clean]
    calls = sum(b.calls for b in blocks)
    return Timing(
        raw_times_s=tuple(b.per_call_s for b in blocks), stalled=stalled,
        calls_per_block=blocks[0].calls if blocks else 0,
        median_s=median(times) if times else math.nan,
        iqr_s=iqr(times) if times else math.nan, min_s=min(times) if times else math.nan,
        ci_rel=median_ci_rel(times),
        cpu_per_wall=median(b.cpu_s / b.wall_s for b in clean) if clean else math.nan,
        faults_per_call=sum(b.faults for b in blocks) / calls if calls else math.nan,
        n_shared=-1 if any(b.others is None for b in blocks) or not blocks
        else sum(b.others > 0 for b in blocks))


def pair_ratios(a: Sequence[Block], b: Sequence[Block], cpu_bound: bool) -> list[float]:
    """Method time / forward time of each interleaved pair in which neither was stalled
    (of every pair when none is clean: flagged as contended, like summarize)."""
    pairs = [(x, y) for x, y in zip(a, b) if y.per_call_s > 0]
    clean = [(x, y) for x, y in pairs if not (x.stalled(cpu_bound) or y.stalled(cpu_bound))]
    return [x.per_call_s / y.per_call_s for x, y in clean or pairs]


# --- the protocol -------------------------------------------------------------------------

@dataclass(frozen=True)
class PairTiming:
    """The method and the forward pass, measured interleaved, and whether to trust it."""

    method: Timing
    forward: Timing
    ratio: float  # cost_vs_forward: median of per-pair method/forward ratios
    ratio_ci_rel: float
    warmup_s: float
    warmup_blocks: int
    settled: bool  # the warm-up saw the block times stop drifting
    measured_s: float
    num_threads: int
    # The state before settling: the method's first WINDOW warm-up blocks (median time
    # per call, page faults per call). A fresh process that calls a few times sees this.
    early_s: float = math.nan
    early_faults_per_call: float = math.nan
    reasons: tuple[str, ...] = ()  # why the numbers cannot be trusted; () = trustworthy
    # Per fresh process (timing.processes > 1): each process's own measurement.
    processes: tuple["PairTiming", ...] = field(default=())

    @property
    def noisy(self) -> bool:
        return bool(self.reasons)


def settled(blocks: Sequence[Block], cpu_bound: bool) -> bool:
    """The last WINDOW undisturbed blocks' median is within DRIFT of the WINDOW before."""
    times = [b.per_call_s for b in blocks if not b.stalled(cpu_bound)]
    if len(times) < 2 * WINDOW:
        return False
    recent, before = median(times[-WINDOW:]), median(times[-2 * WINDOW:-WINDOW])
    return abs(recent - before) <= DRIFT * before


def _alternate(a, b, calls: tuple[int, int], probes: Probes, done) -> tuple[list, list, float]:
    """Blocks of a and b, alternating, until done(blocks_a, blocks_b, elapsed_s)."""
    blocks_a: list[Block] = []
    blocks_b: list[Block] = []
    start = probes.wall()
    while True:
        blocks_a.append(run_block(a, calls[0], probes))
        blocks_b.append(run_block(b, calls[1], probes))
        elapsed = probes.wall() - start
        if done(blocks_a, blocks_b, elapsed):
            return blocks_a, blocks_b, elapsed


@contextmanager
def threads(n: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_pair(method: Callable[[], object], forward: Callable[[], object], *,
                 budget: TimingConf, num_threads: int, cpu_bound: bool = True,
                 probes: Probes = Probes()) -> PairTiming:
    """The protocol above: calibrate, warm up until settled, measure interleaved."""
    with threads(num_threads):
        forward()  # its first call, like the method's, is not steady state
        calls = (calls_per_block(method, probes), calls_per_block(forward, probes))
        warm_a, warm_b, warm_s = _alternate(
            method, forward, calls, probes,
            lambda a, b, t: (settled(a, cpu_bound) and settled(b, cpu_bound))
            or t >= budget.max_run_time)

        def enough(a, b, elapsed):
            """Past max_run_time, or past min_run_time with undisturbed blocks that give
            each median to the target precision."""
            if elapsed >= budget.max_run_time:
                return True
            clean = [(x, y) for x, y in zip(a, b)
                     if not (x.stalled(cpu_bound) or y.stalled(cpu_bound))]
            known = [median_ci_rel([x.per_call_s for x, _ in clean]),
                     median_ci_rel([y.per_call_s for _, y in clean]),
                     median_ci_rel([x.per_call_s / y.per_call_s for x, y in clean])]
            return elapsed >= budget.min_run_time and max(known) <= budget.precision

        blocks_a, blocks_b, measured = _alternate(method, forward, calls, probes, enough)
    ratios = pair_ratios(blocks_a, blocks_b, cpu_bound)
    pair = PairTiming(
        method=summarize(blocks_a, cpu_bound), forward=summarize(blocks_b, cpu_bound),
        ratio=median(ratios) if ratios else math.nan, ratio_ci_rel=median_ci_rel(ratios),
        warmup_s=warm_s, warmup_blocks=len(warm_a),
        settled=settled(warm_a, cpu_bound) and settled(warm_b, cpu_bound),
        measured_s=measured, num_threads=num_threads,
        early_s=median(b.per_call_s for b in warm_a[:WINDOW]),
        early_faults_per_call=sum(b.faults for b in warm_a[:WINDOW])
        / sum(b.calls for b in warm_a[:WINDOW]))
    return replace(pair, reasons=distrust(pair, budget))


def distrust(pair: PairTiming, budget: TimingConf) -> tuple[str, ...]:
    """Why a measurement's numbers cannot be trusted, one short phrase each (none: trust)."""
    reasons = []
    if not pair.settled and pair.warmup_blocks < 2 * WINDOW:
        reasons.append(f"warm-up too short to see the times settle ({pair.warmup_blocks} "
                       f"blocks in {pair.warmup_s:.2g} s: raise timing.max_run_time)")
    elif not pair.settled:
        reasons.append(f"times still drifting after {pair.warmup_s:.2g} s of warm-up")
    for name, t in (("method", pair.method), ("forward pass", pair.forward)):
        if t.n_clean < MIN_CLEAN_SHARE * t.n_blocks:
            reasons.append(f"contended: {t.n_blocks - t.n_clean} of {t.n_blocks} {name} "
                           f"blocks waited for a CPU")
        elif t.n_shared > NEIGHBOUR_SHARE * t.n_blocks:
            reasons.append(f"shared: another process was running as {t.n_shared} of "
                           f"{t.n_blocks} {name} blocks began (it shares the caches and "
                           f"memory bandwidth: times can move by tens of %)")
        elif t.spread > NOISY_IQR_OVER_MEDIAN:
            reasons.append(f"{name} IQR/median {t.spread:.2f} > {NOISY_IQR_OVER_MEDIAN}")
    known = max(pair.method.ci_rel, pair.forward.ci_rel, pair.ratio_ci_rel)
    if known > budget.precision:
        what = ("too few undisturbed blocks to bound the median" if math.isinf(known)
                else f"median known only to ±{known:.1%}")
        reasons.append(f"{what} after {pair.measured_s:.2g} s (target "
                       f"±{budget.precision:.1%}: raise timing.max_run_time)")
    return tuple(reasons)


# --- several fresh processes --------------------------------------------------------------

def combine(pairs: Sequence[PairTiming]) -> PairTiming:
    """k processes' measurements as one: medians of their medians, blocks pooled, each
    process kept; flagged when their medians spread by more than PROCESS_SPREAD."""
    first = pairs[0]

    def pooled(part: str) -> Timing:
        timings = [getattr(p, part) for p in pairs]
        mid = median(t.median_s for t in timings)
        times = [t for tm in timings for t, s in zip(tm.raw_times_s, tm.stalled) if not s]
        return Timing(
            raw_times_s=tuple(t for tm in timings for t in tm.raw_times_s),
            stalled=tuple(s for tm in timings for s in tm.stalled),
            calls_per_block=getattr(first, part).calls_per_block, median_s=mid,
            iqr_s=iqr(times) if times else math.nan, min_s=min(times) if times else math.nan,
            ci_rel=spread([t.median_s for t in timings]) / 2,
            cpu_per_wall=median(t.cpu_per_wall for t in timings),
            faults_per_call=median(t.faults_per_call for t in timings),
            n_shared=-1 if any(t.n_shared < 0 for t in timings)
            else sum(t.n_shared for t in timings))

    medians = [p.method.median_s for p in pairs]
    reasons = _shared_reasons(pairs)
    if spread(medians) > PROCESS_SPREAD:
        reasons.append(f"fresh processes disagree: medians span {spread(medians):.0%} "
                       f"of their median")
    return PairTiming(
        method=pooled("method"), forward=pooled("forward"),
        ratio=median(p.ratio for p in pairs), ratio_ci_rel=spread([p.ratio for p in pairs]) / 2,
        warmup_s=median(p.warmup_s for p in pairs),
        warmup_blocks=int(median(p.warmup_blocks for p in pairs)),
        early_s=median(p.early_s for p in pairs),
        early_faults_per_call=median(p.early_faults_per_call for p in pairs),
        settled=all(p.settled for p in pairs), measured_s=sum(p.measured_s for p in pairs),
        num_threads=first.num_threads, reasons=tuple(reasons), processes=tuple(pairs))


def _shared_reasons(pairs: Sequence[PairTiming]) -> list[str]:
    """Each kind of reason once (the same words up to the numbers), with how many
    processes gave it and the first one's text."""
    kinds: dict[str, tuple[str, set[int]]] = {}
    for i, p in enumerate(pairs):
        for r in p.reasons:
            text, seen = kinds.setdefault(re.sub(r"[\d.±%]+", "#", r), (r, set()))
            seen.add(i)
    return [f"{len(seen)} of {len(pairs)} processes: {text}" for text, seen in kinds.values()]


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: how far apart repeated measurements are (0 for one)."""
    mid = median(values)
    return (max(values) - min(values)) / mid if mid > 0 else math.inf


def to_dict(pair: PairTiming) -> dict:
    """A PairTiming as plain JSON-able values (what a timing worker process prints)."""
    return asdict(pair)


def from_dict(data: dict) -> PairTiming:
    def timing(d: dict) -> Timing:
        return Timing(**{**d, "raw_times_s": tuple(d["raw_times_s"]),
                         "stalled": tuple(d["stalled"])})

    return PairTiming(**{**data, "method": timing(data["method"]),
                         "forward": timing(data["forward"]), "reasons": tuple(data["reasons"]),
                         "processes": tuple(from_dict(p) for p in data["processes"])})


# --- threads ------------------------------------------------------------------------------

# torch's at::internal::GRAIN_SIZE: elementwise kernels on fewer elements run on one thread.
PARALLEL_MIN_POINTS = 32768


def timing_threads(conf: TimingConf, n_timed: int) -> tuple[int, str]:
    """(threads, why): timing.num_threads if given; else 1 below PARALLEL_MIN_POINTS points
    (a pool would only add wake-up latency to kernels that run on one thread anyway), else
    torch's default for this process (its CPUs, or a sweep worker's share of them)."""
    if conf.num_threads is not None:
        return conf.num_threads, "timing.num_threads"
    if n_timed < PARALLEL_MIN_POINTS:
        return 1, f"auto: 1 below {PARALLEL_MIN_POINTS} points"
    return torch.get_num_threads(), "auto: torch's default"
