"""harness.report.sweep_page on a small real sweep (conftest.small_sweep: sin and tanh x
autograd, loop, finite x float32, float64, timed briefly, run in this process): files,
self-containment, the numbers and words it shows. Slow: the sweep takes seconds."""
from __future__ import annotations

import base64
import re
import shutil

import pandas as pd
import pytest

from harness.analysis.tables import accuracy_table
from harness.report.sweep_page import write_sweep_report
from harness.results import load_records

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"
# Numbers on a page have 3 significant digits: within half a unit of the third.
THREE_DIGITS = 5e-3


def number(text: str) -> float:
    """A number as a page shows it: '1.12e-11', '2e+07', '1,580'."""
    return float(text.replace(",", ""))


def test_sweep_folder_holds_tables_plots_and_both_reports(small_sweep):
    folder, _ = small_sweep
    for name in ("summary.csv", "summary.parquet", "report.md", "report.html",
                 "tables/accuracy.csv", "tables/throughput.csv", "tables/error_vs_best.csv",
                 "tables/per_point_vs_autograd.csv", "plots/frontier.png"):
        assert (folder / name).is_file(), name


def test_html_is_self_contained(small_sweep):
    page = (small_sweep[0] / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<link" not in page and "<script" not in page and "@import" not in page
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    for src in images:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)


def test_html_embeds_the_sweep_plots_and_each_runs_own(small_sweep):
    folder, _ = small_sweep
    page = (folder / "report.html").read_text()
    frontier = base64.b64encode((folder / "plots" / "frontier.png").read_bytes()).decode()
    assert frontier in page
    run_plot = base64.b64encode((folder / "0_sin_autograd_float32" / "error.png").read_bytes())
    assert run_plot.decode() in page
    assert page.count("<details>") == 12


