"""The sweep report: summary.csv/.parquet, tables/*.csv, plots/*.png, report.md and a
self-contained report.html, from every finished record under a folder."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd

from harness.analysis import stepsize as s
from harness.analysis import tables as t
from harness.analysis.networks import consistency_table
from harness.atomic import atomic_write, atomic_write_bytes, atomic_write_text
from harness.report.atlas_page import atlas_headline, atlas_pointer, write_atlas
from harness.report.blocks import (Block, Bullets, Fold, Heading, Image, Link, Table, Text,
                                   _flat, _walk, frame_block, png_bytes, render_html,
                                   render_markdown)
from harness.report.format import (NOISY_MARK, fmt, fmt_ratio, fmt_spread, headline, index_cells, is_missing,
                                   summary_line)
from harness.report.plots import frontier_figure, scaling_figure, stepsize_figure
from harness.report.words import findings, stepsize_words
from harness.results import RECORDS, SUMMARY, gather_records, read_manifest, write_table
from harness.study.record import OK

# Runs whose own plots the sweep report embeds; above this it links to their pages.
EMBED_RUNS = 24
# A pivot with more variants than this is folded: one table per function or dtype, one row
# per variant, so a step-size sweep's 45 variants read down the page instead of across it.
MAX_COLUMNS = 8
# The console shows at most this many rows of the headline table (the report has them all).
CONSOLE_ROWS = 40


def matrix_blocks(table: pd.DataFrame, cell, note: str) -> list[Block]:
    """A pivot as text tables; cell(row, variant) -> str. One table when the variants fit
    across the page; else folded per function or dtype (whichever gives fewer folds that
    fit), each fold a table with one row per variant and one column per remaining key."""
    variants = list(dict.fromkeys(table.columns.get_level_values("variant")))
    names = tuple(str(n) for n in table.index.names)
    if len(variants) <= MAX_COLUMNS:
        rows = tuple(index_cells(k) + tuple(cell(table.loc[k], v) for v in variants)
                     for k in table.index)
        return [Table(names + tuple(variants), rows, note)]
    level = fold_level(table.index)
    blocks: list[Block] = []
    for value, keys in _groups(table.index, level):
        header = ("method",) + tuple(" ".join(_without(k, level)) or str(value) for k in keys)
        rows = tuple((v,) + tuple(cell(table.loc[k], v) for k in keys) for v in variants)
        title = ", ".join(f"{n} = {fmt(x)}" for n, x in zip(
            [names[i] for i in level], value)) if level else "all"
        blocks.append(Fold(title, (Table(header, rows),)))
    return blocks + [Text(note)]


def fold_level(index: pd.Index) -> tuple[int, ...]:
    """The index levels to fold on: one level (fn or dtype...) whose folds each leave at most
    MAX_COLUMNS keys, the one with the fewest folds; else every level (one key per fold)."""
    fits = []
    for i in range(index.nlevels):
        groups = _groups(index, (i,))
        if max(len(keys) for _, keys in groups) <= MAX_COLUMNS:
            fits.append((len(groups), i))
    return (min(fits)[1],) if fits else tuple(range(index.nlevels))


def _groups(index: pd.Index, level: tuple[int, ...]) -> list[tuple[tuple, list]]:
    groups: dict[tuple, list] = {}
    for key in index:
        key = key if isinstance(key, tuple) else (key,)
        groups.setdefault(tuple(key[i] for i in level), []).append(
            key if index.nlevels > 1 else key[0])
    return list(groups.items())


def _without(key, level: tuple[int, ...]) -> tuple[str, ...]:
    key = key if isinstance(key, tuple) else (key,)
    return index_cells(tuple(k for i, k in enumerate(key) if i not in level))


def accuracy_cell(row, v) -> str:
    """One run's accuracy in a pivot: failures first (nan/inf results, points with no
    correct digit), then max |error| and median ULP over the finite results; '—' where
    the sweep has no result (unsupported, failed, not run)."""
    err, ulps = row.get((v, "max_abs_err")), row.get((v, "median_ulp"))
    if is_missing(err) and is_missing(row.get((v, "n_nonfinite"))):
        return "—"
    marks = [f"✗ {int(row[(v, column)])} {words}"
             for column, words in (("n_nonfinite", "nan/inf"), ("n_wrong", "wrong"))
             if not is_missing(row.get((v, column))) and row[(v, column)] > 0]
    return " · ".join(marks + [f"{fmt(err)} · {fmt(ulps)} ULP"])


def accuracy_blocks(table: pd.DataFrame) -> list[Block]:
    return matrix_blocks(table, accuracy_cell,
                         "Cells: max |error| over the checked points · median error in ULPs of "
                         "the dtype; led by ✗ N nan/inf (points where the method returned "
                         "nan/inf, left out of both numbers) and ✗ N wrong (points with no "
                         "correct digit, |error| ≥ |f'|) when there are any. — : no result "
                         "(unsupported, failed, or not in this sweep).")


def throughput_blocks(table: pd.DataFrame, parallel: pd.DataFrame,
                      noisy: pd.DataFrame = pd.DataFrame()) -> list[Block]:
    def flagged(marks: pd.DataFrame, row, v) -> bool:
        return not marks.empty and bool(marks.get(v, {}).get(row.name, False))

    def cell(row, v) -> str:
        pps, cost = row.get((v, "points_per_s")), row.get((v, "cost_vs_forward"))
        if is_missing(pps):
            return "—"
        # The spread, then the marks: ‡ (untrustworthy, from the record's time_noisy) is
        # the noisy mark, so the spread itself is shown without one.
        spread = fmt_spread(row.get((v, "time_median_s")), row.get((v, "time_iqr_s")), False,
                            row.get((v, "time_blocks")))
        marks = (" †" if flagged(parallel, row, v) else "") + \
            (f" {NOISY_MARK}" if flagged(noisy, row, v) else "")
        return f"{fmt(pps)} pt/s {spread} · {fmt(cost)}×{marks}".replace("  ", " ")

    note = ("Cells: points per second ± half the interquartile range of the timed blocks "
            "(relative to their median; ±?: fewer than 4 blocks, no spread to show) · time "
            "relative to the forward pass f(x) on the same x.")
    if not parallel.empty and parallel.any().any():
        note += " † timed while other jobs of the sweep ran on the same machine: contended."
    if not noisy.empty and noisy.any().any():
        note += (f" {NOISY_MARK} timing not trustworthy (the reason is in summary.csv, "
                 "time_noisy_reason); left out of the findings.")
    return matrix_blocks(table, cell, note)


def ratio_blocks(table: pd.DataFrame, nonfinite: pd.DataFrame) -> list[Block]:
    """Each variant's max |error| over the row's best; a variant with nan/inf results is
    marked as the failure it is, not given a ratio; '—' where there is no result."""
    def cell(row, v) -> str:
        bad = nonfinite.get(v, {}).get(row.name, 0) if not nonfinite.empty else 0
        if not is_missing(bad) and bad > 0:
            return f"✗ {int(bad)} nan/inf"
        return fmt_ratio(row.get((v, "ratio")))

    framed = table.copy()
    framed.columns = pd.MultiIndex.from_tuples([(v, "ratio") for v in table.columns],
                                               names=["variant", "metric"])
    return matrix_blocks(framed, cell,
                         "Each variant's max |error| divided by the smallest in its row: 1× is "
                         "the best available here; ∞: inexact where another variant is exact; "
                         "✗ N nan/inf: the variant returned nan/inf at N points, so it has no "
                         "ratio; —: no result (unsupported, failed, or not in this sweep).")


@dataclass(frozen=True)
class SweepOutcome:
    records: pd.DataFrame
    paths: dict
    # What the sweep is for (see LEADS) and the table its report leads with.
    kind: str = "methods"
    headline: Optional[Table] = None
    # records.parquet files that could not be read (left out, listed in the report).
    damaged: list[Path] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_")[:60] or "fn"


def _figure_image(fig, name: str, caption: str) -> Image:
    return Image(f"plots/{name}.png", png_bytes(fig), caption)


def stepsize_section(records: pd.DataFrame, folder: Path, tables: dict) -> list[Block]:
    """The V plots, then the optimal-h table; words only where a row needs them."""
    table, models = s.stepsize_table(records, folder)
    if table.empty:
        return []
    tables["stepsize"] = table
    rows = s.stepsize_rows(records)
    keys = s.stepsize_keys(rows)
    group_keys = [k for k in keys if k not in ("dtype", "scheme")]
    blocks: list[Block] = [
        Heading("Error against step size"),
        Text("Each panel is the classic V: truncation error C·h^p falls with h (p = 1 forward "
             "and backward, 2 central), round-off eps·|f|/h grows as h shrinks. Dashed: the "
             "model with C = max|f''|/2 (one-sided) or max|f'''|/6 (central) and |f| = max|f| "
             "over the grid, from the function's own derivatives (sympy). Stars: the measured "
             "best h; diamonds: the model's optimum h* = (eps·|f| / (p·C))^(1/(p+1))."),
    ]
    for i, (key, group) in enumerate(rows.groupby(group_keys, sort=False)):
        key = key if isinstance(key, tuple) else (key,)
        fn = group["fn"].iloc[0]
        group_models = {(k[keys.index("dtype")], k[keys.index("scheme")]): m
                        for k, m in models.items()
                        if all(k[keys.index(g)] == v for g, v in zip(group_keys, key))}
        best = table.merge(pd.DataFrame([dict(zip(group_keys, key))]), on=group_keys)
        title = "error against h: " + ", ".join(f"{k} = {v}" for k, v in zip(group_keys, key))
        fig = stepsize_figure(group, group_models, best, t.autograd_errors(records, fn), title)
        blocks.append(_figure_image(fig, f"stepsize_{i}_{_slug(fn)}", title))
    blocks += [Heading("Optimal step size", 3), stepsize_block(table)]
    # The table says the rest; words only for rows whose numbers need a reason.
    special = table[table["h_best"].isna() | (table["C"] == 0)]
    if len(special):
        blocks.append(Bullets(tuple(stepsize_words(special))))
    return blocks


def stepsize_block(table: pd.DataFrame) -> Table:
    return frame_block(table[[c for c in table.columns if c not in ("F",)]],
                       "h_best/err_best: the measured optimum over the swept h (steps with any "
                       "non-finite quotient excluded); h_model/err_model: the model's; h_ratio = "
                       "h_best / h_model.")


def accuracy_section(records: pd.DataFrame, folder: Path, tables: dict) -> list[Block]:
    accuracy = t.accuracy_table(records)
    if accuracy.empty:
        return []
    ratios = t.error_vs_best(records)
    nonfinite = accuracy.xs("n_nonfinite", axis=1, level="metric")
    tables.update(accuracy=accuracy, error_vs_best=ratios)
    return [Heading("Accuracy"), *accuracy_blocks(accuracy),
            Heading("Error relative to the best available", 3),
            *ratio_blocks(ratios, nonfinite)]


def throughput_section(records: pd.DataFrame, folder: Path, tables: dict) -> list[Block]:
    throughput = t.throughput_table(records)
    if throughput.empty:
        return []
    tables["throughput"] = throughput
    rows = t.timed(records)
    parallel = (_flag_pivot(rows, rows["parallel"].fillna(False).astype(bool))
                if "parallel" in rows.columns else pd.DataFrame())
    noisy = _flag_pivot(rows, t.untrusted(rows))
    blocks: list[Block] = [Heading("Throughput"),
                           *throughput_blocks(throughput, parallel, noisy)]
    slow = t.per_point_slowdown(records)
    if not slow.empty:
        blocks += [Heading("Per-point loop against vectorized autograd", 3),
                   frame_block(slow, "slowdown = autograd points/s ÷ per-point points/s.")]
        tables["per_point_vs_autograd"] = slow
    return blocks


def _flag_pivot(rows: pd.DataFrame, flag: pd.Series) -> pd.DataFrame:
    """A boolean per row as a (row keys x variant) table, for marking cells."""
    marked = rows.assign(flag=flag.astype(float))
    return t.pivot(marked, ["flag"]).xs("flag", axis=1, level="metric").fillna(0) > 0


def frontier_section(records: pd.DataFrame, folder: Path, tables: dict) -> list[Block]:
    frontier = t.frontier_points(records)
    if not len(frontier):
        return []
    return [_figure_image(frontier_figure(frontier), "frontier",
                          "Accuracy against throughput, one point per method; the line and "
                          "rings mark the Pareto front (nothing is both faster and more accurate)")]


def scaling_section(records: pd.DataFrame, folder: Path, tables: dict) -> list[Block]:
    scaling = t.scaling_rows(records)
    blocks: list[Block] = [Heading("Throughput against grid size")] if len(scaling) else []
    for i, (fn, group) in enumerate(scaling.groupby("fn", sort=False)):
        blocks.append(_figure_image(scaling_figure(group, f"{fn}: throughput against grid size"),
                                    f"scaling_{i}_{_slug(fn)}",
                                    f"{fn}: points/s and cost relative to the forward pass "
                                    f"against grid.n (hollow: timed in parallel)"))
    return blocks


def failures_section(records: pd.DataFrame) -> list[Block]:
    failed = records[records["status"] != OK]
    if failed.empty:
        return []
    columns = [c for c in ("job_dir", "fn", "method", "dtype", "status", "status_reason")
               if c in failed.columns]
    return [Heading("Jobs without numbers"),
            frame_block(failed[columns], "Recorded with their status and reason (invalid "
                                         "config, unsupported combination, error, oom); they "
                                         "contribute no numbers to the tables above.")]


def damaged_section(damaged: list[Path], folder: Path) -> list[Block]:
    if not damaged:
        return []
    return [Heading("Damaged records"),
            Bullets(tuple(f"`{p.relative_to(folder)}` cannot be read: its job counts as not "
                          f"finished and contributes nothing here; resuming the sweep runs "
                          f"it again" for p in damaged))]


def runs_section(records: pd.DataFrame, folder: Path, embed: int) -> list[Block]:
    """Per-configuration plots: embedded for small sweeps; for large ones, a table that
    links each configuration's own page (report.md, beside its plots)."""
    folder = Path(folder)
    ok = records[records["status"] == OK]
    if ok.empty:
        return []
    labels = t.variant_labels(ok)
    blocks: list[Block] = [Heading("Per configuration")]
    if len(ok) > embed:
        rows = tuple((Link(str(r["job_dir"]), f"{r['job_dir']}/report.md"), str(r["fn"]),
                      labels[i], str(r["dtype"]), headline(r.to_dict()))
                     for i, r in ok.iterrows())
        blocks.append(Table(("page", "fn", "method", "dtype", "numbers"), rows,
                            f"{len(ok)} runs: more than {embed}, so each links its page (its "
                            f"plots, derivative.png and error.png, are in its folder) instead of "
                            f"being embedded; raise the limit with python -m harness.report "
                            f"{folder} --embed-runs N"))
        return blocks
    for i, r in ok.iterrows():
        images = tuple(Image(f"{r['job_dir']}/{name}", (folder / r["job_dir"] / name).read_bytes(),
                             f"{r['fn']} by {labels[i]} in {r['dtype']}: {name}")
                       for name in ("derivative.png", "error.png")
                       if (folder / r["job_dir"] / name).exists())
        blocks.append(Fold(f"{r['job_dir']}: {summary_line(r.to_dict())}", images))
    return blocks


