"""harness.study.timing with a fake machine: exact block sizes, warm-up length, interleaving,
ratios, contention, page faults, stopping rule and the reasons a timing is not trusted.

The fake machine's clock only moves when a timed callable runs, by a duration the test
chooses; its CPU-time, page-fault and run-queue-wait counters move with it as the test
says. Durations are powers of two, so every sum and ratio is exact in float64.
"""
from __future__ import annotations

import inspect
import math
import time
from dataclasses import replace

import pytest
import torch
from scipy.stats import binom

from harness.study import timing as tm
from harness.study.settings import TimingConf
from harness.study.timing import (Block, PairTiming, Probes, calls_per_block, combine,
                                  from_dict, lower_rank, measure_pair, median_ci_rel,
                                  timing_threads, to_dict)

# 2^-6 s = 15.6 ms: longer than a block (10 ms), so every block is one call.
SLOW = 2.0**-6


class FakeMachine:
    """Counters that move only when a fake callable runs.

    A callable made by `fn(durations, ...)` advances the clock by its next duration (the
    last one repeats), the CPU time by `cpu` times that, the page faults by `faults` and
    the run-queue wait by the next entry of `waits` (seconds, default none)."""

    def __init__(self, has_wait: bool = True):
        self.now = self.cpu_now = self.wait_now = 0.0
        self.fault_count = 0
        self.neighbours = 0  # other processes' runnable tasks, as the machine would say
        self.has_wait = has_wait
        self.log: list[str] = []
        self.threads_seen: list[int] = []

    def probes(self) -> Probes:
        return Probes(wall=lambda: self.now, cpu=lambda: self.cpu_now,
                      faults=lambda: self.fault_count,
                      waited=lambda: self.wait_now if self.has_wait else None,
                      others=lambda: self.neighbours)

    def fn(self, name: str, durations, cpu: float = 1.0, faults: int = 0, waits=(0.0,)):
        durations, waits = list(durations), list(waits)
        calls = []

        def call():
            i = len(calls)
            calls.append(i)
            d = durations[min(i, len(durations) - 1)]
            self.now += d
            self.cpu_now += cpu * d
            self.fault_count += faults
            self.wait_now += waits[min(i, len(waits) - 1)]
            self.log.append(name)
            self.threads_seen.append(torch.get_num_threads())
        call.calls = calls
        return call


def measure(machine, method, forward, cpu_bound=True, **budget) -> PairTiming:
    conf = TimingConf(**{"precision": 0.02, "min_run_time": 0.0625, "max_run_time": 4.0,
                         **budget})
    return measure_pair(method, forward, budget=conf, num_threads=1, cpu_bound=cpu_bound,
                        probes=machine.probes())


def test_a_block_grows_until_it_lasts_ten_milliseconds():
    # 2^-10 s per call: 1 call is short; 0.01 / 2^-10 * 1.1 = 11.26 -> 12 calls = 11.7 ms.
    m = FakeMachine()
    f = m.fn("a", [2.0**-10])
    assert calls_per_block(f, m.probes()) == 12
    assert len(f.calls) == 1 + 12


def test_a_clock_that_never_moves_cannot_grow_a_block_forever(monkeypatch):
    monkeypatch.setattr(tm, "MAX_CALLS", 5000)
    m = FakeMachine()
    f = m.fn("a", [0.0])
    assert calls_per_block(f, m.probes()) == 5000
    assert len(f.calls) == 1 + 1000 + 5000  # 1, then x1000, then capped


def test_a_slow_call_is_one_call_per_block():
    m = FakeMachine()
    assert calls_per_block(m.fn("a", [SLOW]), m.probes()) == 1


