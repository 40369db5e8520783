"""Compare two sets of results and gate regressions: `python -m harness.compare OLD NEW`.

OLD and NEW are runs, sweeps, parents of several, or stored tables (summary.parquet/.csv,
records.parquet/.csv, as copied from two commits or hosts). Configurations are matched on
what was studied: fn, method and its parameters, derivative order, dtype, device and grid
size. For each configuration in both: the accuracy and the time per call of each side,
the ratios NEW/OLD, and each timing's spread; then the configurations only one side has.

`--fail-if RULE` (repeatable) makes the comparison a gate, as pytest-benchmark's
--benchmark-compare-fail does: `max_ulp>1.5x` (NEW/OLD above 1.5), `time>1.2x` (time
per call, that is time_median_s), `n_wrong>0` (NEW's own value), any numeric record
column with >, >=, < or <=, and `missing` (a configuration of OLD has no record in NEW).
A timing rule fires only on timings that can be told from noise: neither side flagged
not trustworthy (time_noisy: noisy or contended), each from at least 4 timed blocks, and the two middle halves
(median ± IQR/2) apart; any other change is listed as a note, not failed. A configuration that had
numbers in OLD and fails in NEW (status error, unsupported, ...) always fails the gate.

Exit status: 0 no rule fired; 1 a rule fired (the offending rows are named); 2 the input
cannot be compared (a folder without runs, a rule that does not parse).
"""
from __future__ import annotations

import argparse
import json
import math
import operator
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import pandas as pd

from harness.analysis.tables import timed_blocks, variant_labels
from harness.atomic import atomic_write
from harness.errors import ConfigError
from harness.report.blocks import Table, render_text
from harness.report.format import (NOISY_MARK, fmt, fmt_ratio, fmt_spread, is_missing,
                                   spread_known, timing_noisy)
from harness.results import read_records
from harness.study.record import OK

# What identifies a configuration on both sides (method parameters as canonical JSON).
KEY = ("fn", "method", "params", "order", "dtype", "device", "n")
# Shown for every configuration; n_wrong joins them when either side has it.
ACCURACY = ("max_ulp", "max_abs_err", "median_ulp")
TIME = "time_median_s"
# Rule names that stand for a record column.
ALIASES = {"time": TIME}
# Columns that are the timer's median (or its inverse), whose ratio rules must clear the
# timing noise to fire.
TIMED = (TIME, "ns_per_point", "points_per_s")
OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
RULE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(>=|<=|>|<)\s*"
                  r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(x?)\s*$")
RULE_FORMS = ("a rule reads METRIC>VALUE (NEW's value, e.g. n_wrong>0), METRIC>VALUEx "
              "(NEW/OLD, e.g. max_ulp>1.5x, time>1.2x) with >, >=, < or <=, or 'missing'")

Source = Union[str, Path, pd.DataFrame]


@dataclass(frozen=True)
class Rule:
    text: str
    column: str
    op: str
    value: float
    ratio: bool

    def breaks(self, old: float, new: float) -> bool:
        """Whether NEW (or NEW/OLD) crosses the threshold; never for a missing number."""
        measured = ratio(old, new) if self.ratio else new
        return not is_missing(measured) and OPERATORS[self.op](measured, self.value)


MISSING = Rule("missing", "", "", math.nan, False)


def parse_rule(text: str) -> Rule:
    if text.strip() == "missing":
        return MISSING
    match = RULE.match(text)
    if not match:
        raise ConfigError(f"--fail-if {text!r}: {RULE_FORMS}")
    name, op, value, x = match.groups()
    return Rule(text.strip(), ALIASES.get(name, name), op, float(value), x == "x")


def ratio(old, new) -> float:
    """NEW/OLD; 1 when both are 0, inf when only OLD is; NaN when either is missing."""
    if is_missing(old) or is_missing(new):
        return math.nan
    if old == 0:
        return 1.0 if new == 0 else math.inf
    return float(new) / float(old)


