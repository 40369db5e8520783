"""DataFrame -> matplotlib Figure. Plot functions never save: the report layer writes files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib import ticker
from matplotlib.figure import Figure

from harness.dtypes import DTYPES
from harness.report.format import derivative_name, subject

# An axis whose values span more decades than this (a binade or random grid over a dtype's
# whole range) is drawn in signed decades: matplotlib's symlog cannot span 1e-308..1e308.
WIDE_DECADES = 8


def _decades(values: np.ndarray) -> tuple[float, float] | None:
    """(floor, decades) of the finite nonzero |values|, or None when there are none."""
    magnitude = np.abs(values[np.isfinite(values) & (values != 0)])
    if magnitude.size == 0:
        return None
    lo, hi = magnitude.min(), magnitude.max()
    return lo, float(np.log10(hi) - np.log10(lo))


def signed_decades(values: np.ndarray, floor: float) -> np.ndarray:
    """sign(v) (1 + log10(|v| / floor)) for |v| >= floor, v / floor below (0 stays 0)."""
    v = np.asarray(values, dtype=np.float64)
    small = np.abs(v) < floor
    with np.errstate(divide="ignore", invalid="ignore"):  # log10(0) where small anyway
        big = np.sign(v) * (1 + np.log10(np.abs(v)) - np.log10(floor))
    with np.errstate(invalid="ignore"):  # nan stays nan
        return np.where(small, np.where(small, v, 0.0) / floor, big)


def wide_axis(ax, axis: str, points: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """points with `columns` in signed decades (and ticks on `axis` that say ±1e-k) when
    together they span more than WIDE_DECADES decades; else points as given."""
    values = np.concatenate([points[c].to_numpy(dtype=float) for c in columns])
    span = _decades(values)
    if span is None or span[1] <= WIDE_DECADES:
        return points
    low = int(np.floor(np.log10(span[0])))
    floor, top = 10.0 ** low, int(np.ceil(span[1])) + 1
    step = max(1, top // 4)
    ticks = [0.0] + [s * (1 + k) for k in range(step, top + 1, step) for s in (-1, 1)]
    labels = ["0"] + [f"{'-' if s < 0 else ''}1e{low + k:d}"
                      for k in range(step, top + 1, step) for s in (-1, 1)]
    getattr(ax, f"set_{axis}ticks")(ticks, labels, fontsize="x-small")
    return points.assign(**{c: signed_decades(points[c].to_numpy(dtype=float), floor)
                            for c in columns})


def log_ticks(ax, values: np.ndarray, eps: float) -> None:
    """Decade ticks chosen here, inside float64's range: matplotlib's own log locator
    steps past 1e308 (to inf) when errors span hundreds of decades."""
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.size == 0:
        return
    lo, hi = np.log10(max(finite.min(), 1e-323)), np.log10(max(finite.max(), eps))
    if hi - lo <= 2 * WIDE_DECADES:
        return
    step = max(1, int(np.ceil((hi - lo) / 8)))
    decades = range(int(np.floor(lo)), min(int(np.ceil(hi)), 307) + 1, step)
    ax.yaxis.set_major_locator(ticker.FixedLocator([10.0**k for k in decades]))
    ax.yaxis.set_minor_locator(ticker.NullLocator())


def _run_figure() -> tuple[Figure, object]:
    """A run's 8 x 4.5 in figure with fixed margins: a layout engine would draw every
    figure twice, and per-run plots are drawn for every job of a sweep."""
    fig = Figure(figsize=(8, 4.5))
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.11, top=0.92)
    return fig, fig.add_subplot()


def _plain_log_labels(axis) -> None:
    """'1e-16' instead of mathtext powers of ten: mathtext parsing dominated the cost of
    drawing an error plot (measured: ~40 % of it); minor ticks unlabelled."""
    axis.set_major_formatter(ticker.LogFormatter(labelOnlyBase=True))
    axis.set_minor_formatter(ticker.NullFormatter())


def _title(record: dict) -> str:
    step = f", {record['scheme']} h={record['h']:.3g}" if record.get("scheme") else ""
    return f"{subject(record)} — {record['method']}{step} — {record['dtype']} on {record['device']}"


def _run_title(ax, record: dict) -> None:
    # At a fixed height: placed automatically, matplotlib measures every tick label to see
    # whether the title must move up (measured: ~35 ms of a ~200 ms run figure), and a run
    # figure has no labels above its axes.
    ax.set_title(_title(record), y=1.0)


def _verdict(points: pd.DataFrame, name: str) -> np.ndarray:
    """Mask of points with that verdict (none, for points tables written before verdicts)."""
    if "verdict" not in points.columns:
        return np.zeros(len(points), dtype=bool)
    return (points["verdict"] == name).to_numpy()


def _at_top(ax, x, marker: str, label: str) -> None:
    """Failures drawn along the top edge of the axes, where nothing can mistake them for
    small values (x in data, y in axes coordinates)."""
    ax.plot(x, np.full(len(x), 0.97), marker, color="tab:red", ms=7, ls="",
            transform=ax.get_xaxis_transform(), clip_on=False, label=label)


def derivative_figure(points: pd.DataFrame, record: dict) -> Figure:
    """The tutorial's picture: f, the computed f' and the reference f' over x (f'' for a
    second-derivative study); nan/inf results and results with no correct digit marked."""
    d = derivative_name(record.get("order", 1))
    fig, ax = _run_figure()
    points = wide_axis(ax, "y", wide_axis(ax, "x", points, ["x"]), ["f", "df_ref", "df"])
    ax.plot(points["x"], points["f"], color="0.35", lw=1.5, label="f(x)")
    ax.plot(points["x"], points["df_ref"], color="tab:blue", lw=3, alpha=0.45,
            label=f"{d}(x) reference ({record['reference']})")
    ax.plot(points["x"], points["df"], color="tab:orange", lw=1, ls="--",
            label=f"{d}(x) by {record['method']}")
    excluded = points[points["excluded"] != ""]
    if len(excluded):
        ax.plot(excluded["x"], excluded["df"], "x", color="tab:red", ms=6,
                label=f"excluded ({len(excluded)})")
    wrong = points[_verdict(points, "wrong")]
    if len(wrong):
        ax.plot(wrong["x"], wrong["df"], "o", mfc="none", color="tab:red", ms=5,
                label=f"no correct digit ({len(wrong)})")
    bad = points[(points["excluded"] == "") & ~np.isfinite(points["df"])]
    if len(bad):
        _at_top(ax, bad["x"], "v", f"nan/inf result ({len(bad)}), marked at the top")
    ax.set_xlabel("x")
    ax.set_ylabel(f"f(x), {d}(x)")
    _run_title(ax, record)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


def error_figure(points: pd.DataFrame, record: dict) -> Figure:
    """|error| against x on a log scale, with the dtype's epsilon (and eps*|f'|) and the
    reference's uncertainty marked. Failures are drawn as failures: nan/inf results along
    the top edge, results with no correct digit in red; errors the reference cannot
    resolve in gray; exact results at the bottom, each with its count in the legend."""
    d = derivative_name(record.get("order", 1))
    fig, ax = _run_figure()
    used = wide_axis(ax, "x", points[points["excluded"] == ""], ["x"])
    err = used["abs_err"].to_numpy(dtype=float)
    finite = np.isfinite(used["df"].to_numpy(dtype=float)) & np.isfinite(err)
    positive = err[finite & (err > 0)]
    # Not below the smallest subnormal: a tail grid has errors of 5e-324, and 0 is no log.
    floor = max(positive.min() / 10, 5e-324) if positive.size else 1e-20
    shown = np.where(err > 0, err, floor)
    wrong, limited = _verdict(used, "wrong"), _verdict(used, "reference_limited")
    plain = finite & ~wrong & ~limited
    n_zero = int(np.sum(plain & (err == 0)))
    ax.semilogy(used["x"][plain], shown[plain], ".", ms=2, color="tab:orange",
                label=f"|error| ({n_zero} exact, drawn at the bottom)" if n_zero else "|error|")
    for mask, style, color, label in (
            (wrong, "o", "tab:red", f"no correct digit, |error| ≥ |{d}| ({int(wrong.sum())})"),
            (limited & finite, ".", "0.6",
             f"within the reference's uncertainty ({int(limited.sum())})")):
        if mask.any():
            ax.semilogy(used["x"][mask], shown[mask], style, ms=4, mfc="none", color=color,
                        label=label)
    if (~finite).any():
        _at_top(ax, used["x"][~finite], "x", f"nan/inf result ({int((~finite).sum())}), "
                                              f"marked at the top")
    _reference_band(ax, used, floor)
    eps = torch.finfo(DTYPES[record["dtype"]]).eps
    ax.axhline(eps, color="tab:green", ls="--", lw=1, label=f"eps({record['dtype']}) = {eps:.2e}")
    ax.semilogy(used["x"], np.maximum(eps * np.abs(used["df_ref"]), floor), color="tab:green",
                lw=0.8, alpha=0.6, label=f"eps·|{d}(x)| (one rounding of the result)")
    ax.set_xlabel("x")
    ax.set_ylabel(f"|{d}(x) - reference|")
    _plain_log_labels(ax.yaxis)
    log_ticks(ax, np.concatenate([shown, eps * np.abs(used["df_ref"].to_numpy(dtype=float))]), eps)
    _run_title(ax, record)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small")
    return fig


def _reference_band(ax, used: pd.DataFrame, floor: float) -> None:
    """The reference's own uncertainty (Arb's bound, Ridders' estimate), where it has one
    that shows on the axes."""
    if "df_ref_uncertainty" not in used.columns:
        return
    bound = used["df_ref_uncertainty"].to_numpy(dtype=float)
    if np.any(bound >= floor):
        ax.semilogy(used["x"], np.maximum(bound, floor), color="tab:purple", lw=0.8,
                    label="reference uncertainty")


# --- sweep figures ------------------------------------------------------------------------

SCHEME_COLORS = {"central": "tab:blue", "forward": "tab:orange", "backward": "tab:green"}
# Forward and backward errors often coincide (a symmetric grid, an odd or even f): distinct
# markers keep both visible where their lines overlap.
SCHEME_MARKERS = {"central": "o", "forward": "s", "backward": "^"}


def _panels(n: int, width: float = 5.6, height: float = 4.2) -> tuple[Figure, list]:
    fig = Figure(figsize=(width * n, height), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    return fig, list(axes)


def stepsize_figure(rows: pd.DataFrame, models: dict, best: pd.DataFrame, autograd: dict,
                    title: str) -> Figure:
    """The classic V: max |error| against h on log-log axes, one panel per dtype.

    rows: finite-difference records (dtype, scheme, h, max_abs_err, n_nonfinite) of one
    function; models: {(dtype, scheme): model with .error(h), .h_opt, .err_opt, .p} or None;
    best: the step-size table rows (dtype, scheme, h_best, err_best); autograd: {dtype: its
    max |error|} when the sweep has autograd rows. Steps where some x + h rounded back to x
    (non-finite quotients) are drawn hollow, never chosen as the measured best, and left
    out of the axis limits (their max |error| covers only the few points that survived).
    """
    dtypes = list(dict.fromkeys(rows["dtype"]))
    fig, axes = _panels(len(dtypes), height=4.6)
    schemes = [s for s in SCHEME_COLORS if s in set(rows["scheme"])]
    for ax, dtype in zip(axes, dtypes):
        _stepsize_panel(ax, rows[rows["dtype"] == dtype], dtype, schemes, models,
                        best[best["dtype"] == dtype], autograd.get(dtype))
    fig.legend(handles=_stepsize_legend(schemes, bool(autograd)), loc="outside lower center",
               ncol=4, fontsize="small", frameon=False)
    fig.suptitle(title)
    return fig


def _stepsize_legend(schemes: list[str], with_autograd: bool) -> list:
    from matplotlib.lines import Line2D

    gray = "0.35"
    handles = [Line2D([], [], color=SCHEME_COLORS[s], marker=SCHEME_MARKERS[s], ms=4,
                      mfc="none" if s == "forward" else SCHEME_COLORS[s], label=f"{s}: measured")
               for s in schemes]
    handles += [
        Line2D([], [], color=gray, ls="--", label="model C·h^p + eps·|f|/h (scheme's color)"),
        Line2D([], [], color=gray, ls="", marker="*", ms=12, mec="black", label="measured best h"),
        Line2D([], [], color=gray, ls="", marker="D", ms=7, mfc="white", label="predicted optimum h*"),
        Line2D([], [], color=gray, ls="", marker="x", ms=6,
               label="nan/inf at some points (x + h rounded to x), marked at the top"),
    ]
    if with_autograd:
        handles.append(Line2D([], [], color=gray, ls=":", lw=1.2, label="autograd max |error|"))
    return handles


def _stepsize_panel(ax, rows: pd.DataFrame, dtype: str, schemes: list[str], models: dict,
                    best: pd.DataFrame, autograd_err) -> None:
    h_all = rows["h"].to_numpy(dtype=float)
    h_line = np.logspace(np.log10(h_all.min()) - 0.3, np.log10(h_all.max()) + 0.3, 200)
    shown = []  # values that set the y-limits: clean measurements and optima
    for scheme in schemes:
        group = rows[rows["scheme"] == scheme].sort_values("h")
        color = SCHEME_COLORS[scheme]
        clean = group[group["n_nonfinite"] == 0]
        dirty = group[group["n_nonfinite"] > 0]
        marker = SCHEME_MARKERS.get(scheme, "o")
        ax.loglog(clean["h"], clean["max_abs_err"], "-", marker=marker, color=color, ms=4, lw=1,
                  mfc="none" if scheme == "forward" else color)
        ax.plot(dirty["h"], np.full(len(dirty), 0.97), "x", ms=6, color=color,
                transform=ax.get_xaxis_transform(), clip_on=False)
        shown += list(clean["max_abs_err"])
        model = models.get((dtype, scheme))
        if model is not None:
            ax.loglog(h_line, model.error(h_line), "--", color=color, lw=1, alpha=0.8)
            if np.isfinite(model.h_opt):
                ax.loglog([model.h_opt], [model.err_opt], "D", ms=7, mfc="white", color=color)
                shown.append(model.err_opt)
        chosen = best[best["scheme"] == scheme]
        if len(chosen) and np.isfinite(chosen["h_best"].iloc[0]):
            ax.loglog(chosen["h_best"], chosen["err_best"], "*", ms=13, color=color, mec="black")
    if autograd_err is not None and np.isfinite(autograd_err) and autograd_err > 0:
        ax.axhline(autograd_err, color="0.3", lw=1.2, ls=":")
        shown.append(autograd_err)
    shown = np.asarray(shown, dtype=float)
    shown = shown[np.isfinite(shown) & (shown > 0)]
    if shown.size:
        ax.set_ylim(shown.min() / 10, shown.max() * 10)
    ax.set_xlabel("step h")
    d = derivative_name(rows["order"].iloc[0] if "order" in rows.columns else 1)
    ax.set_ylabel(f"max |{d}(x) - reference| over the grid")
    ax.set_title(dtype)
    ax.grid(alpha=0.3, which="both")


def pareto_front(speed: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both speed (higher) and error (lower),
    fastest first."""
    order = np.argsort(-speed, kind="stable")
    front, best = [], np.inf
    for i in order:
        if error[i] < best:
            front.append(i)
            best = error[i]
    return np.array(front, dtype=int)


