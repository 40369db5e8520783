"""A heartbeat for long jobs: 'still running (N s)' every HEARTBEAT_S seconds."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

# A job that runs longer than this prints a "still running" line every this many seconds.
HEARTBEAT_S = 30.0


def _wait(stop: threading.Event, seconds: float) -> bool:
    return stop.wait(seconds)


@contextmanager
def heartbeat(say: Callable[[str], None], every_s: float = HEARTBEAT_S,
              clock: Callable[[], float] = time.perf_counter,
              wait: Callable[[threading.Event, float], bool] = _wait) -> Iterator[None]:
    """Print 'still running (N s)' every `every_s` seconds until the block ends.

    `wait(stop, seconds)` returns True once the block has ended (else after `seconds`);
    it and `clock` are injectable, so a test needs no sleep."""
    stop = threading.Event()
    start = clock()

    def beat() -> None:
        while not wait(stop, every_s):
            say(f"still running ({clock() - start:.0f} s)")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
