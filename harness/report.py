"""The report layer: the only module that writes tables, figures and reports to disk.

`write_run` stores one run: points table, the two plots, report.md, and the records table
last (its presence marks the run complete). `write_failed_run` stores a job that produced
no numbers the same way. `write_sweep_report` turns every finished record under a folder
into summary.csv/summary.parquet, tables/*.csv, plots/*.png, report.md and a
self-contained report.html (images inline as base64; it opens from disk, no network).

`python -m harness.report FOLDER` rebuilds all of it from the stored rows: for a run folder
its plots and report.md, for any other folder (a sweep, or several) the sweep report.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch

from harness import sweep
from harness.plots import (derivative_figure, error_figure, frontier_figure, scaling_figure,
                           stepsize_figure)
from harness.network_plots import vjp_error_figure, vjp_figure
from harness.network_study import consistency_rows, consistency_table, consistency_words
from harness.results import POINTS, RECORDS, atomic_write, atomic_write_text, write_table

# Runs whose own plots the sweep report embeds; above this it links to their folders.
EMBED_RUNS = 24
PLOT_DPI = 100


def fmt(value, digits: int = 3) -> str:
    """Numbers for people: 3 significant digits, '—' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}g}"
    return str(value)


def fmt_ratio(value) -> str:
    """Ratios for people: '1,580×' rather than '1.58e+03×'; exponents only past a million."""
    if _isnan(value):
        return "—"
    if value == math.inf:
        return "∞"
    if 100 <= value < 1e6:
        return f"{float(f'{value:.3g}'):,.0f}×"  # 3 significant digits, then thousands marks
    return f"{value:.3g}×"


def _isnan(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=PLOT_DPI, format="png")
    return buffer.getvalue()


def save_figure(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), suffix=".png")


def save_bytes(data: bytes, path: Path) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


# --- one run ------------------------------------------------------------------------------

def summary_line(record: dict) -> str:
    """One human line: what ran, the error and the throughput (or why there are none)."""
    return (f"{record['fn']} | {record['method']} | {record['dtype']} | {record['device']} | "
            f"n={record['n']}: {headline(record)}")


def headline(record: dict) -> str:
    """The numbers of a run in one line: error, ULPs, pass rate, throughput."""
    if record.get("status", "ok") != "ok":
        return failure_line(record)
    accuracy = (f"max |err| {fmt(record['max_abs_err'])}, median {fmt(record['median_ulp'])} ULP, "
                f"max {fmt(record['max_ulp'])} ULP, pass {fmt(100 * record['pass_rate'], 4)}%")
    if record.get("n_nonfinite"):
        # The error statistics leave these out: say so, or a dead step looks perfect.
        accuracy += f", {record['n_nonfinite']} of {record.get('n_checked')} points non-finite"
    speed = ""
    if not _isnan(record.get("time_median_s")):
        speed = (f"; {fmt(record['points_per_s'])} points/s, "
                 f"{fmt(record['cost_vs_forward'])}x the forward pass")
    return f"{accuracy}{speed}"


def failure_line(record: dict) -> str:
    return f"status {record.get('status')}: {record.get('status_reason', '')}"


def _table(rows: list[tuple[str, object]]) -> str:
    lines = ["| quantity | value |", "|---|---|"]
    # A "|" inside a cell would end the cell in markdown.
    lines += [f"| {name.replace('|', '&#124;')} | {fmt(value)} |" for name, value in rows]
    return "\n".join(lines)


