"""A sweep composes each job's config once (Hydra's sweeper validates, the launcher
reuses what it composed), and the jobs still get their own configs."""
from __future__ import annotations

import pandas as pd
import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl

from support import run_sweep

pytestmark = pytest.mark.slow


def test_each_job_config_is_composed_once(tmp_path, reference_cache, monkeypatch):
    calls = []
    original = ConfigLoaderImpl.load_configuration

    def counting(self, config_name, overrides, run_mode, *args, **kwargs):
        calls.append(list(overrides))
        return original(self, config_name, overrides, run_mode, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counting)
    folder = tmp_path / "sweep"
    run_sweep(folder, reference_cache, "fn=sin,tanh", "method=autograd,finite", "grid.n=20",
              "timing.enabled=false")
    # A job's composition has its own fn (the sweep's own has fn=sin,tanh).
    jobs = [c for c in calls if "fn=sin" in c or "fn=tanh" in c]
    assert len(jobs) == 4  # Hydra alone: 8, each job composed to validate and to run
    assert sorted((c[c.index("fn=sin") if "fn=sin" in c else c.index("fn=tanh")]) for c in jobs) \
        == ["fn=sin", "fn=sin", "fn=tanh", "fn=tanh"]
    summary = pd.read_parquet(folder / "summary.parquet")
    assert sorted(zip(summary["fn"], summary["method"])) == [
        ("sin", "autograd"), ("sin", "finite"), ("tanh", "autograd"), ("tanh", "finite")]