def overview(records: pd.DataFrame, manifest: dict, folder: Path) -> list[Block]:
    ok = int((records["status"] == OK).sum())
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


def network_section(records: pd.DataFrame, folder: Path, tables: dict) -> list[Block]:
    """Networks: does out.backward(v) equal autograd.grad bitwise, how far are the checks."""
    table = consistency_table(records)
    if table.empty:
        return []
    tables["network_consistency"] = table
    return [Heading("Networks: backward vs autograd.grad, forward mode, gradient penalty"),
            frame_block(table, "one row per network x dtype x device x v x train mode")]


def triage_section(records: pd.DataFrame, folder: Path, tables: dict) -> list[Block]:
    table = t.triage_table(records)
    if table.empty:
        return []
    tables["triage"] = table
    return [Heading("Failure triage: why points miss by more than 4 ULP"),
            frame_block(table, "kink / domain_edge: excluded points; roundoff, truncation: "
                               "explained by a numerical model; cancellation, underflow, "
                               "overflow, complex_kernel: precision lost in a correct formula "
                               "(the error scales with the dtype's precision); mismatch: none "
                               "of these, a likely bug")]


def atlas_section(records: pd.DataFrame, folder: Path, tables: dict) -> list[Block]:
    """Torch ops: where their atlas is, and its table of torch's own derivatives."""
    return atlas_pointer(records)


