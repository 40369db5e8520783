"""harness.report.plots: the accuracy-throughput chart draws the Pareto front it names in
its legend, and its point labels neither overlap nor leave the axes."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from harness.report.plots import frontier_figure, pareto_front

# Twelve methods as a methods sweep places them: several near-ties in speed or error, two
# exact (drawn at eps/100), one slow per-point loop, two far off in error.
CROWD = pd.DataFrame({
    "variant": ["autograd", "backward", "vmap_grad", "forward_ad", "compiled", "loop",
                "complex_step", "finite", "stencil", "richardson", "scipy", "numdifftools"],
    "points_per_s": [1.7e7, 1.6e7, 1.5e7, 1.2e7, 2.5e7, 9e3, 1.1e7, 8e6, 3e6, 4e5, 2e5, 3e3],
    "norm_rel_err": [3e-8, 3e-8, 3.2e-8, 3e-8, 0.0, 3e-8, 6e-8, 2e-4, 1e-6, 0.0, 5e-8, 1e-7],
    "parallel": [False] * 11 + [True],
})


def crowd(*dtypes: str) -> pd.DataFrame:
    return pd.concat([CROWD.assign(dtype=d) for d in dtypes], ignore_index=True)


def test_pareto_front_keeps_the_points_nothing_beats_fastest_first():
    speed = np.array([10.0, 5.0, 8.0, 1.0, 9.0])
    error = np.array([1e-3, 1e-6, 1e-4, 1e-9, 1e-2])
    # 4 (9, 1e-2) is beaten by 0 (10, 1e-3): faster and more accurate.
    assert list(pareto_front(speed, error)) == [0, 2, 1, 3]


@pytest.mark.parametrize("dtypes", [("float32",), ("float32", "float64")])
def test_labels_neither_overlap_nor_leave_the_axes(dtypes):
    fig = frontier_figure(crowd(*dtypes))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        inside = ax.get_window_extent(renderer)
        boxes = [t.get_window_extent(renderer) for t in ax.texts]
        assert len(boxes) >= 8  # the near-ties share stacked labels, the rest their own
        for box in boxes:
            assert inside.x0 <= box.x0 and box.x1 <= inside.x1
            assert inside.y0 <= box.y0 and box.y1 <= inside.y1
        for a, b in itertools.combinations(boxes, 2):
            assert not a.overlaps(b), (a, b)
        shown = "\n".join(t.get_text() for t in ax.texts).split("\n")
        assert sorted(shown) == sorted(CROWD["variant"])  # every method named once


def test_the_front_in_the_legend_is_drawn_through_every_front_point():
    fig = frontier_figure(crowd("float64"))
    ax = fig.axes[0]
    assert any("Pareto front" in t.get_text() for t in fig.legends[0].get_texts())
    stairs = ax.lines[0]  # the edge of the dominated region, drawn first
    xs, ys = stairs.get_xdata(), stairs.get_ydata()
    eps = np.finfo(np.float64).eps
    err = np.maximum(CROWD["norm_rel_err"].to_numpy(), eps / 100)
    speed = CROWD["points_per_s"].to_numpy()
    front = pareto_front(speed, err)
    # compiled (fastest, exact) alone is the front: nothing is both faster and more accurate.
    assert list(CROWD["variant"][front]) == ["compiled"]
    vertices = set(zip(xs, ys))
    assert all((speed[i], err[i]) in vertices for i in front)
    # The line reaches the axes' top and left edges, so a one-point front is still seen.
    assert ys[0] == ax.get_ylim()[1] and xs[-1] == ax.get_xlim()[0]
    rings = ax.lines[1]
    assert list(rings.get_xdata()) == list(speed[front])