def _clusters(u: np.ndarray, v: np.ndarray, radius: float = 0.2) -> list[list[int]]:
    """Greedy groups of points within `radius` (in decades) of a group's first point, so
    methods that land on the same spot share one stacked label instead of overprinting."""
    groups: list[list[int]] = []
    for i in range(len(u)):
        for group in groups:
            j = group[0]
            if abs(u[i] - u[j]) <= radius and abs(v[i] - v[j]) <= radius:
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def _staircase(speed: np.ndarray, err: np.ndarray, front: np.ndarray, xlim, ylim):
    """The edge of the region the front dominates (slower and less accurate than some
    point of it), from the top of the axes down to the fastest point, then step by step to
    the most accurate one and out to the left edge: a visible line even for one point."""
    xs, ys = [speed[front[0]]], [ylim[1]]
    for k, i in enumerate(front):
        xs += [speed[i], speed[i]]
        ys += [err[front[k - 1]] if k else ylim[1], err[i]]
    xs.append(xlim[0])
    ys.append(err[front[-1]])
    return np.array(xs), np.array(ys)


# Label positions tried around a point, in points: right, left, above, below, then further.
LABEL_OFFSETS = [(dx * r, dy * r) for r in (1, 2.5, 4)
                 for dx, dy in ((6, 3), (6, -3), (-6, 3), (-6, -3), (0, 8), (0, -8))]