# The sections of a report, each (records, folder, tables) -> blocks, filling `tables`.
SECTIONS = {"accuracy": accuracy_section, "stepsize": stepsize_section,
            "throughput": throughput_section, "frontier": frontier_section,
            "scaling": scaling_section, "networks": network_section, "triage": triage_section,
            "atlas": atlas_section}
# What a sweep is for decides what its report leads with: a step-size sweep opens with its
# V plots and optimal h, a scaling sweep with throughput against n. "findings" is the
# section in words (What the data show).
LEADS = {
    "methods": ("findings", "accuracy", "throughput", "frontier", "scaling", "stepsize",
                "networks", "triage", "atlas"),
    "stepsize": ("stepsize", "findings", "accuracy", "throughput", "frontier", "scaling",
                 "networks", "triage", "atlas"),
    "scaling": ("scaling", "findings", "throughput", "frontier", "accuracy", "stepsize",
                "networks", "triage", "atlas"),
    "networks": ("networks", "findings", "accuracy", "throughput", "frontier", "scaling",
                 "stepsize", "triage", "atlas"),
    "atlas": ("atlas", "findings", "triage", "accuracy", "throughput", "frontier", "scaling",
              "stepsize", "networks"),
}


def sweep_kind(records: pd.DataFrame, tables: dict) -> str:
    """stepsize | scaling | networks | atlas | methods: what most of the sweep's runs are for
    (atlas: every run is a torch op, fn=torch)."""
    ok = t.successful(records)
    if ok.empty:
        return "methods"
    if "fn_source" in ok.columns and (ok["fn_source"] == "torch").all():
        return "atlas"
    if "stepsize" in tables and len(s.stepsize_rows(records)) >= len(ok) / 2:
        return "stepsize"
    if len(t.scaling_rows(records)) >= max(1, len(ok) / 2):
        return "scaling"
    if "fn_source" in ok.columns and (ok["fn_source"] == "network").all():
        return "networks"
    return "methods"


