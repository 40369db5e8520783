"""Compose each sweep job's config once, not twice.

Hydra's BasicSweeper composes every job's config to validate a batch before launching it
(a bad value fails before any job runs), and the launcher then composes each one again to
run it: two compositions per job, about 0.1 s each on 2 cores, the largest fixed cost of a
job with timing off. `compose_once` keeps the config the validation composed and hands it
to the launcher's request for the same overrides (once; any other request composes as
before), so the validation stays and the second composition goes.
"""
from __future__ import annotations

from typing import Any

from omegaconf import DictConfig


def compose_once(loader: Any) -> None:
    """Wrap loader.load_sweep_config (an instance attribute shadows the method)."""
    if getattr(loader, "_dydx_composed", None) is not None:
        return  # already wrapped in this process
    original = loader.load_sweep_config
    composed: dict[tuple[str, ...], DictConfig] = {}

    def load_sweep_config(master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        key = tuple(sweep_overrides)
        if key in composed:
            return composed.pop(key)  # the launcher's request: the validated config
        config = original(master_config, sweep_overrides)
        composed[key] = config  # the validating sweeper only checks that it composes
        return config

    loader._dydx_composed = composed
    loader.load_sweep_config = load_sweep_config