def _place_labels(ax, xy: list[tuple[float, float]], texts: list[str], renderer) -> None:
    """Annotate each point with its text at the first offset (LABEL_OFFSETS) where the
    label stays inside the axes and clear of the other labels and of every marker."""
    inside = ax.get_window_extent(renderer)
    taken = [_marker_box(ax, p) for p in xy]
    for point, text in zip(xy, texts):
        best = None
        for dx, dy in LABEL_OFFSETS:
            label = ax.annotate(text, point, xytext=(dx, dy), textcoords="offset points",
                                fontsize="x-small", ha="left" if dx > 0 else "right" if dx < 0
                                else "center", va="bottom" if dy > 0 else "top")
            box = label.get_window_extent(renderer)
            clash = _outside(box, inside) + sum(_overlap(box, other) for other in taken)
            if best is None or clash < best[0]:
                if best is not None:
                    best[1].remove()
                best = (clash, label, box)
            else:
                label.remove()
            if clash == 0:
                break
        taken.append(best[2])


def _marker_box(ax, point, radius: float = 8.0):
    from matplotlib.transforms import Bbox

    x, y = ax.transData.transform(point)
    return Bbox([[x - radius, y - radius], [x + radius, y + radius]])


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box, inside) -> float:
    """Area of `box` outside `inside` (times 10: a clipped label is worse than a close one)."""
    return 10 * (box.width * box.height - _overlap(box, inside))