def headline_table(kind: str, records: pd.DataFrame, tables: dict) -> Optional[Table]:
    """The table the report leads with, as the console shows it when a sweep ends: the
    optimal h, the networks' checks, the atlas's table of autograd's largest errors, the
    accuracy matrix when it fits across, else each configuration's headline numbers."""
    if kind == "stepsize":
        return stepsize_block(tables["stepsize"])
    if kind == "networks":
        return frame_block(tables["network_consistency"])
    if kind == "atlas":
        return atlas_headline(records)
    if kind == "methods" and "accuracy" in tables:
        blocks = accuracy_blocks(tables["accuracy"])
        if len(blocks) == 1:
            return blocks[0]
    return configurations_table(records)


def configurations_table(records: pd.DataFrame) -> Optional[Table]:
    """One row per successful configuration: its accuracy and its throughput with spread."""
    ok = t.successful(records)
    if ok.empty:
        return None
    keys = t.row_keys(ok)
    rows = []
    for _, r in ok.iterrows():
        spread = fmt_spread(r.get("time_median_s"), r.get("time_iqr_s"), r.get("time_noisy"),
                            t.timed_blocks(r))
        speed = "—" if is_missing(r.get("points_per_s")) else \
            f"{fmt(r['points_per_s'])} {spread}".strip()
        rows.append(tuple(fmt(r[k]) for k in keys) + (
            r["variant"], fmt(r["max_abs_err"]), fmt(r["median_ulp"]), speed))
    return Table((*keys, "method", "max |err|", "median ULP", "points/s"), tuple(rows))


