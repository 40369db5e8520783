"""The report builder on a small real sweep: files, self-containment, words, rebuild.

One sweep (sin and tanh x autograd, loop, finite x float32, float64, timed briefly) runs
in this process; the tests read what it wrote and rebuild it with `python -m harness.report`.
"""
from __future__ import annotations

import base64
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness import report, sweep
from support import run_sweep

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory, reference_cache) -> Path:
    folder = tmp_path_factory.mktemp("report") / "sweep"
    run_sweep(folder, reference_cache, "fn=sin,tanh", "method=autograd,loop,finite",
              "dtype=float32,float64", "grid.n=80", "timing.min_run_time=0.02")
    return folder


def test_html_is_self_contained(built):
    page = (built / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<link" not in page and "<script" not in page and "@import" not in page
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    for src in images:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)


def test_html_embeds_the_sweep_plots_and_each_runs_own(built):
    page = (built / "report.html").read_text()
    frontier = base64.b64encode((built / "plots" / "frontier.png").read_bytes()).decode()
    assert frontier in page
    run_plot = base64.b64encode((built / "0_sin_autograd_float32" / "error.png").read_bytes())
    assert run_plot.decode() in page
    assert page.count("<details>") == 12


def test_markdown_links_only_files_that_exist(built):
    text = (built / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "plots/frontier.png" in links
    assert all((built / link).is_file() for link in links)


def test_report_tables_show_the_records_numbers(built):
    records = sweep.gather(built)
    text = (built / "report.md").read_text()
    row = records[(records["fn"] == "tanh") & (records["method"] == "finite")
                  & (records["dtype"] == "float64")].iloc[0]
    cell = f"{report.fmt(row['max_abs_err'])} · {report.fmt(row['median_ulp'])} ULP"
    assert cell in text
    accuracy = pd.read_csv(built / "tables" / "accuracy.csv")
    assert list(accuracy.columns[:3]) == ["fn", "dtype", "autograd | max_abs_err"]
    loc = (accuracy["fn"] == "tanh") & (accuracy["dtype"] == "float64")
    assert accuracy.loc[loc, "finite | max_abs_err"].iloc[0] == pytest.approx(row["max_abs_err"],
                                                                             rel=1e-15)


def test_words_say_best_method_autograd_loss_and_loop_slowdown(built):
    text = (built / "report.md").read_text()
    words = text.split("## What the data show", 1)[1].split("## Accuracy", 1)[0]
    assert "- float64: the most accurate is **autograd** (tied with loop)" in words
    assert "`tanh` float32: autograd's relative error reaches" in words
    slow = sweep.per_point_slowdown(sweep.gather(built))
    assert (f"the per-point **loop** is {report.fmt_ratio(slow['slowdown'].median())} slower "
            f"per point than vectorized autograd") in words


def test_rebuild_from_stored_rows_reproduces_the_report(built, tmp_path, capsys):
    folder = tmp_path / "copy" / built.name  # the title names the folder
    shutil.copytree(built, folder)
    for name in ("summary.csv", "summary.parquet", "report.md", "report.html"):
        (folder / name).unlink()
    shutil.rmtree(folder / "plots")
    shutil.rmtree(folder / "tables")
    assert report.main([str(folder)]) == 0
    printed = capsys.readouterr().out
    assert "dydx: 12 records (12 ok, 0 failed)" in printed
    assert f"report.html: {folder / 'report.html'}" in printed
    assert pd.read_parquet(folder / "summary.parquet").drop(columns="job_dir").equals(
        pd.read_parquet(built / "summary.parquet").drop(columns="job_dir"))
    assert (folder / "plots" / "frontier.png").is_file()
    strip = lambda t: t.replace(str(folder), "X").replace(str(built), "X")  # noqa: E731
    assert strip((folder / "report.md").read_text()) == strip((built / "report.md").read_text())


def test_rebuilding_a_run_folder_rewrites_its_plots_and_report(built, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(built / "1_sin_autograd_float64", run)
    records = (run / "records.parquet").read_bytes()
    for name in ("report.md", "derivative.png", "error.png"):
        (run / name).unlink()
    assert report.main([str(run)]) == 0
    assert {p.name for p in run.iterdir()} >= {"report.md", "derivative.png", "error.png"}
    assert (run / "records.parquet").read_bytes() == records
    assert f"wrote {run / 'report.md'}" in capsys.readouterr().out


def test_a_folder_without_finished_runs_is_an_error(tmp_path, capsys):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "points.csv").write_text("x\n1\n")
    assert report.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"dydx: error: no finished runs under {tmp_path} (a run is "
                                       f"finished when its folder holds records.parquet)\n")
    assert report.main([str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_large_sweeps_link_run_plots_instead_of_embedding(built, tmp_path):
    folder = tmp_path / "linked"
    shutil.copytree(built, folder)
    report.write_sweep_report(folder, embed_runs=4)
    page = (folder / "report.html").read_text()
    assert "<details>" not in page and "0_sin_autograd_float32/report.md" in page
    assert "12 runs: more than 4" in (folder / "report.md").read_text()


def test_markdown_and_html_render_the_same_blocks():
    blocks = [report.Heading("Title", 1), report.Text("`x**2*sin(x)` and **y** < z"),
              report.Bullets(("a", "b|c")),
              report.Table(("k", "v"), (("x**2*x**3", "a|b"),), "note")]
    assert report.render_markdown(blocks) == (
        "# Title\n\n`x**2*sin(x)` and **y** < z\n\n- a\n- b|c\n\n| k | v |\n|---|---|\n"
        "| x\\*\\*2\\*x\\*\\*3 | a\\|b |\n\nnote\n")
    page = report.render_html(blocks, "T")
    assert "<h1>Title</h1>" in page
    assert "<p><code>x**2*sin(x)</code> and <strong>y</strong> &lt; z</p>" in page
    assert "<td>x**2*x**3</td><td>a|b</td>" in page and "<p class=note>note</p>" in page


def test_ratios_read_as_plain_numbers_up_to_a_million():
    assert [report.fmt_ratio(v) for v in (1.0, 2.345, 99.5, 1580.4, 107000.0, 2.3e7, math.inf)] == \
        ["1×", "2.35×", "99.5×", "1,580×", "107,000×", "2.3e+07×", "∞"]


def test_error_vs_best_scores_non_finite_results_infinite():
    rows = pd.DataFrame([
        {"fn": "sin", "dtype": "float32", "method": "finite", "status": "ok", "max_abs_err": 1e-30,
         "median_ulp": 0.0, "n_nonfinite": 7, "method_params": '{"h": 1e-12}'},
        {"fn": "sin", "dtype": "float32", "method": "finite", "status": "ok", "max_abs_err": 1e-5,
         "median_ulp": 10.0, "n_nonfinite": 0, "method_params": '{"h": 0.01}'},
    ])
    ratios = sweep.error_vs_best(rows)
    assert ratios.loc[("sin", "float32"), "finite h=1e-12"] == float("inf")
    assert ratios.loc[("sin", "float32"), "finite h=0.01"] == 1.0


def test_sweeps_from_several_hosts_aggregate_into_one_report(built, tmp_path):
    parent = tmp_path / "cluster"
    shutil.copytree(built, parent / "node-a")
    shutil.copytree(built, parent / "node-b")
    # What node-b's jobs would have written: the same sweep, measured on another host.
    for path in (parent / "node-b").glob("*/records.parquet"):
        frame = pd.read_parquet(path)
        frame["host"] = "node-b"
        frame.to_parquet(path, index=False)
    outcome = report.write_sweep_report(parent)
    summary = pd.read_parquet(parent / "summary.parquet")
    assert len(summary) == 24 == len(outcome.records)
    assert sorted(summary["job_dir"].str.split("/").str[0].unique()) == ["node-a", "node-b"]
    accuracy = sweep.accuracy_table(summary)
    assert list(accuracy.index.names) == ["fn", "dtype", "host"]
    text = (parent / "report.md").read_text()
    assert "records come from 2 hosts" in text and "compare timings only within a host" in text
