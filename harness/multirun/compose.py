"""Compose a sweep's job configs as few times as the launcher allows.

Hydra's BasicSweeper composes every job's config to validate a batch before launching it
(a bad value fails before any job runs), and the launcher then composes each one again to
run it: two compositions per job, 0.1 to 0.6 s each on 2 cores (more under load), the
largest fixed cost of a job with timing off, and the validation runs serially before the
first job starts.

- A launcher that runs the jobs in this process (the basic one): `compose_once` keeps the
  config the validation composed and hands it to the launcher's request for the same
  overrides (once; any other request composes as before), so the validation stays and the
  second composition goes.
- A launcher that runs them in other processes (joblib, submitit) composes each job in its
  worker. There the validation composes each swept value once, not every combination:
  a job whose every override already composed in an earlier job of the sweep is not
  composed again here (a bad value, or a key that does not exist, still fails before any
  job runs; its worker composes the job itself). For the atlas's 1,512 jobs that is about
  80 compositions instead of 1,512, minutes of a serial phase before the first job. Nothing
  is cached for these launchers: the loader is pickled into every job's arguments, and a
  cache would carry every composed config of the sweep to each job (measured: a 252-job
  sweep of jobs that take 0.1 s each then spent about 11 s per job).
"""
from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig


def _compose(loader: Any, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
    """Hydra's own composition (the class's method: the instance's is the wrapper)."""
    return type(loader).load_sweep_config(loader, master_config, sweep_overrides)


class _ReuseValidated:
    """load_sweep_config for an in-process launcher: the validation's config, reused once."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.composed: dict[tuple[str, ...], DictConfig] = {}

    def __call__(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        key = tuple(sweep_overrides)
        if key in self.composed:
            return self.composed.pop(key)  # the launcher's request: the validated config
        config = _compose(self.loader, master_config, sweep_overrides)
        self.composed[key] = config  # the validating sweeper only checks that it composes
        return config


class _ValidateEachValueOnce:
    """load_sweep_config for launchers that compose in their workers: in this process (the
    sweeper validating), overrides that all composed before are not composed again; in any
    other process (a worker, which gets this object pickled with the loader) every call
    composes, as Hydra does."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.pid = os.getpid()
        self.validated: set[str] = set()

    def __call__(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        if os.getpid() == self.pid and set(sweep_overrides) <= self.validated:
            return master_config  # only validated: the caller discards what it gets
        config = _compose(self.loader, master_config, sweep_overrides)
        if os.getpid() == self.pid:
            self.validated.update(sweep_overrides)
        return config


def compose_once(loader: Any, in_process: bool = True) -> None:
    """Wrap loader.load_sweep_config (an instance attribute shadows the method): reuse the
    validation's configs when the launcher runs jobs `in_process`, else validate each
    swept value once."""
    if isinstance(loader.__dict__.get("load_sweep_config"), (_ReuseValidated,
                                                             _ValidateEachValueOnce)):
        return  # already wrapped in this process
    wrapper = _ReuseValidated if in_process else _ValidateEachValueOnce
    loader.load_sweep_config = wrapper(loader)
