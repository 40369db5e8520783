"""Where a number was measured: versions, hardware, threads and commit, for every record."""
from __future__ import annotations

import functools
import platform
import subprocess
import sys
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