def write_sweep_report(folder: Path, embed_runs: int = EMBED_RUNS) -> SweepOutcome:
    """Gather every finished record under `folder`; write summary, tables, plots, reports."""
    folder = Path(folder)
    gathered = gather_records(folder)
    records = gathered.records
    if records.empty:
        raise FileNotFoundError(f"no finished runs under {folder} (a run is finished when its "
                                f"folder holds {RECORDS}.parquet)")
    manifest = read_manifest(folder) or {}
    write_table(records, folder, SUMMARY)
    tables: dict = {}
    sections = {name: build(records, folder, tables) for name, build in SECTIONS.items()}
    words = findings(records, folder, manifest, tables)
    sections["findings"] = [Heading("What the data show"),
                            Bullets(tuple(words) or ("no successful runs",))]
    kind = sweep_kind(records, tables)
    blocks = [Heading(f"dydx sweep report: {folder.name or folder}", 1),
              *overview(records, manifest, folder),
              *(block for name in LEADS[kind] for block in sections[name]),
              *failures_section(records), *damaged_section(gathered.damaged, folder),
              *runs_section(records, folder, embed_runs),
              Text(f"Rebuild this report from the stored rows: "
                   f"`python -m harness.report {folder}`")]
    paths = write_outputs(folder, blocks, tables)
    paths["summary.csv"] = folder / f"{SUMMARY}.csv"
    paths.update(write_atlas(folder, records, manifest))
    return SweepOutcome(records, paths, kind, headline_table(kind, records, tables),
                        gathered.damaged)


def write_outputs(folder: Path, blocks: list[Block], tables: dict) -> dict:
    """tables/*.csv, plots/*.png (stale ones removed), report.md, report.html."""
    for name, table in tables.items():
        frame = _flat(table) if isinstance(table.columns, pd.MultiIndex) or table.index.names[0] \
            else table
        atomic_write(folder / "tables" / f"{name}.csv", lambda tmp, f=frame: f.to_csv(tmp, index=False))
    images = [b for b in _walk(blocks) if isinstance(b, Image) and b.path.startswith("plots/")]
    for image in images:
        atomic_write_bytes(folder / image.path, image.png)
    keep = {folder / image.path for image in images}
    for stale in (folder / "plots").glob("*.png") if (folder / "plots").is_dir() else []:
        if stale not in keep:
            stale.unlink()
    title = f"dydx sweep report: {folder.name}"
    atomic_write_text(folder / "report.md", render_markdown(blocks))
    atomic_write_text(folder / "report.html", render_html(blocks, title))
    return {"report.md": folder / "report.md", "report.html": folder / "report.html"}