def run_markdown(record: dict) -> str:
    """report.md for one run: what ran, the metrics, the timing, the two plots."""
    r = record
    if r.get("status", "ok") != "ok":
        return failed_markdown(r)
    step = f" ({r['scheme']}, h = {fmt(r['h'])}, {r['h_mode']})" if r.get("scheme") else ""
    ran = [
        f"# {r['fn']} by {r['method']}{step}",
        "",
        f"- function: `{r['fn']}` ({r['fn_source']}); dtype {r['dtype']}; device {r['device']} "
        f"({r['device_name']}); {r['num_threads'] if 'num_threads' in r else '—'} threads",
        _where(r) + "; error checked on "
        f"{r['n_checked']} points against the **{r['reference']}** reference"
        + (f" ({r['reference_dps']} digits)" if r["reference"] == "mpmath" else ""),
        f"- excluded from the statistics: {r['n_excluded']} points (domain {r['n_excluded_domain']}, "
        f"kink {r['n_excluded_kink']}, stencil across a kink {r['n_excluded_stencil']}); "
        f"non-finite results: {r['n_nonfinite']}",
        f"- torch {r['torch_version']}, commit {r['git_sha']}, host {r['host']}, {r['timestamp']}",
    ]
    if r.get("launcher") and r.get("parallel"):
        ran.append(f"- launched by {r['launcher']} with {r['n_workers'] or 'several'} jobs at "
                   f"once: timings are contended")
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
    if consistency_rows(r):
        parts += ["## Consistency (network)", _table(consistency_rows(r))]
    if not _isnan(r.get("err_estimate_median", math.nan)):
        parts += ["## The method's own error estimate", _table([
            ("median estimate", r["err_estimate_median"]), ("max estimate", r["err_estimate_max"]),
            ("share of points whose true error is within the estimate", r["estimate_coverage"]),
            ("median estimate / true error", r["estimate_ratio_median"])])]
    if any(key.startswith("triage_") for key in r):
        parts += ["## Failure triage", _triage_text(r)]
    if r.get("n_timed"):
        parts += ["## Timing", _timing_table(r)]
    parts += ["## Plots", "![f and f'](derivative.png)", "![error](error.png)"]
    return "\n\n".join(parts) + "\n"


TRIAGE_MEANING = {
    "kink": "the point or its stencil touches a kink or pole",
    "domain_edge": "outside the domain or on its edge",
    "cancellation": "f' is much smaller than the terms it is computed from",
    "roundoff": "explained by rounding (eps·|f|/h for a stencil, or rounding the terms)",
    "truncation": "explained by the stencil's leading Taylor term c·h^p·|f^(n+p)|",
    "mismatch": "none of the above: a likely bug (e.g. a wrong backward)",
}


def _triage_text(r: dict) -> str:
    """Counts per class, with what each class means; mismatches called out first."""
    rows = [(f"{name}: {meaning}", r.get(f"triage_{name}", 0))
            for name, meaning in TRIAGE_MEANING.items()]
    text = ("Points whose error exceeds 4 ULP, by cause (see the `triage` column of "
            "points.csv):\n\n" + _table(rows))
    if r.get("triage_mismatch"):
        text = (f"**{r['triage_mismatch']} points disagree with the reference for no known "
                f"numerical reason: check the derivative's implementation.**\n\n" + text)
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


def write_run_views(run_dir: Path, record: dict, points: pd.DataFrame) -> None:
    """The derived files of a run: plots (when it has points) and report.md."""
    run_dir = Path(run_dir)
    if record.get("status", "ok") == "ok" and not points.empty:
        network = record.get("fn_source") == "network"
        values, errors = (vjp_figure, vjp_error_figure) if network else \
            (derivative_figure, error_figure)
        save_figure(values(points, record), run_dir / "derivative.png")
        save_figure(errors(points, record), run_dir / "error.png")
    atomic_write_text(run_dir / "report.md", run_markdown(record))


def write_run(run_dir: Path, record: dict, points: pd.DataFrame, config_yaml: str = "") -> None:
    """Store one run; records.{csv,parquet} last, so a killed run is never taken as complete."""
    run_dir = Path(run_dir)
    if config_yaml:
        atomic_write_text(run_dir / "config.yaml", config_yaml)
    if not points.empty:
        write_table(points, run_dir, POINTS)
    write_run_views(run_dir, record, points)
    write_table(pd.DataFrame([record]), run_dir, RECORDS)


def write_failed_run(run_dir: Path, record: dict, config_yaml: str = "") -> None:
    """Store a job that failed: its config, a short report.md, and its one-row record."""
    write_run(run_dir, record, pd.DataFrame(), config_yaml)


# --- documents: one list of blocks, rendered to markdown and to HTML ----------------------

@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Image:
    # Path of the PNG relative to the report, e.g. plots/stepsize_sin.png.
    path: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Fold:
    """A collapsible group in HTML (<details>); a plain sub-section in markdown."""

    title: str
    blocks: tuple = field(default_factory=tuple)


Block = Union[Heading, Text, Bullets, Table, Image, Fold]