def test_warm_up_lasts_until_the_block_times_stop_drifting():
    # Method: first call (forward's first call comes before it), 1 calibration call, then
    # warm-up blocks 2^-3, 2^-4, 2^-5, 2^-6, 2^-6, ...: the median of the last three first
    # equals the median of the three before after 8 blocks ([2^-5, 2^-6, 2^-6] vs 2^-6).
    m = FakeMachine()
    method = m.fn("m", [SLOW, 2.0**-3, 2.0**-4, 2.0**-5, SLOW])
    t = measure(m, method, m.fn("f", [SLOW]))
    assert t.warmup_blocks == 8 and t.settled
    assert t.warmup_s == 2.0**-3 + 2.0**-4 + 2.0**-5 + 5 * SLOW + 8 * SLOW
    # The state before settling: the median of the first three warm-up blocks.
    assert t.early_s == 2.0**-4


def test_method_and_forward_blocks_alternate_after_calibration():
    m = FakeMachine()
    t = measure(m, m.fn("m", [SLOW]), m.fn("f", [SLOW]))
    # forward's first call, method calibration, forward calibration, then m f m f ...
    assert m.log[:3] == ["f", "m", "f"]
    assert m.log[3:] == ["m", "f"] * (len(m.log[3:]) // 2)
    assert t.warmup_blocks == 6  # constant times: settled as soon as two windows exist
    # Constant times: the interval is exact from 6 pairs on, and 6 pairs of 2 x 2^-6 s
    # pass min_run_time = 2^-4 s.
    assert t.method.n_blocks == t.forward.n_blocks == 6
    assert t.measured_s == 12 * SLOW
    assert (t.method.median_s, t.method.iqr_s, t.method.ci_rel) == (SLOW, 0.0, 0.0)
    assert t.reasons == () and not t.noisy


def test_cost_vs_forward_is_the_median_of_pair_ratios_not_a_ratio_of_medians():
    # After a constant warm-up, seven pairs whose forward pass is slowed with its method in
    # pairs 3 and 6: per-pair ratios 4, 8, 1/2, 16, 8, 2, 4 (median 4), while the medians
    # alone (2^-3 and 2^-6) would say 8. min_run_time 1.2 s ends it after pair 7
    # (pairs 1-6 take 1.1875 s) with precision loose enough to stop there.
    m = FakeMachine()
    warm = [SLOW] * 8  # forward: first call, calibration, 6 warm-up blocks
    a = [2.0**-4, 2.0**-3, 2.0**-4, 2.0**-2, 2.0**-3, 2.0**-2, 2.0**-4]
    b = [2.0**-6, 2.0**-6, 2.0**-3, 2.0**-6, 2.0**-6, 2.0**-3, 2.0**-6]
    t = measure(m, m.fn("m", warm[1:] + a), m.fn("f", warm + b), precision=4.0,
                min_run_time=1.2, max_run_time=2.0)
    assert t.method.raw_times_s == tuple(a) and t.forward.raw_times_s == tuple(b)
    assert t.ratio == 4.0
    assert (t.method.median_s, t.forward.median_s) == (2.0**-3, 2.0**-6)


def test_blocks_that_waited_for_a_cpu_stay_raw_but_leave_the_statistics():
    m = FakeMachine()
    # Calls 0..7 are first call, calibration and warm-up; then the method's measured
    # blocks 0 and 3 take 2^-5 s, of which 2^-8 s (12.5 %) waiting for a CPU.
    durations = [SLOW] * 8 + [2.0**-5, SLOW, SLOW, 2.0**-5] + [SLOW] * 10
    waits = [0.0] * 8 + [2.0**-8, 0.0, 0.0, 2.0**-8] + [0.0] * 10
    t = measure(m, m.fn("m", durations[1:], waits=waits[1:]), m.fn("f", [SLOW]))
    assert t.method.raw_times_s[:4] == (2.0**-5, SLOW, SLOW, 2.0**-5)
    assert t.method.stalled[:4] == (True, False, False, True)
    assert t.method.median_s == SLOW and t.method.min_s == SLOW
    assert t.method.n_blocks == 8 and t.method.n_clean == 6
    assert t.ratio == 1.0 and t.reasons == ()


def test_a_block_short_of_cpu_time_is_stalled_on_the_cpu_but_not_on_a_gpu():
    block = Block(calls=1, wall_s=1.0, cpu_s=0.5, faults=0, waited_s=None)
    assert block.stalled(cpu_bound=True) and not block.stalled(cpu_bound=False)
    assert not Block(1, 1.0, 0.8125, 0, None).stalled(cpu_bound=True)
    assert Block(1, 1.0, 1.0, 0, 0.0625).stalled(cpu_bound=False)  # 6.25 % > 5 % waited
    assert not Block(1, 1.0, 1.0, 0, 0.03125).stalled(cpu_bound=False)


def test_a_mostly_contended_measurement_is_flagged_with_its_count():
    m = FakeMachine()
    # Every call gets half a CPU: all blocks stalled, the warm-up cannot see them settle
    # and the measurement runs to max_run_time (2^-2 s: 8 pairs of 2 x 2^-6 s). With no
    # clean block, the statistics are over all blocks, flagged.
    t = measure(m, m.fn("m", [SLOW], cpu=0.5), m.fn("f", [SLOW], cpu=0.5),
                max_run_time=2.0**-2)
    assert t.method.n_blocks == 8 and t.method.n_clean == 0
    assert (t.method.median_s, t.ratio, t.method.ci_rel) == (SLOW, 1.0, 0.0)
    assert t.reasons == (
        "times still drifting after 0.25 s of warm-up",
        "contended: 8 of 8 method blocks waited for a CPU",
        "contended: 8 of 8 forward pass blocks waited for a CPU")


def test_a_neighbour_running_beside_most_blocks_is_flagged_though_nothing_waited():
    # A busy process on the other core: this one never waits for a CPU (every block is
    # clean), the times are steady, yet caches and memory bandwidth are shared.
    m = FakeMachine()
    m.neighbours = 1
    t = measure(m, m.fn("m", [SLOW]), m.fn("f", [SLOW]))
    assert t.method.n_clean == t.method.n_blocks == t.method.n_shared == 6
    assert t.reasons == (
        "shared: another process was running as 6 of 6 method blocks began (it shares the "
        "caches and memory bandwidth: times can move by tens of %)",
        "shared: another process was running as 6 of 6 forward pass blocks began (it "
        "shares the caches and memory bandwidth: times can move by tens of %)")


def test_a_neighbour_beside_a_few_blocks_is_counted_but_not_flagged():
    m = FakeMachine()
    seen = iter([1, 1] + [0] * 100)  # the calibration and the first warm-up block
    probes = replace(m.probes(), others=lambda: next(seen))
    t = measure_pair(m.fn("m", [SLOW]), m.fn("f", [SLOW]), num_threads=1, probes=probes,
                     budget=TimingConf(precision=0.02, min_run_time=0.0625, max_run_time=4.0))
    assert t.reasons == () and t.method.n_shared == t.forward.n_shared == 0


def test_where_the_kernel_does_not_say_the_shared_count_is_unknown_and_no_flag():
    m = FakeMachine()
    probes = replace(m.probes(), others=lambda: None)
    t = measure_pair(m.fn("m", [SLOW]), m.fn("f", [SLOW]), num_threads=1, probes=probes,
                     budget=TimingConf(precision=0.02, min_run_time=0.0625, max_run_time=4.0))
    assert t.method.n_shared == -1 and t.reasons == ()


def test_a_measurement_with_too_few_blocks_says_the_median_is_unknown():
    # 2^-3 s calls and max_run_time 2^-1 s: 2 pairs measured, no 95 % interval from 2.
    m = FakeMachine()
    t = measure(m, m.fn("m", [2.0**-3]), m.fn("f", [2.0**-3]), max_run_time=0.5)
    assert t.method.n_blocks == 2 and math.isinf(t.method.ci_rel)
    assert t.reasons[0] == ("warm-up too short to see the times settle (2 blocks in 0.5 s: "
                            "raise timing.max_run_time)")
    assert t.reasons[-1] == ("too few undisturbed blocks to bound the median after 0.5 s "
                             "(target ±2.0%: raise timing.max_run_time)")


def test_a_wide_spread_stops_at_max_run_time_and_says_how_well_the_median_is_known():
    # Alternating 2^-6 and 2^-4 s: IQR/median and the interval stay wide.
    m = FakeMachine()
    t = measure(m, m.fn("m", [SLOW, SLOW] + [2.0**-6, 2.0**-4] * 100),
                m.fn("f", [SLOW]), max_run_time=0.5)
    assert t.measured_s >= 0.5
    assert t.noisy
    assert t.reasons[0].startswith("method IQR/median ")
    known = max(t.method.ci_rel, t.forward.ci_rel, t.ratio_ci_rel)
    assert t.reasons[-1] == (f"median known only to ±{known:.1%} after "
                             f"{t.measured_s:.2g} s (target ±2.0%: raise timing.max_run_time)")
    assert t.method.ci_rel == (2.0**-4 - 2.0**-6) / (2 * t.method.median_s)


def test_times_that_keep_drifting_are_flagged_after_the_warm_up_budget():
    m = FakeMachine()
    shrinking = [SLOW * 2.0**(-i / 4) for i in range(2000)]
    t = measure(m, m.fn("m", shrinking), m.fn("f", [SLOW]), max_run_time=0.25)
    assert not t.settled
    assert t.reasons[0] == f"times still drifting after {t.warmup_s:.2g} s of warm-up"


def test_page_faults_are_counted_per_call():
    m = FakeMachine()
    t = measure(m, m.fn("m", [2.0**-10], faults=3), m.fn("f", [SLOW], faults=0))
    assert t.method.faults_per_call == 3.0 and t.forward.faults_per_call == 0.0
    assert t.early_faults_per_call == 3.0
    assert t.method.calls_per_block == 12


def test_it_stops_once_the_target_precision_is_reached():
    # Constant times: precise from 6 pairs, but not before min_run_time (0.5 s = 16 pairs).
    m = FakeMachine()
    t = measure(m, m.fn("m", [SLOW]), m.fn("f", [SLOW]), min_run_time=0.5)
    assert t.method.n_blocks == 16 and t.measured_s == 0.5


def test_calls_run_with_the_requested_threads_and_the_setting_is_restored():
    before = torch.get_num_threads()
    m = FakeMachine()
    measure_pair(m.fn("m", [SLOW]), m.fn("f", [SLOW]), budget=TimingConf(),
                 num_threads=before + 1, probes=m.probes())
    assert set(m.threads_seen) == {before + 1}
    assert torch.get_num_threads() == before


def test_threads_are_restored_when_a_call_raises():
    before = torch.get_num_threads()

    def broken():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="^boom$"):
        measure_pair(broken, broken, budget=TimingConf(), num_threads=before + 1,
                     probes=FakeMachine().probes())
    assert torch.get_num_threads() == before


