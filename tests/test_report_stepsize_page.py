"""The report of a step-size sweep leads with what the sweep is for: the V plots and the
optimal-h table come first, the findings do not repeat the table row by row, the wide
accuracy tables fold per function or dtype, and the console ends with the optimal h.

One small real step-size sweep (sin x central, forward x five h x float32, float64: 20
jobs, timing off), stored by the Python API. Slow: the sweep takes tens of seconds."""
from __future__ import annotations

import contextlib
import io
import re
import shutil

import pandas as pd
import pytest

import harness as dydx
from harness.report.sweep_page import write_sweep_report

pytestmark = pytest.mark.slow

STEPS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]


@pytest.fixture(scope="module")
def stepsize(tmp_path_factory, reference_cache):
    """(folder, what the sweep printed)."""
    folder = tmp_path_factory.mktemp("stepsize") / "sweep"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        dydx.sweep(fn="sin", method="finite", dtype=["float32", "float64"],
                   params=dict(scheme=["central", "forward"], h=STEPS), grid=dict(n=50),
                   timing=False, out=folder, reference=dict(cache_dir=str(reference_cache)))
    return folder, printed.getvalue()


def sections(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, re.M)


def test_the_report_opens_with_the_v_plots_then_the_optimal_h(stepsize):
    text = (stepsize[0] / "report.md").read_text()
    assert sections(text)[:3] == ["Error against step size", "What the data show", "Accuracy"]
    lead = text.split("## Error against step size", 1)[1].split("## What the data show", 1)[0]
    plots = [m.start() for m in re.finditer(r"!\[error against h: fn = sin\]\(plots/stepsize_", lead)]
    assert len(plots) == 1 and plots[0] < lead.index("### Optimal step size")


def test_the_optimal_h_table_holds_the_measured_best_step(stepsize):
    folder = stepsize[0]
    text = (folder / "report.md").read_text()
    table = text.split("### Optimal step size", 1)[1].split("\n\n")[1].splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
            for line in table[2:]]
    assert len(rows) == 4  # float32, float64 x central, forward
    summary = pd.read_parquet(folder / "summary.parquet")
    for row in rows:
        runs = summary[(summary["dtype"] == row["dtype"]) & (summary["scheme"] == row["scheme"])
                       & (summary["n_nonfinite"] == 0)]
        best = runs.loc[runs["max_abs_err"].idxmin()]
        assert float(row["h_best"]) == best["h"]
        assert float(row["err_best"]) == pytest.approx(best["max_abs_err"], rel=5e-3)


def test_findings_do_not_repeat_the_table_row_by_row(stepsize):
    text = (stepsize[0] / "report.md").read_text()
    lead = text.split("### Optimal step size", 1)[1].split("## What the data show", 1)[0]
    assert not re.search(r"^- ", lead, re.M)  # no bullet per (dtype, scheme) row
    words = text.split("## What the data show", 1)[1].split("## Accuracy", 1)[0]
    bullets = re.findall(r"^- .*$", words, re.M)
    assert len(bullets) == 3  # the most accurate per dtype, and the step-size summary
    assert bullets[2].startswith("- step size: the measured best h is within ")


def test_wide_tables_fold_per_function_or_dtype(stepsize):
    folder = stepsize[0]
    page = (folder / "report.html").read_text()
    accuracy = page.split("<h2>Accuracy</h2>", 1)[1].split("<h2>", 1)[0]
    folds = re.findall(r"<details><summary>(.*?)</summary>\n(.*?)</details>", accuracy, re.S)
    # Ten variants (2 schemes x 5 h) do not fit across: one fold for the one function,
    # each variant a row, the dtypes as columns.
    assert [title for title, _ in folds] == ["fn = sin", "fn = sin"]  # accuracy, vs best
    head, *rows = re.findall(r"<tr>(.*?)</tr>", folds[0][1])
    assert re.findall(r"<th>(.*?)</th>", head) == ["method", "float32", "float64"]
    assert len(rows) == 10
    assert rows[0].startswith("<td>finite scheme=central h=0.1</td>")


def test_the_console_ends_with_the_optimal_h_table(stepsize):
    folder, printed = stepsize
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("fn "))
    assert lines[start].split() == ["fn", "dtype", "scheme", "h_best", "err_best", "h_model",
                                    "err_model", "h_ratio", "p", "C", "n_h"]
    assert [line.split()[:3] for line in lines[start + 2:start + 6]] == [
        ["sin", "float32", "central"], ["sin", "float32", "forward"],
        ["sin", "float64", "central"], ["sin", "float64", "forward"]]
    assert lines.index(f"dydx: report.html: {folder / 'report.html'}") > start


def test_large_sweeps_link_each_configurations_page(stepsize, tmp_path):
    folder = tmp_path / "linked"
    shutil.copytree(stepsize[0], folder)
    write_sweep_report(folder, embed_runs=4)
    text, page = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    links = re.findall(r"^\| \[(\w+)\]\((\w+/report\.md)\) \|", text, re.M)
    assert len(links) == 20 and all(f"{name}/report.md" == path for name, path in links)
    assert all((folder / path).is_file() for _, path in links)
    assert '<a href="0_sin_finite_float32/report.md">0_sin_finite_float32</a>' in page