def _md_cell(text: str) -> str:
    """Data in a table cell or a title: literal, even when it holds | or * (x**2*sin(x))."""
    return str(text).replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def render_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in block.header) + " |",
                     "|" + "---|" * len(block.header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines) + (f"\n\n{block.note}" if block.note else ""))
        elif isinstance(block, Image):
            caption = _md_cell(block.caption)
            out.append(f"![{caption}]({block.path})\n\n*{caption}*")
        elif isinstance(block, Fold):
            out.append(f"#### {_md_cell(block.title)}\n\n" + render_markdown(block.blocks).strip())
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    """Escape, then the two markdown marks the report's prose uses: `code` and **bold**
    (bold only outside code, so an expression such as `x**2*sin(x)` stays literal)."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1], quote=False)}</code>")
        else:
            out.append(re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>",
                              html.escape(part, quote=False)))
    return "".join(out)


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_inline_html(block.text)}</h{block.level}>"
    if isinstance(block, Text):
        return f"<p>{_inline_html(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(h, quote=False)}</th>" for h in block.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c, quote=False)}</td>" for c in row)
                       + "</tr>" for row in block.rows)
        note = f"<p class=note>{_inline_html(block.note)}</p>" if block.note else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        caption = html.escape(block.caption)
        return (f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
                f"<figcaption>{caption}</figcaption></figure>")
    if isinstance(block, Fold):
        inner = "\n".join(_html_block(b) for b in block.blocks)
        return f"<details><summary>{html.escape(block.title)}</summary>\n{inner}\n</details>"
    raise TypeError(f"unknown block {block!r}")


STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
code { background: #f3f3f3; padding: 0 3px; }
img { max-width: 100%; } figure { margin: 1em 0; } figcaption { color: #555; font-size: 13px; }
details { margin: 0.4em 0; } summary { cursor: pointer; } .note { color: #555; font-size: 13px; }
"""


def render_html(blocks: Sequence[Block], title: str) -> str:
    """A self-contained page: inline CSS, images as data: URIs, no external resources."""
    body = "\n".join(_html_block(b) for b in blocks)
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


# --- sweep tables as text -----------------------------------------------------------------

def _index_cells(key) -> tuple[str, ...]:
    key = key if isinstance(key, tuple) else (key,)
    return tuple(fmt(k) for k in key)


def _row_text(key) -> str:
    """A pivot row for prose: the function as code (it may be an expression), then the rest."""
    cells = _index_cells(key)
    return " ".join((f"`{cells[0]}`",) + cells[1:])


# A pivot with more variants than this (and than rows) is shown transposed: one row per
# variant, so a step-size sweep's 45 variants read down the page instead of across it.
MAX_COLUMNS = 8


def matrix_block(table: pd.DataFrame, cell, note: str) -> Table:
    """A pivot as a text table; cell(row, variant) -> str. Transposed when too wide."""
    variants = list(dict.fromkeys(table.columns.get_level_values("variant")))
    keys = list(table.index)
    names = tuple(str(n) for n in table.index.names)
    if len(variants) > MAX_COLUMNS and len(variants) > len(keys):
        header = ("method",) + tuple(" ".join(_index_cells(k)) for k in keys)
        rows = tuple((v,) + tuple(cell(table.loc[k], v) for k in keys) for v in variants)
        return Table(header, rows, note)
    rows = tuple(_index_cells(k) + tuple(cell(table.loc[k], v) for v in variants) for k in keys)
    return Table(names + tuple(variants), rows, note)


def accuracy_block(table: pd.DataFrame) -> Table:
    def cell(row, v) -> str:
        err, ulp, bad = row.get((v, "max_abs_err")), row.get((v, "median_ulp")), \
            row.get((v, "n_nonfinite"))
        if _isnan(err):
            return "—"
        text = f"{fmt(err)} · {fmt(ulp)} ULP"
        return text + (f" · {int(bad)} non-finite" if not _isnan(bad) and bad > 0 else "")

    return matrix_block(table, cell,
                        "Cells: max |error| over the checked points · median error in ULPs of "
                        "the dtype (· points where the method returned nan/inf, left out of "
                        "both). — : not in this sweep (or failed).")


def throughput_block(table: pd.DataFrame, parallel: pd.DataFrame) -> Table:
    def cell(row, v) -> str:
        pps, cost = row.get((v, "points_per_s")), row.get((v, "cost_vs_forward"))
        if _isnan(pps):
            return "—"
        mark = " †" if not parallel.empty and bool(parallel.get(v, {}).get(row.name, False)) else ""
        return f"{fmt(pps)} pt/s · {fmt(cost)}×{mark}"

    note = "Cells: points per second · time relative to the forward pass f(x) on the same x."
    if not parallel.empty and parallel.any().any():
        note += " † timed while other jobs of the sweep ran on the same machine: contended."
    return matrix_block(table, cell, note)


