"""timing.processes=k: the measurement repeated in k fresh processes (slow: each worker
imports torch)."""
from __future__ import annotations

import statistics
import subprocess
import sys

import pandas as pd
import pytest
from omegaconf import OmegaConf

from harness.app.timing_worker import run_workers
from support import ROOT

pytestmark = pytest.mark.slow


def test_a_run_with_three_processes_reports_their_median_and_spread(tmp_path, reference_cache):
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "run.py", "grid.n=60", "timing.processes=3", "timing.max_run_time=0.1",
         "timing.min_run_time=0.02", f"reference.cache_dir={reference_cache}",
         f"hydra.run.dir={run_dir}", "device=cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert [line.strip() for line in done.stdout.splitlines() if "timing process" in line] == \
        ["timing process 1/3 ...", "timing process 2/3 ...", "timing process 3/3 ..."]
    record = pd.read_parquet(run_dir / "records.parquet").iloc[0]
    medians = list(record["time_process_medians_s"])
    assert record["time_processes"] == 3 and len(medians) == 3
    assert record["time_median_s"] == statistics.median(medians)
    assert record["time_process_spread"] == pytest.approx(
        (max(medians) - min(medians)) / statistics.median(medians), rel=1e-12)
    assert "| medians of 3 fresh processes (s) |" in (run_dir / "report.md").read_text()


def test_a_failing_worker_is_one_line_that_says_which_and_why(compose_config):
    # A config the worker cannot validate: its one stderr line is the reason.
    cfg = compose_config("fn=sin")
    cfg.fn.name = "nosuchfn"
    with pytest.raises(RuntimeError, match=r"^timing process 1 of 1 failed \(exit 1\): "
                                           r"ConfigError: unknown fn 'nosuchfn'; choose one of: abs, "):
        run_workers(OmegaConf.to_yaml(cfg), 1, log=lambda line: None, max_run_time=0.1)
