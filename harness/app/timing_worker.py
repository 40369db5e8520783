"""timing.processes=k: the measurement repeated in k fresh processes, as pyperf does.

One process's allocator, caches and thread pool carry the history of everything it ran
before (the reference, the first call, earlier sweep jobs). A fresh process starts from
what a user's program starts from, so k of them show how much a time depends on that
state: the record gives the median over processes and their spread.

Each worker is `python -m harness.app.timing_worker`: it reads the run's resolved config
(YAML) on stdin, builds the same study, makes the method's first call, runs the timing
protocol and prints its measurement as one JSON line. Workers run one after another,
never at once (they would contend), each under a time limit.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Callable

from omegaconf import OmegaConf

from harness.config.validate import validate
from harness.study.flow import time_study
from harness.study.timing import PairTiming, from_dict, to_dict

# The line a worker's measurement is printed on starts with this.
MARK = "dydx-timing: "
# A worker pays for its imports (seconds) and the method's first call (torch.compile: a
# minute) besides the warm-up and measurement (each at most timing.max_run_time).
WORKER_OVERHEAD_S = 300.0


def main() -> None:
    """Time the study of the config on stdin; a failure is one line on stderr, exit 1."""
    try:
        cfg = OmegaConf.create(sys.stdin.read())
        cfg.timing.processes = 1
        pair = time_study(validate(cfg), log=lambda line: None)
    except Exception as err:  # noqa: BLE001 - the parent reports it as one line
        first = (str(err).strip().splitlines() or [""])[0]
        print(f"{type(err).__name__}: {first}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    print(MARK + json.dumps(to_dict(pair)), flush=True)


def run_workers(config_yaml: str, k: int, log: Callable[[str], None],
                max_run_time: float) -> list[PairTiming]:
    """k fresh processes, one after another, each timing the study of config_yaml."""
    return [_one_worker(config_yaml, i, k, log, WORKER_OVERHEAD_S + 2 * max_run_time)
            for i in range(k)]


def _one_worker(config_yaml: str, i: int, k: int, log: Callable[[str], None],
                timeout: float) -> PairTiming:
    log(f"  timing process {i + 1}/{k} ...")
    try:
        done = subprocess.run([sys.executable, "-m", "harness.app.timing_worker"],
                              input=config_yaml, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timing process {i + 1} of {k} did not finish within "
                           f"{timeout:.0f} s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"timing process {i + 1} of {k} failed (exit {done.returncode}): "
                           f"{last}")
    return from_dict(json.loads(lines[-1][len(MARK):]))


if __name__ == "__main__":
    main()
