"""harness.study.timing with a fake clock: exact first-call time, raw times, median, IQR,
noise flag.

The fake clock only moves when the timed function runs, by a duration the test chooses,
so every number torch.utils.benchmark derives from it is known exactly. (Durations are
powers of two, so sums and differences of clock readings are exact in float64.)
"""
from __future__ import annotations

import inspect

import pytest
import torch
from torch.utils.benchmark.utils.timer import timer as synced_timer

from harness.study.timing import NOISY_IQR_OVER_MEDIAN, Timing, time_call


class FakeClock:
    """timer() reads `now`; each call of the timed function advances it by the next duration."""

    def __init__(self, durations):
        self.now = 0.0
        self._durations = list(durations)
        self.calls = 0
        self.threads_seen = []

    def __call__(self) -> float:
        return self.now

    def work(self) -> None:
        duration = self._durations[min(self.calls, len(self._durations) - 1)]
        self.calls += 1
        self.threads_seen.append(torch.get_num_threads())
        self.now += duration


def test_constant_duration_gives_exact_times():
    # min_run_time 2^-4 s of 2^-10 s calls: the block size is 1 call (2^-10 >= min/1000)
    # and the loop stops once 64 blocks have added up to min_run_time.
    clock = FakeClock([2.0**-10])
    t = time_call(clock.work, min_run_time=2.0**-4, num_threads=1, timer=clock)
    assert t.first_call_s == 2.0**-10
    assert t.raw_times_s == (2.0**-10,) * 64
    assert (t.median_s, t.iqr_s, t.min_s) == (2.0**-10, 0.0, 2.0**-10)
    assert (t.number_per_run, t.n_repeats, t.num_threads) == (1, 64, 1)
    assert t.noisy is False


def test_fast_call_is_measured_in_blocks_and_reported_per_call():
    # 2^-12 s < min_run_time/1000 = 1e-3 s, so blocks grow to 10 calls (10 * 2^-12 s each);
    # 410 blocks are needed to pass 1 s. Raw times are per call, not per block.
    clock = FakeClock([2.0**-12])
    t = time_call(clock.work, min_run_time=1.0, num_threads=1, timer=clock)
    assert t.number_per_run == 10
    assert t.raw_times_s == (2.0**-12,) * 410
    assert t.n_repeats == 4100
    assert t.median_s == 2.0**-12


def test_first_call_is_kept_apart_from_the_steady_state():
    # Call 1 (warm-up): 4 s. Call 2 sizes the block (1 call). Then blocks of
    # 0.125, 0.25, 0.5, 0.125 s reach min_run_time = 1 s.
    clock = FakeClock([4.0, 0.25, 0.125, 0.25, 0.5, 0.125, 99.0])
    t = time_call(clock.work, min_run_time=1.0, num_threads=1, timer=clock)
    assert t.first_call_s == 4.0
    assert t.raw_times_s == (0.125, 0.25, 0.5, 0.125)
    assert clock.calls == 6


def test_median_and_iqr_use_linear_quantiles_of_the_raw_times():
    clock = FakeClock([4.0, 0.25, 0.125, 0.25, 0.5, 0.125])
    t = time_call(clock.work, min_run_time=1.0, num_threads=1, timer=clock)
    # sorted 0.125, 0.125, 0.25, 0.5: median (0.125 + 0.25) / 2; p25 0.125; p75 0.3125
    assert t.median_s == 0.1875
    assert t.iqr_s == 0.1875
    assert t.min_s == 0.125
    assert t.noisy is True


def test_calls_run_with_the_requested_threads_and_the_old_setting_is_restored():
    before = torch.get_num_threads()
    wanted = before + 1
    clock = FakeClock([2.0**-10])
    t = time_call(clock.work, min_run_time=2.0**-6, num_threads=wanted, timer=clock)
    assert t.num_threads == wanted
    assert set(clock.threads_seen) == {wanted}
    assert torch.get_num_threads() == before


def test_threads_are_restored_when_the_first_call_raises():
    before = torch.get_num_threads()

    def broken():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="^boom$"):
        time_call(broken, min_run_time=1.0, num_threads=before + 1, timer=FakeClock([1.0]))
    assert torch.get_num_threads() == before


def test_default_clock_is_torchs_synchronizing_timer():
    assert inspect.signature(time_call).parameters["timer"].default is synced_timer


def timing(median: float, iqr: float) -> Timing:
    return Timing(first_call_s=1.0, raw_times_s=(median,), median_s=median, iqr_s=iqr,
                  min_s=median, number_per_run=1, num_threads=1)


def test_noisy_threshold_is_torchs_ten_percent():
    assert NOISY_IQR_OVER_MEDIAN == 0.1


@pytest.mark.parametrize("median, iqr, noisy", [
    (2.0, 0.25, True),      # 12.5 %
    (2.0, 0.125, False),    # 6.25 %
    (1.0, 0.1, False),      # exactly 10 %: not above the threshold
    (0.0, 0.0, False),      # a zero median cannot be judged
])
def test_noisy_flag_is_iqr_over_median_above_the_threshold(median, iqr, noisy):
    assert timing(median, iqr).noisy is noisy


def test_repeats_count_every_call_in_every_block():
    t = Timing(first_call_s=0.0, raw_times_s=(1.0, 2.0, 3.0), median_s=2.0, iqr_s=1.0,
               min_s=1.0, number_per_run=100, num_threads=1)
    assert t.n_repeats == 300