def ratio_block(table: pd.DataFrame) -> Table:
    def cell(row, v) -> str:
        return fmt_ratio(row.get((v, "ratio")))

    framed = table.copy()
    framed.columns = pd.MultiIndex.from_tuples([(v, "ratio") for v in table.columns],
                                               names=["variant", "metric"])
    return matrix_block(framed, cell,
                        "Each variant's max |error| divided by the smallest in its row: 1× is "
                        "the best available here; ∞: non-finite results at some points, or "
                        "inexact where another variant is exact.")


def frame_block(frame: pd.DataFrame, note: str = "") -> Table:
    rows = tuple(tuple(fmt(v) if not isinstance(v, (bool, np.bool_)) else str(bool(v))
                       for v in row) for row in frame.itertuples(index=False))
    return Table(tuple(str(c) for c in frame.columns), rows, note)


def _flat(table: pd.DataFrame) -> pd.DataFrame:
    """A pivot as a flat CSV-friendly frame: row keys as columns, 'variant | metric' heads."""
    flat = table.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [" | ".join(str(p) for p in c) for c in flat.columns]
    return flat.reset_index()


# --- words: what the data show ------------------------------------------------------------

def best_per_dtype(ratios: pd.DataFrame, accuracy: pd.DataFrame) -> list[str]:
    """'float64: the most accurate is autograd (best on 3 of 3 functions; median 0.2 ULP)'.

    Ranked by the median over rows of the error relative to the best; ties (same median
    and as many wins) are named together.
    """
    if ratios.empty:
        return []
    lines = []
    dtypes = ratios.index.get_level_values("dtype")
    what = "functions" if list(ratios.index.names) == ["fn", "dtype"] else "rows"
    for dtype in dict.fromkeys(dtypes):
        sub = ratios[dtypes == dtype]
        median = sub.median(skipna=True).dropna()
        if median.empty:
            continue
        wins = (sub == 1.0).sum()
        leaders = [v for v in median.index if median[v] == median.min()]
        best = max(leaders, key=lambda v: wins[v])
        ties = [v for v in leaders if v != best and wins[v] == wins[best]]
        ulps = accuracy[accuracy.index.get_level_values("dtype") == dtype][(best, "median_ulp")]
        text = f"{dtype}: the most accurate is **{best}**"
        if ties:
            text += f" (tied with {', '.join(ties)})"
        text += (f", best on {int(wins[best])} of {int(sub[best].notna().sum())} {what} "
                 f"(median {fmt(ulps.median())} ULP)")
        others = median.drop(leaders).sort_values()
        if len(others):
            text += f"; next: {others.index[0]}, median {fmt_ratio(others.iloc[0])} the best error"
        lines.append(text)
    return lines


def stepsize_words(table: pd.DataFrame) -> list[str]:
    lines = []
    for _, r in table.iterrows():
        where = " ".join(f"`{r[k]}`" if k == "fn" else str(r[k]) for k in table.columns
                         if k in ("fn", "dtype", "order", "device", "host", "scheme", "n"))
        if _isnan(r["h_best"]):
            lines.append(f"{where}: no step gave a finite result at every point")
            continue
        text = f"{where}: best measured h = {fmt(r['h_best'], 2)} (max |err| {fmt(r['err_best'])})"
        if not _isnan(r["h_model"]):
            text += (f"; the model predicts h* = {fmt(r['h_model'], 2)} (max |err| "
                     f"{fmt(r['err_model'])}), {fmt(max(r['h_ratio'], 1 / r['h_ratio']), 2)}× apart")
        elif not _isnan(r["C"]) and r["C"] == 0:
            text += "; no truncation error here (f'' = 0 away from kinks), so the largest h wins"
        lines.append(text)
    return lines


def stepsize_summary(table: pd.DataFrame) -> list[str]:
    """One sentence: how far the measured best h is from the model's, over all cases."""
    apart = table["h_ratio"].dropna().map(lambda r: max(r, 1 / r))
    if apart.empty:
        return ["step size: no case has both a measured optimum and a model (see Error "
                "against step size)"]
    spread = fmt(apart.max(), 2) if len(apart) == 1 else f"{fmt(apart.min(), 2)}–{fmt(apart.max(), 2)}"
    return [f"step size: the measured best h is within {spread}× "
            f"of the model's optimum h* in {len(apart)} of {len(table)} function × dtype × scheme "
            f"cases (median {fmt(apart.median(), 2)}×, with h swept one value per decade); "
            f"see Error against step size"]


