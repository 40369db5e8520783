"""harness.timelimit: a block of code stops at its time limit, whatever it is doing, and
the limit never fires after the block has ended."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pandas as pd
import pytest
from omegaconf import OmegaConf

from harness.timelimit import TimeLimitExceeded, time_limit
from support import ROOT


def spin() -> None:
    while True:  # swallows every Exception, as careless user code does
        try:
            sum(range(100))
        except Exception:  # noqa: BLE001
            pass


def elapsed(block) -> float:
    start = time.perf_counter()
    with pytest.raises(TimeLimitExceeded):
        block()
    return time.perf_counter() - start


def test_a_python_loop_that_swallows_exceptions_is_stopped_at_the_limit():
    def block():
        with time_limit(0.3):
            spin()
    assert 0.29 < elapsed(block) < 5


def test_a_sleep_is_woken_at_the_limit():
    def block():
        with time_limit(0.3):
            time.sleep(3600)
    assert 0.29 < elapsed(block) < 5


def test_an_alarm_set_outside_the_block_goes_on_after_it():
    """A caller's own limit (pytest-timeout, a script's alarm) is neither lost nor reset."""
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(time.monotonic()))
    start = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with time_limit(30):
            time.sleep(0.2)
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 0.5 < remaining <= 0.81
        time.sleep(3)  # the outer alarm wakes this sleep, and its handler runs
        assert len(fired) == 1 and 0.9 < fired[0] - start < 2.5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_block_in_another_thread_is_stopped_at_the_limit():
    taken = []

    def block():
        with time_limit(0.3):
            spin()

    def worker():
        taken.append(elapsed(block))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and 0.29 < taken[0] < 5


def test_a_block_that_ends_in_time_is_never_interrupted_later():
    with time_limit(0.2):
        pass
    time.sleep(0.4)  # the alarm would have fired here
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_native_code_that_ignores_the_alarm_is_reported_stuck_after_the_grace():
    stuck = []

    def block():
        with time_limit(0.2, grace_s=0.2, on_stuck=lambda: stuck.append(time.perf_counter())):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # as native code would
            try:
                time.sleep(1.0)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
                time.sleep(0.05)
    start = time.perf_counter()
    assert elapsed(block) >= 1.0
    assert len(stuck) == 1 and 0.35 < stuck[0] - start < 1.0


@pytest.mark.slow
def test_native_code_holding_the_gil_is_ended_by_the_last_backstop(tmp_path):
    """sum() over a range runs in C holding the GIL: no Python code can run (not even the
    watchdog), so faulthandler ends the process, stacks written to the file."""
    dump = tmp_path / "stuck.txt"
    script = textwrap.dedent(f"""
        from harness.timelimit import time_limit
        with time_limit(0.5, grace_s=0.5, on_stuck=lambda: print("watchdog ran"),
                        stuck_file={str(dump)!r}):
            sum(range(10 ** 12))
    """)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and time.perf_counter() - start < 60
    assert dump.read_text().startswith("Timeout (0:00:01.500000)!")
    assert "watchdog ran" not in done.stdout


@pytest.mark.slow
def test_a_run_stuck_past_its_limit_is_recorded_as_timeout_and_the_process_ends(tmp_path):
    """The watchdog writes the record itself: the study's thread cannot be reached."""
    run_dir = tmp_path / "run"
    script = textwrap.dedent("""
        import runpy, sys
        import harness.timelimit
        harness.timelimit.GRACE_S = 1.0
        sys.argv = ["run.py", *sys.argv[1:]]
        runpy.run_path("run.py", run_name="__main__")
    """)
    done = subprocess.run(
        [sys.executable, "-c", script, "fn=py", "fn.target=tests.userpkg.hostile:stuck_in_native_code",
         "time_limit_s=1", "grid.n=20", "timing.enabled=false", "device=cpu",
         f"hydra.run.dir={run_dir}", f"reference.cache_dir={tmp_path / 'cache'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    reason = ("stopped at the time limit of 1 s (time_limit_s; the reference included); give it "
              "more with time_limit_s=...; it was stuck in native code, so the process was ended")
    assert done.returncode == 4 and done.stderr == ""
    assert f"timeout: {reason}; a sweep stops here" in done.stdout
    record = pd.read_parquet(run_dir / "records.parquet").iloc[0]
    assert (record["status"], record["status_reason"]) == ("timeout", reason)


def test_a_timing_worker_process_does_not_outlive_the_limit(compose_config, monkeypatch):
    """timing.processes=k runs the timing in child processes: when the run's limit stops
    the parent, the child it is waiting for is ended with it, never left running."""
    from harness.app.timing_worker import run_workers

    started = []

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    config = compose_config("fn=py", "fn.target=tests.userpkg.hostile:sleeps", "device=cpu")
    monkeypatch.chdir(ROOT)  # the worker imports tests.userpkg from its working directory
    with pytest.raises(TimeLimitExceeded):
        with time_limit(1.0):
            run_workers(OmegaConf.to_yaml(config, resolve=True), 1, log=lambda line: None,
                        max_run_time=1.0)
    (worker,) = started
    assert worker.returncode == -signal.SIGKILL  # killed and reaped, not orphaned