def test_the_default_clock_synchronizes_the_accelerator(monkeypatch):
    assert Probes().wall is tm.synced_timer
    waits = []
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda: waits.append(1))
    before = time.perf_counter()
    clock = tm.synced_timer()
    assert waits == [1] and before <= clock <= time.perf_counter()
    assert inspect.signature(measure_pair).parameters["probes"].default == Probes()


@pytest.mark.parametrize("n", [1, 5, 6, 8, 9, 20, 50, 101, 400])
def test_the_medians_interval_rank_is_the_binomial_one(n):
    # Independent: scipy's binomial CDF; the largest k with P(X <= k - 1) <= 2.5 %.
    expected = max([k for k in range(1, n + 1) if binom.cdf(k - 1, n, 0.5) <= 0.025],
                   default=0)
    assert lower_rank(n) == expected


def test_the_medians_interval_half_width_over_the_median():
    # n = 6: the interval is [min, max]; median (2 + 4) / 2 = 3; half-width (8 - 1) / 2.
    assert median_ci_rel([1.0, 2.0, 2.0, 4.0, 8.0, 8.0]) == 3.5 / 3
    assert median_ci_rel([1.0, 1.0, 1.0, 1.0, 1.0]) == math.inf  # 5 samples: no interval


def pair(median: float, ratio: float, reasons=()) -> PairTiming:
    t = tm.Timing(raw_times_s=(median,), stalled=(False,), calls_per_block=1,
                  median_s=median, iqr_s=0.0, min_s=median, ci_rel=0.0, cpu_per_wall=1.0,
                  faults_per_call=0.0)
    return PairTiming(method=t, forward=t, ratio=ratio, ratio_ci_rel=0.0, warmup_s=0.5,
                      warmup_blocks=6, settled=True, measured_s=1.0, num_threads=1,
                      early_s=2 * median, early_faults_per_call=0.0, reasons=tuple(reasons))


