"""A sweep composes each job's config once (Hydra's sweeper validates, the launcher
reuses what it composed), and the jobs still get their own configs."""
from __future__ import annotations

import os
import pickle

import pandas as pd
import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl

from harness.multirun.compose import compose_once
from support import run_sweep


@pytest.mark.slow
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


class CountingLoader:
    """A stand-in for Hydra's config loader: composing returns the overrides, counted."""

    def __init__(self):
        self.calls = []

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls.append(list(sweep_overrides))
        return {"composed": list(sweep_overrides)}


def test_a_launcher_in_other_processes_gets_each_swept_value_validated_once(monkeypatch):
    loader = CountingLoader()
    compose_once(loader, in_process=False)
    batch = [[f"fn.name={op}", f"dtype={d}"] for op in ("sin", "tanh") for d in ("float32", "float64")]
    for overrides in batch:
        loader.load_sweep_config({"master": True}, overrides)
    # sin+float32, sin+float64 (float64 new), tanh+float32 (tanh new); tanh+float64: all seen.
    assert loader.calls == batch[:3]
    # A worker (another process) gets the wrapper pickled with the loader: it composes every
    # job, so each job gets its own config.
    worker = pickle.loads(pickle.dumps(loader))
    monkeypatch.setattr(os, "getpid", lambda: -1)
    assert worker.load_sweep_config({}, batch[3]) == {"composed": batch[3]}
    assert worker.calls == batch[:3] + [batch[3]]


def test_an_in_process_launcher_reuses_each_validated_config_once():
    loader = CountingLoader()
    compose_once(loader, in_process=True)
    first = loader.load_sweep_config({}, ["fn=sin"])      # the sweeper validating
    assert loader.load_sweep_config({}, ["fn=sin"]) is first  # the launcher running it
    loader.load_sweep_config({}, ["fn=sin"])               # any later request composes
    assert loader.calls == [["fn=sin"], ["fn=sin"]]
