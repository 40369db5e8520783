"""One run's page: report.md (what ran, accuracy, triage, timing, plots) and its figures."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from harness.atomic import atomic_write, atomic_write_text
from harness.report.format import derivative_name, fmt, is_missing, subject
from harness.report.network_plots import vjp_error_figure, vjp_figure
from harness.report.plots import derivative_figure, error_figure
from harness.results import load_points, load_record, write_record, write_run_data


def _table(rows: list[tuple[str, object]]) -> str:
    lines = ["| quantity | value |", "|---|---|"]
    # A "|" inside a cell would end the cell in markdown.
    lines += [f"| {name.replace('|', '&#124;')} | {fmt(value).replace('|', '&#124;')} |"
              for name, value in rows]
    return "\n".join(lines)


def run_markdown(record: dict) -> str:
    """report.md for one run: what ran, the metrics, the timing, the two plots."""
    r = record
    if r.get("status", "ok") != "ok":
        return failed_markdown(r)
    step = f" ({r['scheme']}, h = {fmt(r['h'])}, {r['h_mode']})" if r.get("scheme") else ""
    ran = [
        f"# {subject(r)} by {r['method']}{step}",
        "",
        f"- function: `{r['fn']}` ({r['fn_source']}); dtype {r['dtype']}; device {r['device']} "
        f"({r['device_name']}); {r['num_threads'] if 'num_threads' in r else '—'} threads",
        _where(r) + "; error checked on "
        f"{r['n_checked']} points against the **{r['reference']}** reference (see Reference)",
        f"- excluded from the statistics: {r['n_excluded']} points (domain {r['n_excluded_domain']}, "
        f"kink {r['n_excluded_kink']}, stencil across a kink {r['n_excluded_stencil']}, "
        f"reference not certified {r.get('n_uncertified', 0)}); "
        f"non-finite results: {r['n_nonfinite']}",
        f"- torch {r['torch_version']}, commit {r['git_sha']}, host {r['host']}, {r['timestamp']}",
    ]
    if r.get("launcher") and r.get("parallel"):
        ran.append(f"- launched by {r['launcher']} with {r['n_workers'] or 'several'} jobs at "
                   f"once: timings are contended")
    if r.get("notes"):
        ran.append(f"- note: {r['notes']}")
    parts = ["\n".join(ran), "## Accuracy", _accuracy_text(r), "## Reference",
             _reference_table(r)]
    if consistency_rows(r):
        parts += ["## Consistency (network)", _table(consistency_rows(r))]
    if not is_missing(r.get("err_estimate_median", math.nan)):
        parts += ["## The method's own error estimate", _table([
            ("median estimate", r["err_estimate_median"]), ("max estimate", r["err_estimate_max"]),
            ("share of points whose true error is within the estimate", r["estimate_coverage"]),
            ("median estimate / true error", r["estimate_ratio_median"])])]
    if any(key.startswith("triage_") for key in r):
        parts += ["## Failure triage", _triage_text(r)]
    if r.get("n_timed"):
        parts += ["## Timing", _timing_table(r)]
    parts += ["## Plots", f"![f and {derivative_name(r.get('order', 1))}](derivative.png)",
              "![error](error.png)"]
    return "\n\n".join(parts) + "\n"


def _accuracy_text(r: dict) -> str:
    """The accuracy table, led by a warning when some points have no correct digit."""
    table = _table([
        ("max abs error", r["max_abs_err"]), ("mean abs error", r["mean_abs_err"]),
        ("rms error", r["rms_err"]), ("max rel error", r["max_rel_err"]),
        ("norm rel error (max|err| / max|ref|)", r["norm_rel_err"]),
        ("median ULP", r["median_ulp"]), ("max ULP", r["max_ulp"]),
        (f"pass: |err| <= {fmt(r.get('rtol'))}·|f'|, over the points the reference resolves",
         r.get("rel_pass_rate")),
        ("wrong: no correct leading digit (|err| >= |f'|, f' != 0)", r.get("n_wrong")),
        ("reference-limited: error within the reference's uncertainty (left out of ULP and "
         "relative statistics)", r.get("n_reference_limited")),
        ("non-finite results", r["n_nonfinite"]),
        (f"torch.testing.assert_close would pass (|err| <= {fmt(r['atol'])} + "
         f"{fmt(r['rtol'])}·|ref|)", r.get("assert_close_rate")),
    ])
    if r.get("n_wrong"):
        table = (f"**{r['n_wrong']} points have no correct digit** (|err| >= |f'|: 0 or the "
                 f"wrong sign where f' != 0); see the `verdict` column of points.csv.\n\n"
                 + table)
    return table


def _reference_table(r: dict) -> str:
    """What backs the reference and how far it can be trusted."""
    rows = [("engine", r["reference"]), ("what backs it", r.get("reference_backing", "—")),
            ("largest uncertainty relative to |f'| (used points)",
             r.get("reference_rel_bound_max")),
            ("largest uncertainty, absolute", r.get("reference_uncertainty_max"))]
    if r["reference"] == "arb":
        rows += [("most bits any point needed", r.get("reference_bits")),
                 ("points not certified (excluded, never used)", r.get("n_uncertified"))]
    return _table(rows)


TRIAGE_MEANING = {
    "kink": "the point or its stencil touches a kink or pole",
    "domain_edge": "outside the domain or on its edge",
    "roundoff": "explained by rounding (eps·Σ|w|·|f|/h^n for a stencil, a few roundings of the "
                "result otherwise, or the method's own estimate)",
    "truncation": "explained by the stencil's leading Taylor terms c·h^p·|f^(n+p)|",
    "cancellation": "precision lost in a correct formula: the error scales with the dtype's "
                    "precision, or is the rounding of terms much larger than the result",
    "underflow": "precision lost, with the result or the derivative below the dtype's "
                 "smallest normal number",
    "overflow": "precision lost, with a nan/inf result where the derivative is finite",
    "complex_kernel": "precision lost inside f's complex kernel (the complex step itself "
                      "cannot cancel)",
    "mismatch": "none of the above: the error does not scale with precision and no model "
                "explains it; the math is likely wrong (e.g. a wrong backward)",
}


def _triage_text(r: dict) -> str:
    """Counts per class, with what each class means; mismatches called out first."""
    rows = [(f"{name}: {meaning}", r.get(f"triage_{name}", 0))
            for name, meaning in TRIAGE_MEANING.items()]
    text = ("Points whose error exceeds 4 ULP and that the reference resolves, by cause "
            "(see the `triage` column of points.csv; the criteria are in the README's "
            "triage section):\n\n" + _table(rows))
    if r.get("triage_mismatch"):
        text = (f"**{r['triage_mismatch']} points disagree with the reference in a way that "
                f"does not scale with precision: check the derivative's implementation.**\n\n"
                + text)
    return text


def failed_markdown(r: dict) -> str:
    """report.md for a run with no numbers: what was asked and why it failed."""
    lines = [
        f"# {r.get('fn')} by {r.get('method')}: {r.get('status')}",
        "",
        f"- status: **{r.get('status')}**: {r.get('status_reason', '')}",
        f"- dtype {r.get('dtype')}; device {r.get('device')}; n = {fmt(r.get('n'))}",
    ]
    if r.get("overrides"):
        lines.append(f"- overrides: `{r['overrides']}`")
    lines.append(f"- torch {r.get('torch_version')}, commit {r.get('git_sha')}, "
                 f"host {r.get('host')}, {r.get('timestamp')}")
    return "\n".join(lines) + "\n"


def _where(r: dict) -> str:
    span = f"[{fmt(r['x_min'], 6)}, {fmt(r['x_max'], 6)}]"
    if r.get("fn_source") == "network":
        return f"- network input {r.get('input_shape')}: {r['n']} elements with values in {span}"
    return f"- grid: {r['n']} points in {span}"


def _timing_table(r: dict) -> str:
    """What was timed, the numbers, how well they are known, and what the machine did."""
    rows = [
        ("points timed", r["n_timed"]), ("median time per call (s)", r["time_median_s"]),
        ("IQR (s)", r["time_iqr_s"]), ("min (s)", r["time_min_s"]),
        ("median known to ± (95 % confidence)", _percent(r.get("time_ci_rel"))),
        ("first call, warm-up (s)", r["time_first_call_s"]), ("repeats", r["n_repeats"]),
        ("points / s", r["points_per_s"]), ("ns / point", r["ns_per_point"]),
        ("forward pass f(x), median (s)", r["forward_median_s"]),
        ("cost vs forward (median of interleaved pairs)", r["cost_vs_forward"]),
    ]
    if "n_blocks" in r:
        rows += [
            ("threads", f"{r['num_threads']} ({r.get('num_threads_rule', '')})"),
            ("blocks measured / waited for a CPU (left out)",
             f"{r['n_blocks']} / {r['n_blocks_stalled']}"),
            ("warm-up until times stopped drifting (s, blocks)",
             f"{fmt(r['time_warmup_s'])}, {r['time_warmup_blocks']}"
             + ("" if r.get("time_settled") else " (still drifting)")),
            ("CPU-seconds per second while timed", r["time_cpu_per_wall"]),
            ("page faults per call: method / forward",
             f"{fmt(r['time_faults_per_call'])} / {fmt(r['forward_faults_per_call'])}"),
            ("before settling: time per call (s), page faults per call",
             f"{fmt(r.get('time_early_s'))}, {fmt(r.get('time_early_faults_per_call'))}"),
            ("load average, other runnable tasks, CPUs when timing began",
             f"{fmt(r['load_avg_1m'])}, {r['runnable_others']}, {r['cpus']}"),
        ]
    if r.get("time_processes", 1) > 1:
        rows.append((f"medians of {r['time_processes']} fresh processes (s)",
                     ", ".join(fmt(v) for v in r["time_process_medians_s"])
                     + f" (spread {_percent(r['time_process_spread'])})"))
    table = _table(rows)
    if r.get("time_noisy"):
        table += (f"\n\n**Timing not trustworthy:** {r.get('time_noisy_reason') or 'IQR/median > 0.1'}"
                  f". Rerun on a quieter machine (or with a larger timing.max_run_time) before "
                  f"relying on these numbers.")
    return table


def _percent(value) -> str:
    if is_missing(value):
        return "—"
    return "unknown" if value == math.inf else f"{100 * value:.2g} %"


def consistency_rows(record: dict) -> list[tuple[str, object]]:
    """(quantity, value) rows for one network run's report."""
    if record.get("fn_source") != "network" or record.get("status") != "ok":
        return []
    return [
        ("v (cotangent)", record["v_kind"]),
        ("train mode (dropout active, fixed seed)", record["train_mode"]),
        ("out.backward(v) == autograd.grad(out, x, v), bitwise",
         record["bitwise_backward_vs_autograd"]),
        ("max |backward - autograd.grad|", record["max_abs_diff_backward_vs_autograd"]),
        ("forward mode v·(Ju) vs reverse (vᵀJ)·u, relative", record["forward_mode_rel_diff"]),
        ("gradient penalty dP/dx, double backward vs finite difference (float64), relative",
         record["gp_rel_err"]),
        ("reference", record["reference"]),
    ]


