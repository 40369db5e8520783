"""benchmarks/cuda_check.py where there is no GPU: one clear line, exit status 2 (the lead
runs the real check on a lent GPU)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from support import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import cuda_check  # noqa: E402


def test_without_cuda_the_message_names_torch_and_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cuda_check.no_cuda_message() == (
        f"cuda_check: no CUDA device: torch {torch.__version__} (CUDA "
        f"{torch.version.cuda or 'none'}) sees no GPU here; run this on a GPU machine")
    assert cuda_check.main() == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the check "
                                                      "would run for real")
def test_the_script_exits_2_with_one_line_on_stderr():
    done = subprocess.run([sys.executable, "benchmarks/cuda_check.py"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [cuda_check.no_cuda_message()]