def test_fresh_processes_give_the_median_of_their_medians_and_their_spread():
    c = combine([pair(1.0, 2.0), pair(1.0625, 4.0), pair(1.03125, 3.0)])
    assert (c.method.median_s, c.ratio) == (1.03125, 3.0)
    assert c.method.raw_times_s == (1.0, 1.0625, 1.03125)
    assert c.reasons == () and len(c.processes) == 3


def test_fresh_processes_that_disagree_are_flagged():
    c = combine([pair(1.0, 2.0), pair(1.5, 2.0, ["contended: 5 of 8 method blocks"])])
    assert c.reasons == ("1 of 2 processes: contended: 5 of 8 method blocks",
                         "fresh processes disagree: medians span 40% of their median")


def test_the_same_kind_of_reason_from_several_processes_is_said_once():
    c = combine([pair(1.0, 2.0, ["contended: 5 of 8 method blocks", "drifting after 2 s"]),
                 pair(1.0, 2.0, ["contended: 7 of 9 method blocks"]), pair(1.0, 2.0)])
    assert c.reasons == ("2 of 3 processes: contended: 5 of 8 method blocks",
                         "1 of 3 processes: drifting after 2 s")


def test_a_measurement_survives_json():
    import json

    p = combine([pair(1.0, 2.0), pair(2.0, 3.0, ["x"])])
    assert from_dict(json.loads(json.dumps(to_dict(p)))) == p


