"""Launchers: who runs a sweep's jobs, how many at once, and how many threads each gets."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import DictConfig

from harness.study.machine import available_cpus  # noqa: F401 - its home is the machine


@dataclass(frozen=True)
class LauncherInfo:
    # The hydra/launcher choice: basic, joblib, submitit_local, slurm, ... ('single' for a run).
    name: str
    # How many jobs of this sweep may run at the same time (0: unknown).
    n_workers: int
    # True when those workers share this machine, so their timings contend for its cores.
    local: bool

    @property
    def parallel(self) -> bool:
        return self.n_workers != 1

    def columns(self) -> dict:
        return {"launcher": self.name, "n_workers": self.n_workers, "parallel": self.parallel}


SINGLE_RUN = LauncherInfo("single", 1, True)


def _joblib_workers(n_jobs: int, cpus: int) -> int:
    # joblib's convention: -1 is every CPU, -2 all but one, and so on.
    return n_jobs if n_jobs > 0 else max(1, cpus + 1 + n_jobs)


def launcher_info(hydra_cfg: DictConfig, total: Optional[int], cpus: int) -> LauncherInfo:
    """Name and concurrency of the launcher a sweep runs under, from its Hydra config."""
    name = str(hydra_cfg.runtime.choices.get("hydra/launcher", "basic"))
    launcher = hydra_cfg.launcher
    target = str(launcher.get("_target_", ""))
    if target.endswith(".BasicLauncher"):
        workers, local = 1, True
    elif target.endswith(".JoblibLauncher"):
        workers, local = _joblib_workers(int(launcher.get("n_jobs", -1)), cpus), True
    elif target.endswith("submitit_launcher.LocalLauncher"):
        # submitit's local executor starts every job of the batch at once.
        workers, local = total or 0, True
    elif target.endswith("submitit_launcher.SlurmLauncher"):
        workers, local = int(launcher.get("array_parallelism", 0)), False
    else:
        workers, local = 0, False
    if total and workers:
        workers = min(workers, total)
    return LauncherInfo(name, workers, local)


def job_threads(info: LauncherInfo, cpus: int) -> Optional[int]:
    """Threads for one job: the machine's CPUs shared among local workers (None: torch's default).

    Without this, two workers on two cores each start a two-thread pool and the sweep runs
    slower than serially; accuracy does not depend on it, timing is marked parallel anyway.
    """
    if not (info.local and info.parallel):
        return None
    return max(1, cpus // max(1, info.n_workers))