# --- matching ------------------------------------------------------------------------------

def records_of(source) -> pd.DataFrame:
    """Records from a path (see harness.results.read_records), a DataFrame, or an API
    result (a SweepResult's summary, a RunResult's record)."""
    if isinstance(source, pd.DataFrame):
        return source
    if hasattr(source, "summary"):
        return source.summary
    if hasattr(source, "record"):
        return source.record.to_frame()
    try:
        return read_records(Path(source))
    except FileNotFoundError as err:
        raise ConfigError(str(err)) from None


def _canonical_params(text) -> str:
    if not isinstance(text, str) or not text:
        return ""
    return json.dumps(json.loads(text), sort_keys=True)


def keyed(records: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (the latest record of each), with its key columns."""
    frame = records.copy()
    frame["params"] = frame["method_params"].map(_canonical_params) \
        if "method_params" in frame.columns else ""
    for column in KEY:
        if column not in frame.columns:
            frame[column] = ""
    if "timestamp" in frame.columns:
        frame = frame.sort_values("timestamp", kind="stable")
    return frame.drop_duplicates(subset=list(KEY), keep="last").reset_index(drop=True)


def _labels(old: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Method labels with the parameters that vary across both sides ('finite h=0.001')."""
    both = pd.concat([old, new], ignore_index=True)
    labels = variant_labels(both) if len(both) else pd.Series(dtype=str)
    return labels.iloc[:len(old)].to_numpy(), labels.iloc[len(old):].to_numpy()


# --- the comparison ------------------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    """NEW against OLD: `table` (one row per configuration both have), `only_old`,
    `only_new`, `failures` (one line per offending row), `notes` (what the numbers cannot
    say), and `ok` (no rule fired)."""

    table: pd.DataFrame
    only_old: pd.DataFrame
    only_new: pd.DataFrame
    rules: tuple[Rule, ...]
    failures: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    names: tuple[str, str] = ("OLD", "NEW")

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def exit_status(self) -> int:
        return 0 if self.ok else 1

    def __str__(self) -> str:
        return render(self)


def comparison(old: Source, new: Source, fail_if: Sequence[str] = (),
               names: Optional[tuple[str, str]] = None) -> Comparison:
    """Compare NEW against OLD (paths, DataFrames of records, or API results); `fail_if`
    rules as on the command line. Raises ConfigError for input that cannot be compared."""
    rules = tuple(parse_rule(text) for text in fail_if)
    old_rows, new_rows = keyed(records_of(old)), keyed(records_of(new))
    _check_columns(rules, old_rows, new_rows)
    old_rows["label"], new_rows["label"] = _labels(old_rows, new_rows)
    merged = _side(old_rows, "_old").merge(_side(new_rows, "_new"), on=list(KEY), how="outer",
                                           indicator=True, sort=False)
    both = merged[merged["_merge"] == "both"].reset_index(drop=True)
    only_old = merged.loc[merged["_merge"] == "left_only", _shown(merged, "_old")]
    only_new = merged.loc[merged["_merge"] == "right_only", _shown(merged, "_new")]
    table = _table(both, rules)
    failures = [line for row in table.itertuples(index=False) for line in row.failures]
    if MISSING in rules and len(only_old):
        failures += [f"{_row_name(r)}: missing: no record in NEW"
                     for r in only_old.itertuples(index=False)]
    given = names or (_name(old, "OLD"), _name(new, "NEW"))
    return Comparison(table, only_old.reset_index(drop=True), only_new.reset_index(drop=True),
                      rules, tuple(failures), tuple(_notes(table, old_rows, new_rows)), given)


def _side(rows: pd.DataFrame, suffix: str) -> pd.DataFrame:
    """Every column but the key suffixed, even one the other side lacks (n_wrong in NEW
    only must still be NEW's)."""
    return rows.rename(columns={c: f"{c}{suffix}" for c in rows.columns if c not in KEY})


def _name(source, default: str) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return str(getattr(source, "folder", None) or default)


def _check_columns(rules: tuple[Rule, ...], old: pd.DataFrame, new: pd.DataFrame) -> None:
    numeric = sorted(c for c in new.columns if pd.api.types.is_numeric_dtype(new[c])
                     and not pd.api.types.is_bool_dtype(new[c]))
    for rule in rules:
        if rule is MISSING:
            continue
        sides = (old, new) if rule.ratio else (new,)
        if any(rule.column not in side.columns for side in sides):
            raise ConfigError(f"--fail-if {rule.text!r}: the records have no column "
                              f"{rule.column!r}; numeric columns: time (= {TIME}), "
                              f"{', '.join(numeric)}")


def _shown(merged: pd.DataFrame, suffix: str) -> list[str]:
    return [c for c in ("fn", "label" + suffix, "dtype", "device", "n", "order",
                        "status" + suffix) if c in merged.columns]


def _row_name(row) -> str:
    data = row._asdict() if hasattr(row, "_asdict") else dict(row)
    label = data.get("label") or data.get("label_old") or data.get("label_new")
    return " | ".join(str(v) for v in (data["fn"], label, data["dtype"]))


def _table(both: pd.DataFrame, rules: tuple[Rule, ...]) -> pd.DataFrame:
    """One row per configuration: each side's numbers, the ratios, what broke."""
    rows = []
    for _, r in both.iterrows():
        row = {k: r[k] for k in ("fn", "dtype", "device", "n", "order")}
        row["label"] = r["label_old"]
        row.update(status_old=r["status_old"], status_new=r["status_new"])
        for column in _compared(both):
            old, new = r.get(f"{column}_old", math.nan), r.get(f"{column}_new", math.nan)
            row.update({f"{column}_old": old, f"{column}_new": new,
                        f"{column}_ratio": ratio(old, new)})
        for side in ("old", "new"):
            row[f"time_iqr_s_{side}"] = r.get(f"time_iqr_s_{side}", math.nan)
            row[f"time_noisy_{side}"] = r.get(f"time_noisy_{side}", None)
            row[f"time_blocks_{side}"] = _side_blocks(r, side)
        row["failures"], row["within_noise"] = _verdict(r, rules)
        rows.append(row)
    return pd.DataFrame(rows, columns=_table_columns(both))


def _compared(frame: pd.DataFrame) -> list[str]:
    extra = ["n_wrong"] if any(c.startswith("n_wrong_") for c in frame.columns) else []
    return list(ACCURACY) + extra + [TIME]


def _table_columns(both: pd.DataFrame) -> list[str]:
    columns = ["fn", "label", "dtype", "device", "n", "order", "status_old", "status_new"]
    for column in _compared(both):
        columns += [f"{column}_old", f"{column}_new", f"{column}_ratio"]
    return columns + [f"{c}_{side}" for side in ("old", "new")
                      for c in ("time_iqr_s", "time_noisy", "time_blocks")] + \
        ["failures", "within_noise"]



def _verdict(r: pd.Series, rules: tuple[Rule, ...]) -> tuple[list[str], list[str]]:
    """(what fails the gate, what crossed a threshold inside the timing noise) for one row."""
    name = _row_name({"fn": r["fn"], "label": r["label_old"], "dtype": r["dtype"]})
    if r["status_old"] == OK and r["status_new"] != OK:
        reason = r.get("status_reason_new", "")
        return [f"{name}: status ok → {r['status_new']}: {reason}"], []
    if r["status_old"] != OK or r["status_new"] != OK:
        return [], []
    failures, noise = [], []
    for rule in rules:
        if rule is MISSING:
            continue
        old, new = r.get(f"{rule.column}_old", math.nan), r.get(f"{rule.column}_new", math.nan)
        if not rule.breaks(old, new):
            continue
        said = f"{name}: {rule.text}: {rule.column} {fmt(old)} → {fmt(new)} " \
               f"({fmt_ratio(ratio(old, new))})"
        doubt = _timing_doubt(r) if rule.column in TIMED and rule.ratio else None
        if doubt:
            noise.append(f"{said}, not counted: {doubt}")
        else:
            failures.append(said)
    return failures, noise


def _side_blocks(r: pd.Series, side: str) -> float:
    """timed_blocks of one side of a merged row (its columns carry the side's suffix)."""
    return timed_blocks({c: r.get(f"{c}_{side}") for c in
                         ("n_blocks", "n_blocks_stalled", "raw_times_s")})


def _timing_doubt(r: pd.Series) -> Optional[str]:
    """Why a change in time per call cannot be told from noise (None: it can). A side
    whose timing is noisy, or whose spread comes from too few timed blocks, cannot gate;
    otherwise the two middle halves (median ± IQR/2) must not overlap."""
    old, new = (r.get(f"{TIME}_{s}", math.nan) for s in ("old", "new"))
    old_iqr, new_iqr = (r.get(f"time_iqr_s_{s}", math.nan) for s in ("old", "new"))
    if any(is_missing(v) for v in (old_iqr, new_iqr)):
        return None  # no spread stored at all: the threshold alone decides
    if not all(spread_known(iqr, _side_blocks(r, s))
               for iqr, s in ((old_iqr, "old"), (new_iqr, "new"))):
        return ("a side has fewer than 4 timed blocks, no spread to tell it from noise "
                "(time it longer: timing.min_run_time)")
    if any(timing_noisy(r.get(f"{TIME}_{s}"), r.get(f"time_iqr_s_{s}"), r.get(f"time_noisy_{s}"))
           for s in ("old", "new")):
        return ("a side's timing is not trustworthy (time_noisy: noisy or contended); rerun "
                "on a quieter machine")
    if new - new_iqr / 2 <= old + old_iqr / 2 and new + new_iqr / 2 >= old - old_iqr / 2:
        return "inside the timing noise (the two middle halves overlap)"
    return None


def _notes(table: pd.DataFrame, old: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    notes = [line for lines in table["within_noise"] for line in lines] if len(table) else []
    hosts = [sorted(set(side["host"].dropna().astype(str))) if "host" in side else []
             for side in (old, new)]
    if hosts[0] and hosts[1] and hosts[0] != hosts[1]:
        notes.append(f"timings come from different hosts ({', '.join(hosts[0])} against "
                     f"{', '.join(hosts[1])}): their ratios measure the machines as well as "
                     f"the code")
    noisy = sum(timing_noisy(r[f"{TIME}_{side}"], r[f"time_iqr_s_{side}"], r[f"time_noisy_{side}"])
                for _, r in table.iterrows() for side in ("old", "new"))
    if noisy:
        notes.append(f"{noisy} timings are not trustworthy (marked {NOISY_MARK}: noisy or "
                     f"contended, see time_noisy_reason); rerun them "
                     f"on a quieter machine before trusting their ratios")
    return notes


# --- text ----------------------------------------------------------------------------------

def _time_cell(row: pd.Series, side: str) -> str:
    median = row[f"{TIME}_{side}"]
    if is_missing(median):
        return "—"
    spread = fmt_spread(median, *(row[f"{c}_{side}"] for c in
                                  ("time_iqr_s", "time_noisy", "time_blocks")))
    return f"{fmt(median)} s {spread}".strip()


def comparison_table(c: Comparison) -> Table:
    """The per-configuration table: each side's numbers and NEW/OLD."""
    extra = ["n_wrong"] if "n_wrong_old" in c.table.columns else []
    header = ("fn", "method", "dtype", "max ULP", "×", "max |err|", "×",
              *(f"{m} old → new" for m in extra), "time/call old", "time/call new", "×",
              "verdict")
    rows = []
    for _, r in c.table.iterrows():
        cells = [str(r["fn"]), str(r["label"]), str(r["dtype"])]
        if r["status_old"] != OK or r["status_new"] != OK:
            cells += [f"status {r['status_old']} → {r['status_new']}"] + [""] * (len(header) - 5)
        else:
            for m in ("max_ulp", "max_abs_err"):
                cells += [f"{fmt(r[f'{m}_old'])} → {fmt(r[f'{m}_new'])}", fmt_ratio(r[f"{m}_ratio"])]
            cells += [f"{fmt(r[f'{m}_old'])} → {fmt(r[f'{m}_new'])}" for m in extra]
            cells += [_time_cell(r, "old"), _time_cell(r, "new"), fmt_ratio(r[f"{TIME}_ratio"])]
        cells.append("FAIL" if r["failures"] else ("noise" if r["within_noise"] else ""))
        rows.append(tuple(cells))
    note = ("×: NEW/OLD (above 1: larger error or slower). time/call: median per call ± half "
            f"its IQR relative to the median; {NOISY_MARK} not trustworthy (time_noisy); ±? too "
            "few timed blocks for a spread. noise: a timing rule crossed its threshold but "
            "the change cannot be told from noise (see the notes), so it did not fire.")
    return Table(header, tuple(rows), note)


def _listing(title: str, frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return []
    return [f"{title} ({len(frame)}):"] + [f"  {_row_name(r)}" for r in frame.itertuples(index=False)]


def render(c: Comparison) -> str:
    lines = [f"dydx compare: {c.names[1]} (NEW) against {c.names[0]} (OLD): "
             f"{len(c.table)} configurations in both, {len(c.only_old)} only in OLD, "
             f"{len(c.only_new)} only in NEW", ""]
    if len(c.table):
        lines += [render_text(comparison_table(c)), ""]
    lines += _listing("only in OLD", c.only_old) + _listing("only in NEW", c.only_new)
    lines += [f"note: {n}" for n in c.notes]
    rules = ", ".join(r.text for r in c.rules) or "none"
    if c.failures:
        lines += [f"FAIL: {len(c.failures)} breaches of the rules ({rules}; a configuration "
                  f"that fails only in NEW always counts):"]
        lines += [f"  {line}" for line in c.failures]
    else:
        doubtful = sum(len(n) for n in c.table["within_noise"]) if len(c.table) else 0
        lines.append(f"PASS: no rule fired (rules: {rules}; a configuration that failed only "
                     f"in NEW would fail too)" + (
                         f"; {doubtful} timing changes past a threshold could not be told "
                         f"from noise (notes above)" if doubtful else ""))
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.compare",
        description="Compare NEW results against OLD per configuration, and gate regressions "
                    "(exit 1 when a --fail-if rule fires, 2 for input that cannot be compared).")
    parser.add_argument("old", help="a run or sweep folder, a parent of several, or a stored "
                                    "summary.parquet/.csv")
    parser.add_argument("new", help="the same, for the results under test")
    parser.add_argument("--fail-if", action="append", default=[], metavar="RULE",
                        help="max_ulp>1.5x (NEW/OLD), time>1.2x, n_wrong>0 (NEW's value), "
                             "any numeric record column with > >= < <=, or missing; repeatable")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="also write the table as CSV")
    args = parser.parse_args(argv)
    try:
        result = comparison(args.old, args.new, args.fail_if, names=(args.old, args.new))
    except ConfigError as err:
        print(f"dydx: error: {err}", file=sys.stderr)
        return 2
    print(result)
    if args.csv:
        table = result.table.drop(columns=["failures", "within_noise"])
        atomic_write(args.csv, lambda tmp: table.to_csv(tmp, index=False))
    return result.exit_status


if __name__ == "__main__":
    raise SystemExit(main())
