"""Network studies through run.py: a sweep over network methods lands in the summary and
report. The sweeps run in this process (tests/support.run_sweep), seconds each: slow."""
import pandas as pd
import pytest

from support import run_sweep

pytestmark = pytest.mark.slow


def test_network_sweep_reports_backward_and_autograd_grad_agree(tmp_path, reference_cache):
    folder = tmp_path / "sweep"
    printed = run_sweep(folder, reference_cache, "fn=tutorial_mlp",
                        "method=autograd,backward,finite", "dtype=float32,float64",
                        "timing.enabled=false")
    summary = pd.read_parquet(folder / "summary.parquet")
    assert sorted(zip(summary["method"], summary["dtype"])) == sorted(
        (m, d) for m in ("autograd", "backward", "finite") for d in ("float32", "float64"))
    assert set(summary["status"]) == {"ok"}
    assert set(summary["reference"]) == {"float64-autograd"}
    assert summary["bitwise_backward_vs_autograd"].all()
    finite = summary[summary["method"] == "finite"].set_index("dtype")["norm_rel_err"]
    # A difference quotient of the same network: float32 visibly worse than float64.
    assert finite["float64"] < 1e-8 < finite["float32"] < 1e-2
    report = (folder / "report.md").read_text()
    assert "Networks: backward vs autograd.grad, forward mode, gradient penalty" in report
    assert "tutorial_mlp (float32, cpu, v=ones): out.backward(v) and torch.autograd.grad " \
           "agree bitwise" in report
    assert "report.md" in printed


def test_network_run_report_states_the_consistency(tmp_path, reference_cache):
    folder = tmp_path / "one"
    run_sweep(folder, reference_cache, "fn=tutorial_mlp", "method=backward", "dtype=float64",
              "fn.v=random", "timing.enabled=false")
    (job,) = [p for p in folder.iterdir() if (p / "records.parquet").exists()]
    text = (job / "report.md").read_text()
    assert "| out.backward(v) == autograd.grad(out, x, v), bitwise | True |" in text
    assert "| v (cotangent) | random |" in text
    assert (job / "derivative.png").stat().st_size > 0