def frontier_figure(points: pd.DataFrame) -> Figure:
    """Accuracy against throughput, one point per method variant, one panel per dtype.

    points: dtype, variant, points_per_s, norm_rel_err (medians over the sweep's functions),
    parallel. The Pareto front (nothing is both faster and more accurate) is drawn as the
    edge of the region it dominates, its points ringed; labels are placed clear of each
    other, of the markers and of the axes' edges.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    dtypes = list(dict.fromkeys(points["dtype"]))
    fig = Figure(figsize=(6.4 * len(dtypes), 5.4))
    renderer = FigureCanvasAgg(fig).get_renderer()  # labels are measured to be placed
    axes = fig.subplots(1, len(dtypes), squeeze=False)[0]
    # A fixed layout (no constrained layout moving the axes after the labels are placed);
    # the bottom band holds the legend, so it never covers a point or a label.
    fig.subplots_adjust(left=0.1 / len(dtypes) + 0.02, right=0.98, top=0.88, bottom=0.2,
                        wspace=0.28)
    for ax, dtype in zip(axes, dtypes):
        _frontier_panel(ax, points[points["dtype"] == dtype].reset_index(drop=True), dtype,
                        renderer)
    handles = _frontier_legend(points)
    fig.legend(handles=handles, loc="lower center", ncol=2 if len(dtypes) == 1 else len(handles),
               fontsize="small", frameon=False)
    fig.suptitle("Accuracy against throughput: lower right is better")
    return fig


def _frontier_panel(ax, sub: pd.DataFrame, dtype: str, renderer) -> None:
    eps = torch.finfo(DTYPES[dtype]).eps if dtype in DTYPES else 1e-16
    # Exact results (error 0) cannot sit on a log axis: draw them at eps/100.
    err = np.maximum(sub["norm_rel_err"].to_numpy(dtype=float), eps / 100)
    speed = sub["points_per_s"].to_numpy(dtype=float)
    hollow = sub["parallel"].fillna(False).astype(bool).to_numpy() \
        if "parallel" in sub.columns else np.zeros(len(sub), dtype=bool)
    ax.set_xscale("log")
    ax.set_yscale("log")
    xlim = (speed.min() / 10 ** 0.5, speed.max() * 10 ** 0.8)
    ylim = (min(err.min(), eps) / 10 ** 0.8, max(err.max(), eps) * 10 ** 0.8)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    front = pareto_front(speed, err)
    xs, ys = _staircase(speed, err, front, xlim, ylim)
    ax.fill(np.r_[xs, xlim[0]], np.r_[ys, ylim[1]], color="tab:blue", alpha=0.06, lw=0)
    ax.plot(xs, ys, "-", color="tab:blue", alpha=0.6, lw=1.2)
    ax.plot(speed[front], err[front], "o", ms=11, mfc="none", mec="tab:blue", mew=1.2)
    ax.plot(speed[~hollow], err[~hollow], "o", color="tab:blue")
    ax.plot(speed[hollow], err[hollow], "o", mfc="none", color="tab:red")
    ax.axhline(eps, color="tab:green", ls="--", lw=0.8)
    groups = _clusters(np.log10(speed), np.log10(err))
    _place_labels(ax, [(speed[g[0]], err[g[0]]) for g in groups],
                  ["\n".join(sub["variant"].iloc[j] for j in g) for g in groups], renderer)
    ax.set_xlabel("points / s (median over functions)")
    ax.set_ylabel("max |error| / max |f'| (median over functions)")
    ax.set_title(dtype)
    ax.grid(alpha=0.3, which="both")


def _frontier_legend(points: pd.DataFrame) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color="tab:blue", marker="o", ls="", label="timed serially")]
    if "parallel" in points.columns and points["parallel"].fillna(False).astype(bool).any():
        handles.append(Line2D([], [], color="tab:red", marker="o", mfc="none", ls="",
                              label="timed in parallel (contended)"))
    handles += [
        Line2D([], [], color="tab:blue", alpha=0.6, lw=1.2, marker="o", ms=11, mfc="none",
               label="Pareto front (none faster and more accurate)"),
        Patch(color="tab:blue", alpha=0.06, label="dominated by the front"),
        Line2D([], [], color="tab:green", ls="--", lw=0.8, label="eps of the dtype"),
    ]
    if (points["norm_rel_err"] == 0).any():
        handles.append(Line2D([], [], ls="", label="error 0 (exact): drawn at eps/100"))
    return handles


def scaling_figure(rows: pd.DataFrame, title: str) -> Figure:
    """Throughput and cost relative to the forward pass against grid size, log axes.

    rows: variant, dtype, n, points_per_s, cost_vs_forward, parallel. One line per
    variant (line style per dtype); hollow markers are timings taken in parallel.
    """
    fig, (left, right) = _panels(2, width=6.0, height=4.4)
    styles = ["-", "--", ":", "-."]
    dtypes = list(dict.fromkeys(rows["dtype"]))
    colors = {v: f"C{i % 10}" for i, v in enumerate(dict.fromkeys(rows["variant"]))}
    for (variant, dtype), group in rows.groupby(["variant", "dtype"], sort=False):
        group = group.sort_values("n")
        style = styles[dtypes.index(dtype) % len(styles)]
        label = variant if len(dtypes) == 1 else f"{variant} ({dtype})"
        parallel = group["parallel"].fillna(False).astype(bool).to_numpy() \
            if "parallel" in group.columns else np.zeros(len(group), dtype=bool)
        for ax, column in ((left, "points_per_s"), (right, "cost_vs_forward")):
            ax.loglog(group["n"], group[column], style, color=colors[variant], lw=1.2,
                      label=label if ax is left else None)
            ax.loglog(group["n"][~parallel], group[column][~parallel], "o", ms=4,
                      color=colors[variant])
            ax.loglog(group["n"][parallel], group[column][parallel], "o", ms=5, mfc="none",
                      color=colors[variant])
    left.set_ylabel("points / s")
    right.set_ylabel("time / time of the forward pass f(x)")
    for ax in (left, right):
        ax.set_xlabel("grid size n")
        ax.grid(alpha=0.3, which="both")
    left.legend(fontsize="x-small", loc="best")
    fig.suptitle(title)
    return fig
