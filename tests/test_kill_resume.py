"""Kills and resumes (issue 12, items 5 and 11): a sweep killed at random moments and in
the middle of writing a file, then resumed, ends with every job's record exactly once, no
finished row lost or rewritten, and no temp file or lock left; Ctrl-C prints one line that
says how to resume, and that command finishes the sweep. Real processes: slow."""
from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.atomic import temp_files
from harness.claims import LOCK
from harness.report.__main__ import main as report_main
from harness.results import MANIFEST, job_key
from support import ROOT, run_py

pytestmark = pytest.mark.slow

FNS = "fn=sin,tanh,exp,cos"
COMMON = ["grid.n=200", "timing.enabled=false", "device=cpu"]
# run.py, with atomic_write pausing forever once it has written the temp file of the
# given target (PAUSE_AT=<file name>:<n-th such write>) and said so in PAUSE_MARK: a kill
# then lands in the middle of that write, deterministically.
PAUSING = """
import os, runpy, sys, time
from pathlib import Path
import harness.atomic as atomic
name, nth = os.environ["PAUSE_AT"].split(":")
real, seen = atomic.atomic_write, []
def pausing(path, write, suffix=""):
    def wrapped(tmp):
        write(tmp)
        if Path(path).name == name:
            seen.append(path)
            if len(seen) == int(nth):
                Path(os.environ["PAUSE_MARK"]).write_text(tmp)
                time.sleep(3600)
    return real(path, wrapped, suffix)
atomic.atomic_write = pausing
sys.argv = ["run.py", *sys.argv[1:]]
runpy.run_path("run.py", run_name="__main__")
"""


def records(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.glob("*/records.parquet")}


def launch(args: list[str], env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, "-c", PAUSING, *args] if env else [sys.executable, "run.py", *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, **(env or {})})


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def test_a_sweep_killed_at_random_moments_and_mid_write_resumes_to_every_record_once(
        tmp_path, reference_cache, capsys):
    folder = tmp_path / "killed"
    args = ["-m", FNS, "method=autograd,finite", *COMMON, f"hydra.sweep.dir={folder}",
            f"reference.cache_dir={reference_cache}"]
    chance = random.Random(12)
    kept: dict[str, bytes] = {}
    for kill_at in (chance.uniform(1, 5), "records.parquet:2", "points.parquet:1"):
        mark = tmp_path / "paused"
        mark.unlink(missing_ok=True)
        env = None if isinstance(kill_at, float) else {"PAUSE_AT": kill_at, "PAUSE_MARK": str(mark)}
        process = launch(args, env)
        deadline = time.monotonic() + (kill_at if env is None else 300)
        while time.monotonic() < deadline and process.poll() is None and not mark.exists():
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
        kill(process)
        if env is not None:  # killed between writing the temp file and moving it in place
            assert Path(mark.read_text()).exists()
        now = records(folder)
        assert {k: now[k] for k in kept} == kept  # no finished row lost or rewritten
        kept = now
    assert len(kept) < 8 and not (folder / "summary.parquet").exists()

    resumed = run_py(*args)  # in this process: the kills were real, the resume need not be
    assert resumed.status == 0, resumed.stderr
    assert f"; {len(kept)} already finished there and will be skipped" in resumed.stdout
    assert resumed.stdout.count("skipped, finished earlier in") == len(kept)
    final = records(folder)
    assert {k: final[k] for k in kept} == kept and len(final) == 8
    manifest = json.loads((folder / MANIFEST).read_text())
    summary = pd.read_parquet(folder / "summary.parquet")
    assert sorted(summary["overrides"].map(job_key)) == sorted(map(job_key, manifest["jobs"]))
    assert "dydx: 8/8 jobs have a record" in resumed.stdout
    leftovers = [p for d in (folder, *folder.iterdir()) if d.is_dir() for p in temp_files(d)]
    assert leftovers == [] and not list(folder.rglob(LOCK))
    assert report_main([str(folder)]) == 0
    assert capsys.readouterr().out.startswith("dydx: 8 records (8 ok, 0 failed)\n")


def test_item_11_ctrl_c_in_a_sweep_is_one_line_with_the_resume_command_exit_130(
        tmp_path, reference_cache):
    folder = tmp_path / "interrupted"
    args = ["-m", FNS, "method=autograd,loop", *COMMON, f"hydra.sweep.dir={folder}",
            f"reference.cache_dir={reference_cache}"]
    process = launch(args)
    deadline = time.monotonic() + 300
    while not list(folder.glob("*/records.parquet")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err.startswith(f"dydx: interrupted: finished jobs are kept in {folder}; resume "
                          f"with: python run.py -m ") and err.count("\n") == 1
    assert "Traceback" not in out + err
    for job_dir in (p for p in folder.iterdir() if p.is_dir()):
        assert (job_dir / "records.parquet").exists(), f"{job_dir.name} was left unfinished"
    done = len(records(folder))
    command = shlex.split(err.split("resume with: ", 1)[1])
    assert command[:2] == ["python", "run.py"]
    resumed = run_py(*command[2:])  # the printed command, run in this process
    assert resumed.status == 0, resumed.stderr
    assert resumed.stdout.count("skipped, finished earlier in") == done
    assert len(records(folder)) == 8
