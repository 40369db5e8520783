"""Where a number was measured: versions, hardware, threads and commit, for every record;
and what the operating system says about this process while it is timed (CPU time, page
faults, time spent waiting for a CPU) and about the machine's load before timing starts."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TASKS = Path("/proc/self/task")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)  # one process measures one checkout; a sweep asks per job
def git_sha() -> str:
    """HEAD of the project checkout, with '-dirty' when it has uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        sha = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def device_name(device: torch.device) -> str:
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return cpu_model()


def machine_info(device: torch.device) -> dict:
    return {
        "cpu_model": cpu_model(),
        "device_name": device_name(device),
        "cuda_version": torch.version.cuda or "",
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": sys.platform,
        "host": platform.node(),
        "git_sha": git_sha(),
    }


def available_cpus() -> int:
    """CPUs this process may run on (a SLURM allocation or taskset narrows it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- what the operating system says while we time --------------------------------------

def cpu_seconds() -> float:
    """CPU time of this process, every thread, user and system."""
    return time.process_time()


def page_faults() -> int:
    """Page faults of this process so far (minor + major). A call that faults pays the
    kernel to map and zero fresh memory: the allocator's state, not the method's work."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt + usage.ru_majflt


def _task_wait_ns(task: Path) -> int:
    # schedstat: time on a CPU, time waiting on a run queue, timeslices (ns, ns, count).
    return int((task / "schedstat").read_bytes().split()[1])


def run_queue_wait() -> Optional[float]:
    """Seconds this process's threads have spent ready to run but waiting for a CPU
    (Linux /proc/self/task/*/schedstat); None where the kernel does not say.

    This is contention, counted by the scheduler itself: time another process had the CPU
    while we wanted it. Threads that end between two readings take their share with them,
    which can only make a block look quieter than it was, never busier."""
    try:
        total = 0
        for task in TASKS.iterdir():
            try:
                total += _task_wait_ns(task)
            except (OSError, IndexError, ValueError):
                continue  # the thread ended while we read
        return total / 1e9
    except OSError:
        return None


def _runnable_now() -> Optional[int]:
    """Runnable tasks on the whole machine right now (/proc/stat procs_running)."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _own_runnable() -> int:
    """This process's threads running or ready to run now (state R in their stat)."""
    count = 0
    for task in TASKS.iterdir():
        try:
            # pid (comm) state ...: comm may hold spaces and parentheses; state follows ')'.
            if (task / "stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"R":
                count += 1
        except (OSError, IndexError):
            continue  # the thread ended while we read
    return count


def runnable_others() -> Optional[int]:
    """Tasks of other processes running or ready to run on the machine right now (None
    where the kernel does not say). Our own threads are left out: a thread pool spinning
    between two blocks is not a neighbour."""
    everyone = _runnable_now()
    if everyone is None:
        return None
    try:
        return max(0, everyone - _own_runnable())
    except OSError:
        return None


def load_snapshot() -> dict:
    """The machine's load just before timing: 1-minute load average, tasks runnable besides
    this one, and the CPUs this process may use (what contention to expect, recorded)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    others = runnable_others()
    return {"load_avg_1m": load, "runnable_others": -1 if others is None else others,
            "cpus": available_cpus()}
