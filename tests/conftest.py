"""Shared fixtures: composing the real Hydra config, a session-wide reference cache, the
studies and the sweep that several test modules read, and the `cuda` marker."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from harness.config.store import register_configs
from support import ROOT, SMALL_SWEEP, VJP_METHODS, run_network, run_sweep

CONF_DIR = ROOT / "conf"


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` need a CUDA device: skipped where torch sees none."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"torch {torch.__version__} sees no CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


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
    """run(*overrides) -> the Outcome of run_study for that config (timing off; on the CPU
    unless an override names the device, so a test means the same on a machine with a GPU)."""
    from harness.config.validate import validate
    from harness.study.flow import run_study

    def _run(*overrides):
        device = () if any(o.startswith("device=") for o in overrides) else ("device=cpu",)
        cfg = compose_config(*overrides, *device, "timing.enabled=false",
                             f"reference.cache_dir={reference_cache}")
        return run_study(validate(cfg), tmp_path, log=lambda line: None)
    return _run


@pytest.fixture(scope="session")
def mlp():
    """{(method, dtype): Outcome}: every network method x float64/float32 on tutorial_mlp,
    v = ones, eval mode; forward mode (one jvp per element, the slowest here) on 25 of the
    100 input elements."""
    return {(m, d): run_network("tutorial_mlp", m, d,
                                max_points=25 if m == "forward_ad" else None)
            for m in VJP_METHODS for d in ("float64", "float32")}


@pytest.fixture(scope="session")
def disc_finite32():
    """The discriminator's float32 finite differences on 12 input elements."""
    return run_network("discriminator", "finite", "float32", max_points=12)


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory, reference_cache) -> tuple[Path, str]:
    """(folder, printed) of `python run.py -m` over SMALL_SWEEP, run once in this process."""
    folder = tmp_path_factory.mktemp("sweeps") / "small"
    return folder, run_sweep(folder, reference_cache, *SMALL_SWEEP)
