"""A time limit on a block of code: `with time_limit(600): ...`.

Python code (user functions, sympy, mpmath, the harness itself) is interrupted at its next
bytecode by TimeLimitExceeded: SIGALRM in the main thread (which also wakes sleeps and
waits), an asynchronous exception in any other thread. Native code cannot be interrupted,
so two backstops stand behind that: `grace_s` after the limit a watchdog thread calls
`on_stuck` (native code that released the GIL, such as a long torch kernel), and as much
again later faulthandler, which needs no GIL, ends the process with every thread's stack
written to `stuck_file` (a computation holding the GIL, such as a huge integer power).
"""
from __future__ import annotations

import ctypes
import faulthandler
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

# Seconds between the limit and each backstop: long enough for Python code to notice the
# limit and write its record (a points table of 20,000 rows takes well under a second).
GRACE_S = 30.0


class TimeLimitExceeded(BaseException):
    """The block ran past its limit. A BaseException so that user code's broad
    `except Exception:` cannot swallow it."""


def _raise_alarm(signum, frame) -> None:
    raise TimeLimitExceeded()


def timeout_reason(limit: float) -> str:
    """A timed-out record's status_reason (the command line and the Python API say it)."""
    return (f"stopped at the time limit of {limit:g} s (time_limit_s; the reference "
            f"included); give it more with time_limit_s=...")


@contextmanager
def _main_thread_alarm(seconds: float) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _raise_alarm)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # an alarm set outside (pytest-timeout, a caller's own limit) goes on
            signal.setitimer(signal.ITIMER_REAL,
                             max(outer - (time.monotonic() - started), 1e-3))


@contextmanager
def _thread_alarm(seconds: float) -> Iterator[None]:
    target, guard, state = threading.get_ident(), threading.Lock(), {"active": True}

    def fire() -> None:
        with guard:  # never deliver into code that runs after the block ended
            if state["active"]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(target), ctypes.py_object(TimeLimitExceeded))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with guard:
            state["active"] = False
        timer.cancel()


@contextmanager
def _backstops(seconds: float, grace_s: float, on_stuck: Optional[Callable[[], None]],
               stuck_file: Optional[Path]) -> Iterator[None]:
    done = threading.Event()
    watchdog = None
    if on_stuck is not None:
        watchdog = threading.Thread(
            target=lambda: done.wait(seconds + grace_s) or on_stuck(), daemon=True)
        watchdog.start()
    dump = open(stuck_file, "w", encoding="utf-8") if stuck_file is not None else None
    if dump is not None:
        faulthandler.dump_traceback_later(seconds + 2 * grace_s, exit=True, file=dump)
    try:
        yield
    finally:
        done.set()
        if dump is not None:
            faulthandler.cancel_dump_traceback_later()
            dump.close()
            Path(stuck_file).unlink(missing_ok=True)


@contextmanager
def time_limit(seconds: float, grace_s: Optional[float] = None,
               on_stuck: Optional[Callable[[], None]] = None,
               stuck_file: Optional[Path] = None) -> Iterator[None]:
    """Raise TimeLimitExceeded in this thread once the block has run `seconds`; the
    backstops follow `grace_s` (default GRACE_S) and twice that later."""
    in_main = threading.current_thread() is threading.main_thread()
    alarm = _main_thread_alarm if in_main else _thread_alarm
    grace = GRACE_S if grace_s is None else grace_s
    with _backstops(seconds, grace, on_stuck, stuck_file), alarm(seconds):
        yield
