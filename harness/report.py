"""The report layer: the only module that writes tables, figures and reports to disk.

`write_run` stores one run: points table, the two plots, report.md, and the records table
last (its presence marks the run complete).
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from harness.plots import derivative_figure, error_figure
from harness.results import POINTS, RECORDS, atomic_write, atomic_write_text, write_table


def fmt(value, digits: int = 3) -> str:
    """Numbers for people: 3 significant digits, '—' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def save_figure(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), suffix=".png")


def summary_line(record: dict) -> str:
    """One human line: the error and the throughput."""
    accuracy = (f"max |err| {fmt(record['max_abs_err'])}, median {fmt(record['median_ulp'])} ULP, "
                f"max {fmt(record['max_ulp'])} ULP, pass {fmt(100 * record['pass_rate'], 4)}%")
    speed = ""
    if record.get("time_median_s") is not None and not _isnan(record.get("time_median_s")):
        speed = (f"; {fmt(record['points_per_s'])} points/s, "
                 f"{fmt(record['cost_vs_forward'])}x the forward pass")
    return (f"{record['fn']} | {record['method']} | {record['dtype']} | {record['device']} | "
            f"n={record['n']}: {accuracy}{speed}")


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _table(rows: list[tuple[str, object]]) -> str:
    lines = ["| quantity | value |", "|---|---|"]
    lines += [f"| {name} | {fmt(value)} |" for name, value in rows]
    return "\n".join(lines)


def run_markdown(record: dict) -> str:
    """report.md for one run: what ran, the metrics, the timing, the two plots."""
    r = record
    step = f" ({r['scheme']}, h = {fmt(r['h'])}, {r['h_mode']})" if r.get("scheme") else ""
    ran = [
        f"# {r['fn']} by {r['method']}{step}",
        "",
        f"- function: `{r['fn']}` ({r['fn_source']}); dtype {r['dtype']}; device {r['device']} "
        f"({r['device_name']}); {r['num_threads'] if 'num_threads' in r else '—'} threads",
        f"- grid: {r['n']} points in [{fmt(r['x_min'], 6)}, {fmt(r['x_max'], 6)}]; error checked on "
        f"{r['n_checked']} points against the **{r['reference']}** reference"
        + (f" ({r['reference_dps']} digits)" if r["reference"] == "mpmath" else ""),
        f"- excluded from the statistics: {r['n_excluded']} points (domain {r['n_excluded_domain']}, "
        f"kink {r['n_excluded_kink']}, stencil across a kink {r['n_excluded_stencil']}); "
        f"non-finite results: {r['n_nonfinite']}",
        f"- torch {r['torch_version']}, commit {r['git_sha']}, host {r['host']}, {r['timestamp']}",
    ]
    if r.get("notes"):
        ran.append(f"- note: {r['notes']}")
    accuracy = _table([
        ("max abs error", r["max_abs_err"]), ("mean abs error", r["mean_abs_err"]),
        ("rms error", r["rms_err"]), ("max rel error", r["max_rel_err"]),
        ("norm rel error (max|err| / max|ref|)", r["norm_rel_err"]),
        ("median ULP", r["median_ulp"]), ("max ULP", r["max_ulp"]),
        (f"pass rate (|err| <= {fmt(r['atol'])} + {fmt(r['rtol'])}·|ref|)", r["pass_rate"]),
    ])
    parts = ["\n".join(ran), "## Accuracy", accuracy]
    if r.get("n_timed"):
        parts += ["## Timing", _timing_table(r)]
    parts += ["## Plots", "![f and f'](derivative.png)", "![error](error.png)"]
    return "\n\n".join(parts) + "\n"


def _timing_table(r: dict) -> str:
    table = _table([
        ("points timed", r["n_timed"]), ("median time per call (s)", r["time_median_s"]),
        ("IQR (s)", r["time_iqr_s"]), ("min (s)", r["time_min_s"]),
        ("first call, warm-up (s)", r["time_first_call_s"]), ("repeats", r["n_repeats"]),
        ("points / s", r["points_per_s"]), ("ns / point", r["ns_per_point"]),
        ("forward pass f(x), median (s)", r["forward_median_s"]),
        ("cost vs forward", r["cost_vs_forward"]),
    ])
    if r.get("time_noisy"):
        table += "\n\n**Noisy timing:** IQR/median > 0.1; rerun on a quieter machine before relying on it."
    return table


def write_run(run_dir: Path, record: dict, points: pd.DataFrame, config_yaml: str = "") -> None:
    """Store one run; records.{csv,parquet} last, so a killed run is never taken as complete."""
    run_dir = Path(run_dir)
    if config_yaml:
        atomic_write_text(run_dir / "config.yaml", config_yaml)
    write_table(points, run_dir, POINTS)
    save_figure(derivative_figure(points, record), run_dir / "derivative.png")
    save_figure(error_figure(points, record), run_dir / "error.png")
    atomic_write_text(run_dir / "report.md", run_markdown(record))
    write_table(pd.DataFrame([record]), run_dir, RECORDS)
