"""Shared fixtures: composing the real Hydra config, and a session-wide reference cache."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from harness.config import register_configs

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"


@pytest.fixture(scope="session")
def reference_cache(tmp_path_factory) -> Path:
    """One mpmath reference cache for the whole session (never the project's results/)."""
    return tmp_path_factory.mktemp("reference-cache")


@pytest.fixture(scope="session")
def compose_config():
    """compose_config(*overrides) -> the DictConfig `python run.py <overrides>` would get."""
    register_configs()

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=list(overrides))

    return _compose


@pytest.fixture
def run(compose_config, reference_cache, tmp_path):
    """run(*overrides) -> the Outcome of run_study for that config (timing off)."""
    from harness.config import validate
    from harness.runner import run_study

    def _run(*overrides):
        cfg = compose_config(*overrides, "timing.enabled=false",
                             f"reference.cache_dir={reference_cache}")
        return run_study(validate(cfg), tmp_path, log=lambda line: None)
    return _run
