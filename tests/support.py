"""Helpers shared by several test modules: an in-process sweep, and network studies."""
from __future__ import annotations

import contextlib
import io
import json
import runpy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from harness.dtypes import DTYPES
from harness.methods import METHODS
from harness.networks.presets import NETWORKS
from harness.study.flow import Outcome, run_study
from harness.study.network import NetworkSpec
from harness.study.settings import ReferenceConf, TimingConf
from harness.study.spec import NetworkSubject, Study

ROOT = Path(__file__).resolve().parent.parent

# Runs code strings one after another in a fresh Python, each in its own namespace, and
# gives back what each printed: repro lines "run as printed", with one import of torch.
_RUN_EACH = """
import contextlib, io, json, sys
printed = []
for code in json.load(sys.stdin):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<repro>", "exec"), {"__name__": "__main__"})
    printed.append(out.getvalue())
json.dump(printed, sys.stdout)
"""


def run_as_printed(codes: list[str]) -> list[list[str]]:
    """The words each code string prints, run in order in one fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", _RUN_EACH], input=json.dumps(codes),
                          capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
    return [printed.split() for printed in json.loads(done.stdout)]
CPU = torch.device("cpu")
NO_TIMING = TimingConf(enabled=False)
# The in-process sweep that the multirun, analysis and report tests read (12 jobs; see
# conftest.small_sweep).
SMALL_SWEEP = ("fn=sin,tanh", "method=autograd,loop,finite", "dtype=float32,float64",
               "grid.n=60", "timing.min_run_time=0.02", "timing.max_run_time=0.1")
# What the messages that list the choices must say, written out (not read from the
# registries they check).
FUNCTION_NAMES = ("abs, cos, cube, elu, erf, exp, gelu, gelu_tanh, hardshrink, hardsigmoid, "
                  "hardswish, hardtanh, leaky_relu, log, logsigmoid, mish, relu, relu6, selu, "
                  "sigmoid, silu, sin, sinc, softplus, softshrink, softsign, sqrt, tan, tanh, "
                  "tanhshrink")
NN_ACTIVATION_NAMES = ("CELU, ELU, GELU, Hardshrink, Hardsigmoid, Hardswish, Hardtanh, "
                       "LeakyReLU, LogSigmoid, Mish, PReLU, RReLU, ReLU, ReLU6, SELU, SiLU, "
                       "Sigmoid, Softplus, Softshrink, Softsign, Tanh, Tanhshrink")
EXPRESSION_WORDS = ("allowed: numbers, + - * / ** ( ), x, pi, e and functions abs, cos, elu, "
                    "erf, exp, gelu, gelu_tanh, hardshrink, hardsigmoid, hardswish, hardtanh, "
                    "leaky_relu, log, logsigmoid, mish, relu, relu6, selu, sigmoid, silu, sin, "
                    "sinc, softplus, softshrink, softsign, sqrt, tan, tanh, tanhshrink")
# The methods that apply to networks: those with a vector-Jacobian form.
VJP_METHODS = [name for name in METHODS.names() if METHODS.get(name).vjp is not None]


def run_sweep(folder: Path, cache: Path, *args: str) -> str:
    """`python run.py -m <args>` into `folder`, in this process; returns what it printed.
    On the CPU unless `args` name a device, so a test means the same on a machine with a GPU."""
    argv = [str(ROOT / "run.py"), "-m", *args, f"hydra.sweep.dir={folder}"]
    if not any(a.startswith("reference.cache_dir=") for a in args):
        argv.append(f"reference.cache_dir={cache}")
    if not any(a.startswith("device=") for a in args):
        argv.append("device=cpu")
    out = io.StringIO()
    saved = sys.argv
    sys.argv = argv
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
    except SystemExit as exit_:
        if exit_.code:
            raise AssertionError(f"run.py exited {exit_.code}:\n{out.getvalue()}") from None
    finally:
        sys.argv = saved
    return out.getvalue()


@dataclass(frozen=True)
class Exit:
    """What `python run.py <args>` did: exit status, stdout, stderr."""

    status: int
    stdout: str
    stderr: str


def run_py(*args: str) -> Exit:
    """`python run.py <args>` in this process, through run.py's own entry (runpy, as from a
    shell): its exit status and what it printed on stdout and stderr, kept apart."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = [str(ROOT / "run.py"), *args]
    status = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 0
    finally:
        sys.argv = saved
    return Exit(status, out.getvalue(), err.getvalue())


def user(name: str, *extra: str) -> tuple[str, ...]:
    """The overrides of a user function from tests/userpkg/ops.py (fn=py)."""
    return ("fn=py", f"fn.target=tests.userpkg.ops:{name}", *extra)


def network_study(name: str = "tutorial_mlp", method: str = "autograd", dtype: str = "float64",
                  *, params: Optional[dict] = None, timing: TimingConf = NO_TIMING,
                  seed: int = 0, device: torch.device = CPU, **subject) -> Study:
    """The Study that `fn=<name> method=<method> dtype=<dtype>` validates to (on the CPU
    unless told); `subject` takes NetworkSubject's fields (v_kind, train, max_points)."""
    return Study(subject=NetworkSubject(NETWORKS.get(name), **subject),
                 method=METHODS.get(method), params=params or {}, order=1,
                 dtype=DTYPES[dtype], device=device, timing=timing,
                 reference=ReferenceConf(cache_dir=None), seed=seed)


def run_network(*args, **kwargs) -> Outcome:
    """run_study of network_study(*args, **kwargs)."""
    return run_study(network_study(*args, **kwargs), Path("."), log=lambda line: None)


def network_parts(name: str, dtype: str, v_kind: str = "ones", train: bool = False,
                  seed: int = 0) -> NetworkSpec:
    """The network, input and cotangent a study of `name` differentiates (spec.model, .x,
    .v), built by the study's own spec, as in a run."""
    spec = NetworkSpec(network_study(name, "autograd", dtype, seed=seed, v_kind=v_kind,
                                     train=train))
    spec.unsupported()  # builds model, x and v, and asks the method whether it applies
    return spec
