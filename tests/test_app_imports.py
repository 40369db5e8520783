"""A command imports what it needs: no Dynamo unless a compiled method runs, no scipy
unless a function needs scipy.special, and a command turned away at the door never imports
the study's heavy libraries (subprocesses: slow)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from support import ROOT

pytestmark = pytest.mark.slow

PROBE = """
import runpy, sys
sys.argv = ["run.py", *{args!r}]
try:
    runpy.run_path("run.py", run_name="__main__")
except SystemExit as exit_:
    print("EXIT", exit_.code)
print("LOADED", " ".join(m for m in {modules!r} if m in sys.modules))
"""
HEAVY = ["torch._dynamo", "torch._inductor", "scipy", "matplotlib", "pandas", "pyarrow",
         "sympy", "mpmath"]


def loaded(*args: str) -> tuple[list[str], str]:
    """(modules of HEAVY that `python run.py args` imported, what it printed)."""
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args), modules=HEAVY)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    line = next(l for l in done.stdout.splitlines() if l.startswith("LOADED"))
    return line.split()[1:], done.stdout + done.stderr


def test_a_default_run_imports_neither_dynamo_nor_scipy(tmp_path, reference_cache):
    modules, printed = loaded("grid.n=50", "timing.enabled=false", "device=cpu",
                              f"hydra.run.dir={tmp_path / 'run'}",
                              f"reference.cache_dir={reference_cache}")
    assert (tmp_path / "run" / "records.parquet").is_file(), printed
    assert "torch._dynamo" not in modules and "torch._inductor" not in modules
    assert "scipy" not in modules  # sin's error model needs no scipy.special
    assert {"matplotlib", "pandas"} <= set(modules)  # the run did draw and store


def test_a_complex_step_run_with_a_certified_reference_imports_no_sympy(
        tmp_path, reference_cache):
    # sympy and mpmath cost about a second of a process's start; the Arb reference and the
    # study need neither. (A run that calls torch.autograd.grad imports sympy all the same,
    # through torch.fx's symbolic shapes: autograd itself, and the hunt's cross-check of a
    # finite-difference finding.)
    modules, printed = loaded("method=complex_step", "grid.n=50", "timing.enabled=false",
                              "device=cpu", f"hydra.run.dir={tmp_path / 'run'}",
                              f"reference.cache_dir={reference_cache}")
    assert (tmp_path / "run" / "records.parquet").is_file(), printed
    assert "sympy" not in modules and "mpmath" not in modules, modules


def test_a_rejected_command_imports_no_study_libraries():
    modules, printed = loaded("fn=nosuch")
    assert "EXIT 2" in printed and "dydx: error: unknown fn 'nosuch'" in printed
    assert modules == []
