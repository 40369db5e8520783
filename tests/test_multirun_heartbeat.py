"""harness.multirun.heartbeat: a long job says it is still running, on a clock and a wait
injected here, so no test sleeps or depends on how loaded the machine is."""
from __future__ import annotations

import threading

from harness.multirun.heartbeat import heartbeat


def test_heartbeat_says_how_long_the_block_has_run_every_interval_until_it_ends():
    said, intervals = [], []
    times = iter([100.0, 130.4, 160.6, 190.2])  # at the start, then at each beat
    waiting_for_the_end = threading.Event()

    def wait(stop: threading.Event, seconds: float) -> bool:
        intervals.append(seconds)
        if len(intervals) <= 3:  # three intervals pass while the block runs ...
            return False
        waiting_for_the_end.set()
        return stop.wait()  # ... then no more time passes until it ends

    with heartbeat(said.append, every_s=30.0, clock=lambda: next(times), wait=wait):
        assert waiting_for_the_end.wait(timeout=60)
        assert said == ["still running (30 s)", "still running (61 s)", "still running (90 s)"]
    assert intervals == [30.0] * 4
    assert len(said) == 3  # nothing after the block


def test_a_block_shorter_than_the_interval_says_nothing_and_does_not_wait_it_out():
    said = []
    with heartbeat(said.append, every_s=3600.0):
        pass
    assert said == []
