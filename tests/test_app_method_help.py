"""`python run.py method=<m> --help` explains the chosen method and its parameters, read
from the registry and from the comments on its parameter fields; Hydra's shell completion
works through run.py."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import Optional

import pytest

from harness.app.commandline import method_help
from harness.methods.base import parameter_notes
from support import ROOT


@dataclass
class ExampleParams:
    # central | forward
    scheme: str = "central"
    # The step; None: from the dtype.
    # A second line of the same note.
    h: Optional[float] = None
    plain: int = 3


def test_parameter_notes_are_the_comments_above_each_field():
    assert parameter_notes(ExampleParams) == {
        "scheme": "central | forward",
        "h": "The step; None: from the dtype. A second line of the same note.",
        "plain": ""}


def test_method_help_says_what_the_method_computes_and_lists_its_parameters():
    assert method_help("finite") == (
        "  finite: Difference quotient of f, first or second derivative, central or one-sided\n"
        "  method.scheme=central: central | forward | backward\n"
        "  method.h=None: Absolute step used at every x; None derives it from the dtype (see "
        "default_step).\n"
        "  applies to networks too (fn=tutorial_mlp, fn=discriminator)")
    assert method_help("vmap_grad").splitlines()[1:] == ["  (no parameters)"]
    assert method_help("no_such_method") == ""


@pytest.mark.slow
def test_run_py_help_for_a_method_and_shell_completion():
    done = subprocess.run([sys.executable, "run.py", "method=stencil", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    section = done.stdout.split("== Method stencil (python run.py method=NAME --help for "
                                "another) ==\n", 1)[1].split("\n\n", 1)[0]
    assert section.splitlines()[0].startswith("  stencil: Central stencil of accuracy order")
    assert section.splitlines()[1].startswith("  method.accuracy=4: ")
    completion = subprocess.run([sys.executable, "run.py", "-sc", "install=bash"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
    assert completion.returncode == 0 and "hydra_bash_completion()" in completion.stdout