def autograd_words(ratios: pd.DataFrame, worst: pd.DataFrame) -> list[str]:
    """Where autograd is beaten, and where its relative error grows (with the x)."""
    lines = []
    if not ratios.empty and "autograd" in ratios.columns:
        beaten = ratios["autograd"].dropna()
        beaten = beaten[beaten > 1.0]
        for key, ratio in beaten.items():
            best = ratios.loc[key].replace(math.inf, np.nan).idxmin()
            lines.append(f"{_row_text(key)}: {best} is {fmt_ratio(ratio)} more accurate "
                         f"than autograd")
    for _, r in worst.iterrows():
        eps = torch.finfo(getattr(torch, str(r["dtype"]))).eps
        if not _isnan(r["max_rel_err"]) and r["max_rel_err"] > 100 * eps:
            lines.append(f"`{r['fn']}` {r['dtype']}: autograd's relative error reaches "
                         f"{fmt(r['max_rel_err'])} ({fmt(r['max_rel_err'] / eps)} eps) at x = "
                         f"{fmt(r['x_worst'], 6)}, where |f'| = {fmt(abs(r['df_ref_worst']))}")
    if not lines and not worst.empty:
        lines.append(f"autograd stays within {fmt(worst['max_ulp'].max())} ULP (max) and 100 eps "
                     f"relative error everywhere in this sweep")
    return lines


def slowdown_words(slow: pd.DataFrame) -> list[str]:
    lines = []
    for method, group in slow.groupby("per_point_method", sort=False):
        s = group["slowdown"]
        spread = (f" (range {fmt_ratio(s.min())}–{fmt_ratio(s.max())}, {len(s)} configurations)"
                  if len(s) > 1 else "")
        lines.append(f"the per-point **{method}** is {fmt_ratio(s.median())} slower per point than "
                     f"vectorized autograd{spread}; it costs {fmt_ratio(group['per_point_cost'].median())} "
                     f"the forward pass against {fmt_ratio(group['autograd_cost'].median())} for autograd")
    return lines


def context_words(records: pd.DataFrame, manifest: dict) -> list[str]:
    lines = []
    timed = sweep.timed(records)
    if not timed.empty and "parallel" in timed.columns and timed["parallel"].fillna(False).any():
        launchers = ", ".join(sorted(set(timed.loc[timed["parallel"].fillna(False).astype(bool),
                                                   "launcher"].astype(str))))
        lines.append(f"timings marked † were taken with several jobs running at once ({launchers}); "
                     f"they are contended. For timing studies run the sweep serially (the "
                     f"default launcher) or with hydra.launcher.n_jobs=1")
    if "host" in records.columns and records["host"].nunique() > 1 and not timed.empty:
        lines.append(f"records come from {records['host'].nunique()} hosts "
                     f"({', '.join(sorted(records['host'].astype(str).unique()))}); compare "
                     f"timings only within a host")
    if not timed.empty and "time_noisy" in timed.columns and timed["time_noisy"].fillna(False).any():
        lines.append(f"{int(timed['time_noisy'].fillna(False).sum())} timings are noisy "
                     f"(IQR/median > 0.1)")
    missing = missing_jobs(records, manifest)
    if missing:
        lines.append(f"{len(missing)} of the {len(manifest['jobs'])} jobs of the sweep have no "
                     f"record yet (interrupted?); rerun the same command with "
                     f"hydra.sweep.dir=<this folder> to complete it")
    return lines


def missing_jobs(records: pd.DataFrame, manifest: dict) -> list[list[str]]:
    jobs = manifest.get("jobs") or []
    have = set(records["overrides"].map(sweep.job_key)) if "overrides" in records.columns else set()
    return [job for job in jobs if sweep.job_key(job) not in have]


# --- the sweep report ---------------------------------------------------------------------

@dataclass(frozen=True)
class SweepOutcome:
    records: pd.DataFrame
    paths: dict


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_")[:60] or "fn"


def _figure_image(fig, name: str, caption: str) -> Image:
    return Image(f"plots/{name}.png", png_bytes(fig), caption)


