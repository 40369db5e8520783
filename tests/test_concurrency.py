"""Concurrent writers (issue 12, item 4): a folder has one writer at a time. A second run
or sweep into a folder that a live process holds is refused with one line, exit 2, and the
holder's results come out whole; a claim dies with its process, so a killed writer never
blocks the folder.

The holder is a real `python run.py` process whose function waits until the test lets it
go; the second command runs in this process (run.py's own entry, tests/support.run_py),
which is another process as far as the folder's lock is concerned. Slow: a real start-up.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.claims import LOCK, Claim
from harness.errors import FolderError
from harness.results import MANIFEST
from support import ROOT, run_py

pytestmark = pytest.mark.slow

HELD_JOB = ("fn=py", "fn.target=tests.userpkg.hostile:held_square", "grid.n=20",
            "timing.enabled=false", "device=cpu")


def start(go: Path, *args: str) -> subprocess.Popen:
    """`python run.py args`, its function held until the file `go` exists."""
    return subprocess.Popen([sys.executable, "run.py", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "DYDX_TEST_GO": str(go)})


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_item_04_a_second_run_into_a_folder_a_live_run_holds_is_refused(tmp_path,
                                                                       reference_cache,
                                                                       monkeypatch):
    run_dir = tmp_path / "run"
    args = (f"hydra.run.dir={run_dir}", f"reference.cache_dir={reference_cache}", *HELD_JOB)
    first = start(tmp_path / "go", *args)
    wait_for(run_dir / LOCK, first)
    monkeypatch.chdir(ROOT)
    second = run_py(*args)
    (tmp_path / "go").touch()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.status == 2
    assert second.stderr.startswith(f"dydx: error: {run_dir} is in use by another dydx process "
                                    f"(pid {first.pid} on host ")
    assert second.stderr.count("\n") == 1
    record = pd.read_parquet(run_dir / "records.parquet").iloc[0]
    assert (record["fn"], record["status"], record["run_dir"]) == (
        "tests.userpkg.hostile:held_square", "ok", str(run_dir))
    assert len(pd.read_parquet(run_dir / "points.parquet")) == 20
    assert not (run_dir / LOCK).exists()


def test_item_04_a_second_sweep_into_a_folder_a_live_sweep_holds_is_refused(tmp_path,
                                                                           reference_cache,
                                                                           monkeypatch):
    folder = tmp_path / "sweep"
    args = ("-m", "dtype=float32,float64", f"hydra.sweep.dir={folder}",
            f"reference.cache_dir={reference_cache}", *HELD_JOB)
    first = start(tmp_path / "go", *args)
    wait_for(folder / MANIFEST, first)
    started = json.loads((folder / MANIFEST).read_text())["started"]
    monkeypatch.chdir(ROOT)
    second = run_py(*args[:1], "fn=sin", *args[1:])
    (tmp_path / "go").touch()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.status == 2
    assert second.stderr.startswith(f"dydx: error: {folder} is in use by another dydx process "
                                    f"(pid {first.pid} on host ")
    assert second.stderr.count("\n") == 1
    assert json.loads((folder / MANIFEST).read_text())["started"] == started
    summary = pd.read_parquet(folder / "summary.parquet")
    assert sorted(summary["dtype"]) == ["float32", "float64"]
    assert set(summary["fn"]) == {"tests.userpkg.hostile:held_square"}
    assert not list(folder.rglob(LOCK))


def test_a_claim_is_exclusive_and_dies_with_its_process(tmp_path):
    folder = tmp_path / "held"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from harness.claims import Claim; c = Claim({str(folder)!r}); "
                               f"print('held', flush=True); import time; time.sleep(600)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(FolderError) as info:
        Claim(folder)
    assert str(info.value).startswith(f"{folder} is in use by another dydx process (pid "
                                      f"{holder.pid} on host ")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with Claim(folder):  # the kernel dropped the dead holder's lock
        with pytest.raises(FolderError):
            Claim(folder)
    assert not (folder / LOCK).exists()
