"""Numbers and one-line summaries for people: the format every page and console line shares."""
from __future__ import annotations

import math

import numpy as np

from harness.study.timing import NOISY_IQR_OVER_MEDIAN


def fmt(value, digits: int = 3) -> str:
    """Numbers for people: 3 significant digits, '—' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}g}"
    return str(value)


def fmt_ratio(value) -> str:
    """Ratios for people: '1,580×' rather than '1.58e+03×'; exponents only past a million."""
    if is_missing(value):
        return "—"
    if value == math.inf:
        return "∞"
    if 100 <= value < 1e6:
        return f"{float(f'{value:.3g}'):,.0f}×"  # 3 significant digits, then thousands marks
    return f"{value:.3g}×"


# After a timing that cannot be trusted (time_noisy: its repeats spread too widely, or it
# was contended, ...; the reason is in time_noisy_reason). The sweep report's mark too.
NOISY_MARK = "‡"
# Quartiles of fewer timed blocks than this say nothing about the spread.
MIN_BLOCKS = 4


def fmt_spread(median_s, iqr_s, noisy=None, blocks=None) -> str:
    """A timing's spread, as torch.utils.benchmark's Compare shows it: '±1.5%' is half the
    interquartile range of the timed blocks relative to their median (the middle half of
    them lies about that close to it); ' !' follows when the timing is noisy (`noisy`, else
    IQR/median > 0.1); '±?' when there were fewer than MIN_BLOCKS blocks (`blocks`, or an
    IQR of exactly 0 when the count is not stored); '' when there is no timing."""
    if is_missing(median_s) or is_missing(iqr_s) or not median_s > 0:
        return ""
    if not spread_known(iqr_s, blocks):
        return "±?"
    noisy = timing_noisy(median_s, iqr_s, noisy)
    half = 50 * iqr_s / median_s  # percent
    percent = f"{half:.2g}" if half < 10 else f"{half:.0f}"  # '±0.44%', '±12%', '±610%'
    return f"±{percent}%" + (f" {NOISY_MARK}" if noisy else "")


def timing_noisy(median_s, iqr_s, flag=None) -> bool:
    """The record's time_noisy flag when it has one, else IQR/median > 0.1 (the threshold
    of torch.utils.benchmark, as the study applies it)."""
    if flag is not None and not is_missing(flag):
        return bool(flag)
    return not is_missing(median_s) and median_s > 0 and iqr_s / median_s > NOISY_IQR_OVER_MEDIAN


def spread_known(iqr_s, blocks=None) -> bool:
    """Whether an IQR says something: from MIN_BLOCKS timed blocks or more (when the count
    is stored; else an IQR of exactly 0 betrays a single block)."""
    return blocks >= MIN_BLOCKS if not is_missing(blocks) else iqr_s != 0


def is_missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def derivative_name(order) -> str:
    """f' for the first derivative, f'' for the second: what titles and legends call it."""
    return "f" + "'" * (1 if is_missing(order) else int(order))


def subject(record: dict) -> str:
    """The function, with the derivative's order when it is not the first: "gelu f''"."""
    order = record.get("order", 1)
    if is_missing(order) or int(order) == 1:
        return str(record["fn"])
    return f"{record['fn']} {derivative_name(order)}"


def summary_line(record: dict) -> str:
    """One human line: what ran, the error and the throughput (or why there are none)."""
    return (f"{subject(record)} | {record['method']} | {record['dtype']} | {record['device']} | "
            f"n={record['n']}: {headline(record)}")


# Counts the headline names whenever they are non-zero, and how it names them.
HEADLINE_COUNTS = (("n_wrong", "wrong (no correct digit)"),
                   ("n_reference_limited", "reference-limited"),
                   ("n_uncertified", "uncertified (excluded)"))


def accuracy_text(record: dict) -> str:
    """Error, ULPs, the relative pass rate, and every count that says a number is not
    what it seems: wrong points, reference-limited and uncertified ones, non-finite ones."""
    text = (f"max |err| {fmt(record['max_abs_err'])}, median {fmt(record['median_ulp'])} ULP, "
            f"max {fmt(record['max_ulp'])} ULP, "
            f"pass {_percent(record.get('rel_pass_rate'))} (rel ≤ {fmt(record.get('rtol'))})")
    for column, words in HEADLINE_COUNTS:
        if record.get(column):
            text += f", {record[column]} {words}"
    if record.get("n_nonfinite"):
        # The error statistics leave these out: say so, or a dead step looks perfect.
        text += f", {record['n_nonfinite']} of {record.get('n_checked')} points non-finite"
    return text


def _percent(share) -> str:
    return "—" if is_missing(share) else f"{fmt(100 * share, 4)}%"


def headline(record: dict) -> str:
    """The numbers of a run in one line: error, ULPs, pass rate, throughput."""
    if record.get("status", "ok") != "ok":
        return failure_line(record)
    speed = speed_text(record)
    return f"{accuracy_text(record)}; {speed}" if speed else accuracy_text(record)


def speed_text(record: dict) -> str:
    """Throughput, cost against the forward pass and threads; untrustworthy timing says so
    next to the numbers, with its reason ('' when the run was not timed)."""
    if is_missing(record.get("time_median_s")):
        return ""
    threads = record.get("num_threads")
    text = (f"{fmt(record['points_per_s'])} points/s, {fmt(record['cost_vs_forward'])}x the "
            f"forward pass")
    if not is_missing(threads):
        text += f" ({int(threads)} thread{'' if threads == 1 else 's'})"
    if record.get("time_noisy"):
        text += f" [timing not trustworthy: {record.get('time_noisy_reason') or 'noisy'}]"
    return text


def failure_line(record: dict) -> str:
    return f"status {record.get('status')}: {record.get('status_reason', '')}"


def index_cells(key) -> tuple[str, ...]:
    key = key if isinstance(key, tuple) else (key,)
    return tuple(fmt(k) for k in key)


def row_text(key) -> str:
    """A pivot row for prose: the function as code (it may be an expression), then the rest."""
    cells = index_cells(key)
    return " ".join((f"`{cells[0]}`",) + cells[1:])