def stepsize_section(records: pd.DataFrame, folder: Path) -> tuple[list[Block], pd.DataFrame]:
    table, models = sweep.stepsize_table(records, folder)
    if table.empty:
        return [], table
    rows = sweep.stepsize_rows(records)
    keys = sweep._stepsize_keys(rows)
    group_keys = [k for k in keys if k not in ("dtype", "scheme")]
    blocks: list[Block] = [
        Heading("Error against step size"),
        Text("Each panel is the classic V: truncation error C·h^p falls with h (p = 1 forward "
             "and backward, 2 central), round-off eps·|f|/h grows as h shrinks. Dashed: the "
             "model with C = max|f''|/2 (one-sided) or max|f'''|/6 (central) and |f| = max|f| "
             "over the grid, from the function's own derivatives (sympy). Stars: the measured "
             "best h; diamonds: the model's optimum h* = (eps·|f| / (p·C))^(1/(p+1))."),
        frame_block(table[[c for c in table.columns if c not in ("F",)]],
                    "h_best/err_best: the measured optimum over the swept h (steps with any "
                    "non-finite quotient excluded); h_model/err_model: the model's; h_ratio = "
                    "h_best / h_model."),
        Bullets(tuple(stepsize_words(table))),
    ]
    for i, (key, group) in enumerate(rows.groupby(group_keys, sort=False)):
        key = key if isinstance(key, tuple) else (key,)
        fn = group["fn"].iloc[0]
        group_models = {(k[keys.index("dtype")], k[keys.index("scheme")]): m
                        for k, m in models.items()
                        if all(k[keys.index(g)] == v for g, v in zip(group_keys, key))}
        best = table.merge(pd.DataFrame([dict(zip(group_keys, key))]), on=group_keys)
        title = "error against h: " + ", ".join(f"{k} = {v}" for k, v in zip(group_keys, key))
        fig = stepsize_figure(group, group_models, best, sweep.autograd_errors(records, fn), title)
        blocks.append(_figure_image(fig, f"stepsize_{i}_{_slug(fn)}", title))
    return blocks, table


def accuracy_section(records: pd.DataFrame, folder: Path) -> tuple[list[Block], dict]:
    accuracy = sweep.accuracy_table(records)
    if accuracy.empty:
        return [], {}
    ratios = sweep.error_vs_best(records)
    blocks: list[Block] = [Heading("Accuracy"), accuracy_block(accuracy),
                           Heading("Error relative to the best available", 3), ratio_block(ratios)]
    return blocks, {"accuracy": accuracy, "error_vs_best": ratios}


def throughput_section(records: pd.DataFrame) -> tuple[list[Block], dict]:
    throughput = sweep.throughput_table(records)
    if throughput.empty:
        return [], {}
    rows = sweep.timed(records)
    parallel = (sweep.pivot(rows.assign(parallel=rows["parallel"].fillna(False).astype(float)),
                            ["parallel"]).xs("parallel", axis=1, level="metric").fillna(0) > 0
                if "parallel" in rows.columns else pd.DataFrame())
    blocks: list[Block] = [Heading("Throughput"), throughput_block(throughput, parallel)]
    tables = {"throughput": throughput}
    slow = sweep.per_point_slowdown(records)
    if not slow.empty:
        blocks += [Heading("Per-point loop against vectorized autograd", 3),
                   frame_block(slow, "slowdown = autograd points/s ÷ per-point points/s.")]
        tables["per_point_vs_autograd"] = slow
    frontier = sweep.frontier_points(records)
    if len(frontier):
        blocks.append(_figure_image(frontier_figure(frontier), "frontier",
                                    "Accuracy against throughput, one point per method"))
    scaling = sweep.scaling_rows(records)
    for i, (fn, group) in enumerate(scaling.groupby("fn", sort=False)):
        blocks.append(_figure_image(scaling_figure(group, f"{fn}: throughput against grid size"),
                                    f"scaling_{i}_{_slug(fn)}",
                                    f"{fn}: points/s and cost relative to the forward pass "
                                    f"against grid.n (hollow: timed in parallel)"))
    return blocks, tables


def failures_section(records: pd.DataFrame) -> list[Block]:
    failed = records[records["status"] != sweep.OK]
    if failed.empty:
        return []
    columns = [c for c in ("job_dir", "fn", "method", "dtype", "status", "status_reason")
               if c in failed.columns]
    return [Heading("Jobs without numbers"),
            frame_block(failed[columns], "Recorded with their status and reason (invalid "
                                         "config, unsupported combination, error, oom); they "
                                         "contribute no numbers to the tables above.")]