def save_figure(fig, path: Path) -> None:
    # zlib level 3, not PIL's 6: half the encoding time (measured 15 vs 30 ms for an error
    # plot) for 7 % more bytes; every job of a sweep writes two of these.
    atomic_write(path, lambda tmp: _save_png(fig, tmp), suffix=".png")


def _save_png(fig, tmp: str) -> None:
    # Our own file handle, closed by `with` even when Ctrl-C lands mid-write: given a path,
    # PIL leaves its file to the garbage collector, whose ResourceWarning would be a second
    # line after the one-line interruption message.
    with open(tmp, "wb") as out:
        fig.savefig(out, dpi=110, format="png", pil_kwargs={"compress_level": 3})


def run_figures(points: pd.DataFrame, record: dict) -> dict:
    """{file name: Figure} of a run: its values and its error (none for a run without
    points, such as a failed one)."""
    if record.get("status", "ok") != "ok" or points.empty:
        return {}
    network = record.get("fn_source") == "network"
    values, errors = (vjp_figure, vjp_error_figure) if network else \
        (derivative_figure, error_figure)
    return {"derivative.png": values(points, record), "error.png": errors(points, record)}


def write_run_views(run_dir: Path, record: dict, points: pd.DataFrame,
                    figures: bool = True) -> None:
    """The derived files of a run: plots (when it has points, and asked for) and report.md."""
    run_dir = Path(run_dir)
    for name, figure in (run_figures(points, record) if figures else {}).items():
        save_figure(figure, run_dir / name)
    atomic_write_text(run_dir / "report.md", run_markdown(record))


def write_run(run_dir: Path, record: dict, points: pd.DataFrame, config_yaml: str = "",
              figures: bool = True) -> None:
    """Store one run: config and points, then its plots and page, then the record last,
    so a killed run is never taken as complete. A failed job stores no points."""
    write_run_data(run_dir, points, config_yaml)
    write_run_views(run_dir, record, points, figures)
    write_record(run_dir, record)


def rebuild_run(run_dir: Path) -> tuple[list[Path], str]:
    """A run folder's plots and report.md again, from its stored record and points: the
    files written, and what could not be rebuilt and why ('' when everything was)."""
    run_dir = Path(run_dir)
    record, points = load_record(run_dir), load_points(run_dir)
    write_run_views(run_dir, record, points)
    plots = [run_dir / "derivative.png", run_dir / "error.png"]
    if record.get("status", "ok") != "ok":
        return [run_dir / "report.md"], ""  # a failed run has no plots to draw
    if points.empty:
        state = "damaged" if (run_dir / "points.parquet").exists() else "missing"
        return [run_dir / "report.md"], (
            f"could not rebuild {', '.join(p.name for p in plots)}: points.parquet is {state}; "
            f"older copies, if any, were left as they were")
    return [run_dir / "report.md", *plots], ""
