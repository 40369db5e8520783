"""The atlas page of a sweep over torch ops: atlas.csv/.parquet (one row per op x dtype x
order x method), and atlas.md + atlas.html: the colour-coded table of the largest ULP
error found, worst op first, and every finding with its three-line repro and whether a
cross-check method gets that point right. The numbers come from harness.analysis.atlas."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.analysis import atlas as a
from harness.atomic import atomic_write_text
from harness.report.blocks import Block, Bullets, Code, Heading, Table, Text, render_html, \
    render_markdown
from harness.report.format import fmt
from harness.results import RECORDS, write_table

ATLAS = "atlas"
# Findings shown with their repro on the page (all of them are in atlas.csv).
SHOWN_FINDINGS = 80
# Per grade: the cell's background in HTML and its mark in markdown.
GRADE_STYLE = {
    a.GRADES[0]: ("#c8e6c9", "🟩"), a.GRADES[1]: ("#e6f4c8", "🟩"),
    a.GRADES[2]: ("#fff3b0", "🟨"), a.GRADES[3]: ("#ffcc80", "🟧"),
    a.GRADES[4]: ("#ef9a9a", "🟥"), a.GRADES[5]: ("#c62828", "⬛"), a.GRADES[6]: ("#eeeeee", ""),
}
ORDER_MARK = {1: "f'", 2: "f''"}


def _cell(row: pd.Series | None) -> tuple[str, str]:
    """(text, colour) of one table cell."""
    if row is None or row["status"] != "ok":
        return "—", GRADE_STYLE[a.GRADES[6]][0]
    colour, mark = GRADE_STYLE[a.row_grade(row)]
    text = "non-finite" if row["max_ulp"] == float("inf") else fmt(row["max_ulp"])
    return f"{mark} {text}".strip(), colour


def table_block(rows: pd.DataFrame, method: str) -> Table | None:
    table = a.atlas_table(rows, method)
    if table.empty:
        return None
    keyed = {(r["op"], r["dtype"], r["order"]): r
             for _, r in rows[rows["method"] == method].iterrows()}
    header = ("op",) + tuple(f"{d} {ORDER_MARK[o]}" for d, o in table.columns)
    cells = [[_cell(keyed.get((op, d, o))) for d, o in table.columns] for op in table.index]
    skipped = a.not_run(rows, method)
    note = legend() + (f" Not run by {method} in any dtype (reasons in `{ATLAS}.csv`): "
                       f"{', '.join(skipped)}." if skipped else "")
    return Table(header, tuple((op,) + tuple(t for t, _ in row) for op, row in zip(table.index, cells)),
                 note, colors=tuple(("",) + tuple(c for _, c in row) for row in cells))


def legend() -> str:
    marks = "; ".join(f"{GRADE_STYLE[g][1]} {g}".strip() for g in a.GRADES[:-1])
    return ("Cells: the largest error found, in ULPs of the dtype, over the grid and the "
            "worst-case hunt, at the worst x evaluated alone (as its repro does). " + marks
            + "; — : not run (unsupported: torch has no kernel or no derivative for it).")


def finding_blocks(found: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = []
    for _, r in found.head(SHOWN_FINDINGS).iterrows():
        title = (f"`torch.{r['op']}` {r['dtype']} {ORDER_MARK[int(r['order'])]} by "
                 f"{r['method']}: {fmt(r['max_ulp'])} ULP ({r['grade']}"
                 + (f"; triage {r['triage_at_worst']}" if r["triage_at_worst"] else "") + ")")
        where = (f"At x = {float(r['worst_x'])!r}: {r['method']} gives "
                 f"{float(r['value_at_worst'])!r}, the true value is "
                 f"{float(r['reference_at_worst'])!r}. ")
        fix = (f"Right there: {r['workaround']}" if r["workaround"] else
               f"No other method is within {a.FINDING_ULP:g} ULP there") + \
            f" ({cross_checks(r)})."
        blocks += [Heading(title, 4), Text(where + fix)]
        if r["repro"]:
            blocks.append(Code(r["repro"]))
    if len(found) > SHOWN_FINDINGS:
        blocks.append(Text(f"{len(found) - SHOWN_FINDINGS} more findings, each with its repro, "
                           f"in `{ATLAS}.csv`."))
    return blocks


def cross_checks(row: pd.Series) -> str:
    """The other methods' error at the row's worst x: 'forward_ad 9e+15 ULP, complex_step
    not run' (not run: torch has no complex kernel, or the method does not apply)."""
    def one(method: str) -> str:
        u = row[f"ulp_at_worst_{method}"]
        return f"{method} " + ("not run" if pd.isna(u) else "non-finite" if u == float("inf")
                               else f"{fmt(u)} ULP")
    return ", ".join(one(m) for m in a.CROSS if m != row["method"])