def test_threads_default_to_one_for_small_grids_and_torchs_default_for_large():
    assert timing_threads(TimingConf(), 32767) == (1, "auto: 1 below 32768 points")
    assert timing_threads(TimingConf(), 32768) == (torch.get_num_threads(),
                                                   "auto: torch's default")
    assert timing_threads(TimingConf(num_threads=3), 10) == (3, "timing.num_threads")


def test_the_records_timing_columns_come_from_the_measurement():
    from harness.study.record import timing_columns

    before = {"load_avg_1m": 3.25, "runnable_others": 4, "cpus": 2}
    p = pair(2.0**-10, 4.0, ["contended: 9 of 12 method blocks waited for a CPU"])
    cols = timing_columns(p, 2048, "auto: 1 below 32768 points", before)
    assert (cols["time_median_s"], cols["points_per_s"], cols["ns_per_point"]) == \
        (2.0**-10, 2048 * 2.0**10, 2.0**-10 / 2048 * 1e9)
    assert (cols["cost_vs_forward"], cols["num_threads"], cols["num_threads_rule"]) == \
        (4.0, 1, "auto: 1 below 32768 points")
    assert cols["time_noisy"] is True
    assert cols["time_noisy_reason"] == (
        "contended: 9 of 12 method blocks waited for a CPU; when timing began: load "
        "average 3.2, 4 other runnable tasks, 2 CPUs")
    assert (cols["time_processes"], cols["time_process_medians_s"],
            cols["time_process_spread"]) == (1, [2.0**-10], 0.0)
    assert {k: cols[k] for k in before} == before
    three = combine([pair(1.0, 2.0), pair(2.0, 2.0), pair(4.0, 2.0)])
    cols = timing_columns(three, 10, "timing.num_threads", before)
    assert (cols["time_processes"], cols["time_process_medians_s"],
            cols["time_process_spread"]) == (3, [1.0, 2.0, 4.0], 1.5)
