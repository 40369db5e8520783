"""What the data show, in words: the findings of a sweep report, one sentence each."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from harness.analysis import tables as t
from harness.report.format import NOISY_MARK, fmt, fmt_ratio, is_missing, row_text
from harness.study.record import OK


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
        if is_missing(r["h_best"]):
            lines.append(f"{where}: no step gave a finite result at every point")
            continue
        text = f"{where}: best measured h = {fmt(r['h_best'], 2)} (max |err| {fmt(r['err_best'])})"
        if not is_missing(r["h_model"]):
            text += (f"; the model predicts h* = {fmt(r['h_model'], 2)} (max |err| "
                     f"{fmt(r['err_model'])}), {fmt(max(r['h_ratio'], 1 / r['h_ratio']), 2)}× apart")
        elif not is_missing(r["C"]) and r["C"] == 0:
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
            lines.append(f"{row_text(key)}: {best} is {fmt_ratio(ratio)} more accurate "
                         f"than autograd")
    for _, r in worst.iterrows():
        eps = torch.finfo(getattr(torch, str(r["dtype"]))).eps
        if not is_missing(r["max_rel_err"]) and r["max_rel_err"] > 100 * eps:
            lines.append(f"`{r['fn']}` {r['dtype']}: autograd's relative error reaches "
                         f"{fmt(r['max_rel_err'])} ({fmt(r['max_rel_err'] / eps)} eps) at x = "
                         f"{fmt(r['x_worst'], 6)}, where |f'| = {fmt(abs(r['df_ref_worst']))}")
    if not lines and not worst.empty:
        lines.append(f"autograd stays within {fmt(worst['max_ulp'].max())} ULP (max) and 100 eps "
                     f"relative error everywhere in this sweep")
    return lines


def slowdown_words(slow: pd.DataFrame) -> list[str]:
    """The per-point methods' slowdown, from trustworthy timings only (both sides)."""
    lines = []
    for method, group in slow.groupby("per_point_method", sort=False):
        trusted = group[group["trusted"].astype(bool)] if "trusted" in group else group
        left_out = len(group) - len(trusted)
        why = (f" ({left_out} configuration{'s' if left_out > 1 else ''} with untrustworthy "
               f"timing left out)" if left_out else "")
        if trusted.empty:
            lines.append(f"the per-point **{method}**: no trustworthy timing to compare with "
                         f"autograd{why}")
            continue
        s = trusted["slowdown"]
        spread = (f" (range {fmt_ratio(s.min())}–{fmt_ratio(s.max())}, {len(s)} configurations)"
                  if len(s) > 1 else "")
        lines.append(f"the per-point **{method}** is {fmt_ratio(s.median())} slower per point than "
                     f"vectorized autograd{spread}; it costs {fmt_ratio(trusted['per_point_cost'].median())} "
                     f"the forward pass against {fmt_ratio(trusted['autograd_cost'].median())} for "
                     f"autograd{why}")
    return lines


def context_words(records: pd.DataFrame, manifest: dict) -> list[str]:
    lines = []
    timed = t.timed(records)
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
    lines += noisy_words(timed)
    missing = t.missing_jobs(records, manifest.get("jobs") or [])
    if missing:
        lines.append(f"{len(missing)} of the {len(manifest['jobs'])} jobs of the sweep have no "
                     f"record yet (interrupted?); rerun the same command with "
                     f"hydra.sweep.dir=<this folder> to complete it")
    return lines


def noisy_words(timed: pd.DataFrame) -> list[str]:
    """How many timings cannot be trusted, and the commonest reasons (they are marked ‡
    and left out of every ratio quoted above)."""
    flagged = timed[t.untrusted(timed)]
    if flagged.empty:
        return []
    reasons = flagged.get("time_noisy_reason", pd.Series("", index=flagged.index))
    causes = reasons.fillna("").map(
        lambda r: ", ".join(sorted({c for c in map(_cause, r.split("; ")) if c})) or "noisy")
    counts = ", ".join(f"{n} {c}" for c, n in causes.value_counts().items())
    return [f"{len(flagged)} of {len(timed)} timings cannot be trusted ({counts}); they are "
            f"marked {NOISY_MARK} and left out of the ratios above"]


def _cause(reason: str) -> str:
    """The kind of a time_noisy_reason part: contended, drifting, imprecise, spread, ..."""
    for word, cause in (("contended", "contended"), ("drifting", "still drifting"),
                        ("warm-up too short", "warm-up too short"),
                        ("known only", "imprecise"), ("too few", "imprecise"),
                        ("IQR", "wide spread"),
                        ("disagree", "processes disagree"), ("load average", "")):
        if word in reason:
            return cause
    return "noisy" if reason else ""


def triage_words(table: pd.DataFrame) -> list[str]:
    bad = table[table.get("mismatch", 0) > 0] if "mismatch" in table else table.iloc[0:0]
    return [f"{row.fn} by {row.method} in {row.dtype}: {int(row.mismatch)} points disagree with the "
            f"reference for no known numerical reason (triage: mismatch)"
            for row in bad.itertuples(index=False)]


def consistency_words(table: pd.DataFrame) -> list[str]:
    """One sentence per row of consistency_table, for a report's findings."""
    lines = []
    for row in table.itertuples(index=False):
        agree = "agree bitwise" if row.bitwise_backward_vs_autograd else \
            f"differ by up to {row.max_abs_diff_backward_vs_autograd:.3g}"
        line = (f"{row.fn} ({row.dtype}, {row.device}, v={row.v_kind}"
                f"{', train mode' if row.train_mode else ''}): out.backward(v) and "
                f"torch.autograd.grad {agree}; forward mode within "
                f"{row.forward_mode_rel_diff:.2g} (relative); gradient-penalty check "
                f"{row.gp_rel_err:.2g}")
        if not pd.isna(row.finite_max_rel_err):
            line += f"; finite differences up to {row.finite_norm_rel_err:.2g} (norm-relative)"
        lines.append(line + ".")
    return lines


def findings(records: pd.DataFrame, folder: Path, manifest: dict, tables: dict) -> list[str]:
    words = []
    if "error_vs_best" in tables:
        words += best_per_dtype(tables["error_vs_best"], tables["accuracy"])
    if "stepsize" in tables:
        words += stepsize_summary(tables["stepsize"])
    worst = t.worst_relative_points(records, folder)
    words += autograd_words(tables.get("error_vs_best", pd.DataFrame()), worst)
    if "per_point_vs_autograd" in tables:
        words += slowdown_words(tables["per_point_vs_autograd"])
    if "network_consistency" in tables:
        words += consistency_words(tables["network_consistency"])
    if "triage" in tables:
        words += triage_words(tables["triage"])
    failed = records[records["status"] != OK]
    if len(failed):
        counts = ", ".join(f"{n} {s}" for s, n in failed["status"].value_counts().items())
        words.append(f"{len(failed)} jobs produced no numbers ({counts}); see Jobs without numbers")
    if t.duplicates(records):
        words.append(f"{t.duplicates(records)} records repeat a configuration; the latest "
                     f"of each is shown")
    return words + context_words(records, manifest)