def overview(rows: pd.DataFrame, manifest: dict, elapsed: float) -> list[Block]:
    ok = rows["status"] == "ok"
    found = a.findings(rows)
    items = [f"{rows['op'].nunique()} ops × {rows['dtype'].nunique()} dtypes × "
             f"{rows['order'].nunique()} orders × {rows['method'].nunique()} methods: "
             f"{len(rows)} rows, {int(ok.sum())} measured, {int((~ok).sum())} not run "
             f"(unsupported or failed, with their reasons in `{ATLAS}.csv`)"]
    if manifest.get("command"):
        items.append(f"command: `{manifest['command']}`")
    if elapsed == elapsed:  # not NaN
        launcher = (manifest.get("launcher") or {}).get("name", "")
        items.append(f"wall-clock time: {elapsed / 60:.1f} min"
                     + (f" with the {launcher} launcher" if launcher else "")
                     + f", {elapsed / max(rows['op'].nunique(), 1):.1f} s per op")
    items.append(f"{len(found)} findings above {a.FINDING_ULP:g} ULP in "
                 f"{found['op'].nunique()} ops; autograd: {int((found['method'] == 'autograd').sum())}")
    if ok.any():
        items.append(f"points checked per row: median {fmt(rows.loc[ok, 'n_checked'].median())}; "
                     f"hunt: median {fmt(rows.loc[ok, 'n_hunt'].median())} more points")
    return [Bullets(tuple(items))]


def atlas_blocks(rows: pd.DataFrame, title: str, manifest: dict, elapsed: float) -> list[Block]:
    blocks: list[Block] = [Heading(f"dydx derivative atlas: {title}", 1),
                           *overview(rows, manifest, elapsed),
                           Text("How accurate are torch's own derivatives, into the tails? Each "
                                "op is checked on a grid that reaches its dtype's range (binades) "
                                "against a high-precision reference at the exact x, then a local "
                                "search around the worst points looks for larger errors. ULPs are "
                                "counted in the run's dtype at the true value.")]
    for method in [m for m in a.CROSS if m in set(rows["method"])]:
        block = table_block(rows, method)
        if block is not None:
            blocks += [Heading(f"Largest error found: {method}"), block]
    blocks += [Heading("Findings: torch's derivatives (autograd), one per op and order"),
               Text("Each op's worst dtype for f' and for f'', worst first; every finding (each "
                    f"op, dtype and order above {a.FINDING_ULP:g} ULP) is a row of `{ATLAS}.csv` with its "
                    "repro. Each repro prints the method's value at the worst x and the true "
                    "value; run as printed it gives the numbers above."),
               *finding_blocks(a.op_findings(rows, "autograd"))]
    for method in [m for m in a.CROSS[1:] if m in set(rows["method"])]:
        own = a.differs_from(a.op_findings(rows, method), rows)
        if len(own):
            blocks += [Heading(f"Findings: {method}, where it does not fail as autograd does"),
                       *finding_blocks(own)]
    return blocks


def atlas_headline(records: pd.DataFrame) -> Table | None:
    """The atlas's table of autograd's largest errors, worst op first (the console's and the
    sweep report's headline for a sweep of torch ops); None without autograd rows."""
    rows = a.atlas_rows(records)
    return table_block(rows, "autograd") if not rows.empty else None


def atlas_pointer(records: pd.DataFrame) -> list[Block]:
    """For the sweep report: where the atlas is, what it holds, and its autograd table."""
    rows = a.atlas_rows(records)
    if rows.empty:
        return []
    found = a.findings(rows)
    blocks: list[Block] = [
        Heading("The derivative atlas"),
        Text(f"`{ATLAS}.md` and `{ATLAS}.html` in this folder: {rows['op'].nunique()} torch ops, "
             f"the largest error found per op x dtype x order x method, and {len(found)} "
             f"findings above {a.FINDING_ULP:g} ULP, each with a repro and the methods right "
             f"there; every row in `{ATLAS}.csv`.")]
    table = table_block(rows, "autograd")
    if table is not None:
        blocks += [Heading("Largest error found: autograd", 3), table]
    return blocks


def finished_times(folder: Path) -> pd.Series:
    """When each run under the folder finished: its records file's modification time."""
    stamps = [p.stat().st_mtime for p in Path(folder).rglob(f"{RECORDS}.parquet")]
    return pd.to_datetime(pd.Series(stamps, dtype=float), unit="s", utc=True)


def write_atlas(folder: Path, records: pd.DataFrame, manifest: dict) -> dict:
    """atlas.csv/.parquet, atlas.md and atlas.html, when the records hold torch ops."""
    rows = a.atlas_rows(records)
    if rows.empty:
        return {}
    folder = Path(folder)
    write_table(rows, folder, ATLAS)
    elapsed = a.elapsed_seconds(manifest.get("started"), finished_times(folder))
    blocks = atlas_blocks(rows, folder.name or str(folder), manifest, elapsed)
    atomic_write_text(folder / f"{ATLAS}.md", render_markdown(blocks))
    atomic_write_text(folder / f"{ATLAS}.html", render_html(blocks, f"dydx atlas: {folder.name}"))
    return {f"{ATLAS}.md": folder / f"{ATLAS}.md", f"{ATLAS}.html": folder / f"{ATLAS}.html",
            f"{ATLAS}.csv": folder / f"{ATLAS}.csv"}