def test_markdown_links_only_files_that_exist(small_sweep):
    folder, _ = small_sweep
    text = (folder / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "plots/frontier.png" in links
    assert all((folder / link).is_file() for link in links)


def test_report_tables_show_the_records_numbers(small_sweep):
    folder, _ = small_sweep
    records = load_records(folder)
    row = records[(records["fn"] == "tanh") & (records["method"] == "finite")
                  & (records["dtype"] == "float64")].iloc[0]
    text = (folder / "report.md").read_text()
    accuracy = text.split("## Accuracy", 1)[1]
    assert "| fn | dtype | autograd | loop | finite |" in accuracy
    line = next(l for l in accuracy.splitlines() if l.startswith("| tanh | float64 |"))
    cell = line.strip("|").split("|")[4].strip()  # fn, dtype, autograd, loop, finite
    error, ulps = re.fullmatch(r"(\S+) · (\S+) ULP", cell).groups()
    assert number(error) == pytest.approx(row["max_abs_err"], rel=THREE_DIGITS)
    assert number(ulps) == pytest.approx(row["median_ulp"], rel=THREE_DIGITS)
    table = pd.read_csv(folder / "tables" / "accuracy.csv")
    assert list(table.columns[:3]) == ["fn", "dtype", "autograd | max_abs_err"]
    loc = (table["fn"] == "tanh") & (table["dtype"] == "float64")
    assert table.loc[loc, "finite | max_abs_err"].iloc[0] == pytest.approx(row["max_abs_err"],
                                                                           rel=1e-15)


def test_words_say_best_method_autograd_loss_and_loop_slowdown(small_sweep):
    folder, _ = small_sweep
    text = (folder / "report.md").read_text()
    words = text.split("## What the data show", 1)[1].split("## Accuracy", 1)[0]
    assert "- float64: the most accurate is **autograd** (tied with loop)" in words
    assert "`tanh` float32: autograd's relative error reaches" in words
    # The slowdown, recomputed from the records: autograd's points/s over the loop's, per
    # (fn, dtype) where neither timing is flagged, and its median over those.
    records = load_records(folder)
    pps = records.pivot_table(index=["fn", "dtype"], columns="method", values="points_per_s")
    noisy = records.pivot_table(index=["fn", "dtype"], columns="method", values="time_noisy",
                                aggfunc="first").astype(bool)
    slowdown = (pps["autograd"] / pps["loop"])[~(noisy["autograd"] | noisy["loop"])]
    left_out = 4 - len(slowdown)
    why = (f" ({left_out} configuration{'s' if left_out > 1 else ''} with untrustworthy "
           f"timing left out)" if left_out else "")
    line = next(l for l in words.splitlines() if "the per-point **loop**" in l)
    assert line.endswith(why) or line.endswith(why + ".")
    if slowdown.empty:
        assert "no trustworthy timing to compare with autograd" in line
        return
    ratio = r"([\d.,e+]+)×"
    said = re.search(rf"the per-point \*\*loop\*\* is {ratio} slower per point than vectorized "
                     rf"autograd(?: \(range {ratio}–{ratio}, (\d) configurations\))?", line)
    assert said, line
    assert number(said.group(1)) == pytest.approx(slowdown.median(), rel=THREE_DIGITS)
    if len(slowdown) > 1:
        assert number(said.group(2)) == pytest.approx(slowdown.min(), rel=THREE_DIGITS)
        assert number(said.group(3)) == pytest.approx(slowdown.max(), rel=THREE_DIGITS)
        assert int(said.group(4)) == len(slowdown)


def test_large_sweeps_link_run_plots_instead_of_embedding(small_sweep, tmp_path):
    folder = tmp_path / "linked"
    shutil.copytree(small_sweep[0], folder)
    write_sweep_report(folder, embed_runs=4)
    page = (folder / "report.html").read_text()
    assert "<details>" not in page and "0_sin_autograd_float32/report.md" in page
    assert "12 runs: more than 4" in (folder / "report.md").read_text()


def test_sweeps_from_several_hosts_aggregate_into_one_report(small_sweep, tmp_path):
    parent = tmp_path / "cluster"
    shutil.copytree(small_sweep[0], parent / "node-a")
    shutil.copytree(small_sweep[0], parent / "node-b")
    # What node-b's jobs would have written: the same sweep, measured on another host.
    for path in (parent / "node-b").glob("*/records.parquet"):
        frame = pd.read_parquet(path)
        frame["host"] = "node-b"
        frame.to_parquet(path, index=False)
    outcome = write_sweep_report(parent)
    summary = pd.read_parquet(parent / "summary.parquet")
    assert len(summary) == 24 == len(outcome.records)
    assert sorted(summary["job_dir"].str.split("/").str[0].unique()) == ["node-a", "node-b"]
    accuracy = accuracy_table(summary)
    assert list(accuracy.index.names) == ["fn", "dtype", "host"]
    text = (parent / "report.md").read_text()
    assert "records come from 2 hosts" in text and "compare timings only within a host" in text


def test_throughput_cells_show_the_spread_of_their_timing(small_sweep):
    folder, _ = small_sweep
    records = load_records(folder)
    text = (folder / "report.md").read_text()
    throughput = text.split("## Throughput", 1)[1].split("\n\n", 2)[1].splitlines()
    variants = [c.strip() for c in throughput[0].strip("|").split("|")][2:]
    for line in throughput[2:]:
        fn, dtype, *cells = [c.strip() for c in line.strip("|").split("|")]
        for variant, cell in zip(variants, cells):
            row = records[(records["fn"] == fn) & (records["dtype"] == dtype)
                          & (records["method"] == variant)].iloc[0]
            pps, spread, cost, mark = re.fullmatch(r"(\S+) pt/s (±\S+) · (\S+)×( ‡)?",
                                                   cell).groups()
            assert number(pps) == pytest.approx(row["points_per_s"], rel=THREE_DIGITS)
            assert bool(mark) == bool(row["time_noisy"])
            # Too few blocks that did not wait for a CPU for quartiles to mean anything.
            if row["n_blocks"] - row["n_blocks_stalled"] < 4:
                assert spread == "±?"
                continue
            half_iqr = 50 * row["time_iqr_s"] / row["time_median_s"]
            assert float(spread.split("%")[0][1:]) == pytest.approx(half_iqr, rel=0.05)
    assert len(throughput) - 2 == 4  # sin, tanh x float32, float64


def test_the_console_ends_with_the_headline_table_and_no_doubled_job_lines(small_sweep):
    folder, printed = small_sweep
    lines = printed.splitlines()
    start = next(i for i, l in enumerate(lines)
                 if l.split()[:5] == ["fn", "dtype", "autograd", "loop", "finite"])
    assert [l.split()[:2] for l in lines[start + 2:start + 6]] == [
        ["sin", "float32"], ["sin", "float64"], ["tanh", "float32"], ["tanh", "float64"]]
    assert start < lines.index("dydx: 12/12 jobs have a record")
    assert not any(re.search(r"\[HYDRA\]\s+#\d+ :", l) for l in lines)  # Hydra's own job lines