def runs_section(records: pd.DataFrame, folder: Path, embed: int) -> list[Block]:
    """Per-configuration plots: embedded for small sweeps, linked for large ones."""
    folder = Path(folder)
    ok = records[records["status"] == sweep.OK]
    if ok.empty:
        return []
    labels = sweep.variant_labels(ok)
    blocks: list[Block] = [Heading("Per configuration")]
    if len(ok) > embed:
        rows = tuple((str(r["job_dir"]), str(r["fn"]), labels[i], str(r["dtype"]),
                      f"{r['job_dir']}/report.md")
                     for i, r in ok.iterrows())
        blocks.append(Table(("folder", "fn", "method", "dtype", "report"), rows,
                            f"{len(ok)} runs: more than {embed}, so their plots (derivative.png, "
                            f"error.png in each folder) are linked, not embedded; raise the limit "
                            f"with python -m harness.report {folder} --embed-runs N"))
        return blocks
    for i, r in ok.iterrows():
        images = tuple(Image(f"{r['job_dir']}/{name}", (folder / r["job_dir"] / name).read_bytes(),
                             f"{r['fn']} by {labels[i]} in {r['dtype']}: {name}")
                       for name in ("derivative.png", "error.png")
                       if (folder / r["job_dir"] / name).exists())
        blocks.append(Fold(f"{r['job_dir']}: {summary_line(r.to_dict())}", images))
    return blocks


def overview(records: pd.DataFrame, manifest: dict, folder: Path) -> list[Block]:
    ok = int((records["status"] == sweep.OK).sum())
    items = [f"{len(records)} records ({ok} ok, {len(records) - ok} failed) under `{folder}`"]
    if manifest.get("command"):
        items.append(f"command: `{manifest['command']}`")
    for column, label in (("launcher", "launcher"), ("host", "hosts"), ("torch_version", "torch"),
                          ("git_sha", "commit"), ("device_name", "devices")):
        if column in records.columns:
            values = sorted(set(records[column].dropna().astype(str)) - {""})
            if values:
                items.append(f"{label}: {', '.join(values)}")
    return [Bullets(tuple(items))]


def write_sweep_report(folder: Path, embed_runs: int = EMBED_RUNS) -> SweepOutcome:
    """Gather every finished record under `folder`; write summary, tables, plots, reports."""
    folder = Path(folder)
    records = sweep.gather(folder)
    if records.empty:
        raise FileNotFoundError(f"no finished runs under {folder} (a run is finished when its "
                                f"folder holds {RECORDS}.parquet)")
    manifest = sweep.read_manifest(folder) or {}
    write_table(records, folder, sweep.SUMMARY)
    accuracy_blocks, tables = accuracy_section(records, folder)
    step_blocks, step_table = stepsize_section(records, folder)
    speed_blocks, speed_tables = throughput_section(records)
    tables.update(speed_tables)
    if not step_table.empty:
        tables["stepsize"] = step_table
    extra_blocks = network_section(records, tables) + triage_section(records, tables)
    words = findings(records, folder, manifest, tables)
    blocks = [Heading(f"dydx sweep report: {folder.name or folder}", 1),
              *overview(records, manifest, folder),
              Heading("What the data show"), Bullets(tuple(words) or ("no successful runs",)),
              *accuracy_blocks, *step_blocks, *speed_blocks, *extra_blocks,
              *failures_section(records),
              *runs_section(records, folder, embed_runs),
              Text(f"Rebuild this report from the stored rows: "
                   f"`python -m harness.report {folder}`")]
    paths = write_outputs(folder, blocks, tables)
    paths["summary.csv"] = folder / f"{sweep.SUMMARY}.csv"
    return SweepOutcome(records, paths)


def network_section(records: pd.DataFrame, tables: dict) -> list[Block]:
    """Networks: does out.backward(v) equal autograd.grad bitwise, how far are the checks."""
    table = consistency_table(records)
    if table.empty:
        return []
    tables["network_consistency"] = table
    return [Heading("Networks: backward vs autograd.grad, forward mode, gradient penalty"),
            frame_block(table, "one row per network x dtype x device x v x train mode")]


def triage_table(records: pd.DataFrame) -> pd.DataFrame:
    """Points above 4 ULP per cause, per fn x method x dtype (runs with any such point)."""
    columns = [c for c in records.columns if c.startswith("triage_")]
    ok = records[records["status"] == sweep.OK] if columns else records.iloc[0:0]
    if ok.empty:
        return pd.DataFrame()
    table = ok.groupby(["fn", "method", "dtype"])[columns].sum()
    table.columns = [c.removeprefix("triage_") for c in columns]
    return table[table.sum(axis=1) > 0].reset_index()


def triage_section(records: pd.DataFrame, tables: dict) -> list[Block]:
    table = triage_table(records)
    if table.empty:
        return []
    tables["triage"] = table
    return [Heading("Failure triage: why points miss by more than 4 ULP"),
            frame_block(table, "kink / domain_edge: excluded points; cancellation, roundoff, "
                               "truncation: explained by a numerical model; mismatch: "
                               "unexplained, a likely bug")]


def triage_words(table: pd.DataFrame) -> list[str]:
    bad = table[table.get("mismatch", 0) > 0] if "mismatch" in table else table.iloc[0:0]
    return [f"{row.fn} by {row.method} in {row.dtype}: {int(row.mismatch)} points disagree with the "
            f"reference for no known numerical reason (triage: mismatch)"
            for row in bad.itertuples(index=False)]


def findings(records: pd.DataFrame, folder: Path, manifest: dict, tables: dict) -> list[str]:
    words = []
    if "error_vs_best" in tables:
        words += best_per_dtype(tables["error_vs_best"], tables["accuracy"])
    if "stepsize" in tables:
        words += stepsize_summary(tables["stepsize"])
    worst = sweep.worst_relative_points(records, folder)
    words += autograd_words(tables.get("error_vs_best", pd.DataFrame()), worst)
    if "per_point_vs_autograd" in tables:
        words += slowdown_words(tables["per_point_vs_autograd"])
    if "network_consistency" in tables:
        words += consistency_words(tables["network_consistency"])
    if "triage" in tables:
        words += triage_words(tables["triage"])
    failed = records[records["status"] != sweep.OK]
    if len(failed):
        counts = ", ".join(f"{n} {s}" for s, n in failed["status"].value_counts().items())
        words.append(f"{len(failed)} jobs produced no numbers ({counts}); see Jobs without numbers")
    if sweep.duplicates(records):
        words.append(f"{sweep.duplicates(records)} records repeat a configuration; the latest "
                     f"of each is shown")
    return words + context_words(records, manifest)


def write_outputs(folder: Path, blocks: list[Block], tables: dict) -> dict:
    """tables/*.csv, plots/*.png (stale ones removed), report.md, report.html."""
    for name, table in tables.items():
        frame = _flat(table) if isinstance(table.columns, pd.MultiIndex) or table.index.names[0] \
            else table
        atomic_write(folder / "tables" / f"{name}.csv", lambda tmp, f=frame: f.to_csv(tmp, index=False))
    images = [b for b in _walk(blocks) if isinstance(b, Image) and b.path.startswith("plots/")]
    for image in images:
        save_bytes(image.png, folder / image.path)
    keep = {folder / image.path for image in images}
    for stale in (folder / "plots").glob("*.png") if (folder / "plots").is_dir() else []:
        if stale not in keep:
            stale.unlink()
    title = f"dydx sweep report: {folder.name}"
    atomic_write_text(folder / "report.md", render_markdown(blocks))
    atomic_write_text(folder / "report.html", render_html(blocks, title))
    return {"report.md": folder / "report.md", "report.html": folder / "report.html"}


def _walk(blocks: Sequence[Block]):
    for block in blocks:
        yield block
        if isinstance(block, Fold):
            yield from _walk(block.blocks)


# --- python -m harness.report ---------------------------------------------------------------

def rebuild_run(run_dir: Path) -> list[Path]:
    """A run folder's plots and report.md again, from its stored record and points."""
    run_dir = Path(run_dir)
    record = pd.read_parquet(run_dir / f"{RECORDS}.parquet").iloc[0].to_dict()
    points_path = run_dir / f"{POINTS}.parquet"
    points = pd.read_parquet(points_path) if points_path.exists() else pd.DataFrame()
    write_run_views(run_dir, record, points)
    return [p for p in (run_dir / "report.md", run_dir / "derivative.png", run_dir / "error.png")
            if p.exists()]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.report",
        description="Rebuild tables, plots and reports from stored records. A run folder "
                    "(with records.parquet) gets its plots and report.md; any other folder gets "
                    "the sweep report over every finished run below it.")
    parser.add_argument("folder", type=Path, help="a run folder, a sweep folder, or a parent of several")
    parser.add_argument("--embed-runs", type=int, default=EMBED_RUNS, metavar="N",
                        help=f"embed each run's own plots when there are at most N runs "
                             f"(default {EMBED_RUNS})")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"dydx: error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    if (args.folder / f"{RECORDS}.parquet").exists():
        for path in rebuild_run(args.folder):
            print(f"wrote {path}")
        return 0
    try:
        outcome = write_sweep_report(args.folder, embed_runs=args.embed_runs)
    except FileNotFoundError as err:
        print(f"dydx: error: {err}", file=sys.stderr)
        return 2
    records = outcome.records
    ok = int((records["status"] == sweep.OK).sum())
    print(f"dydx: {len(records)} records ({ok} ok, {len(records) - ok} failed)")
    for name, path in outcome.paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
