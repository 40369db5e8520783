"""One run's report and figures (harness.report.run_page, harness.report.plots): the
verdicts and the reference's backing in words; failures drawn as failures."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.report.plots import derivative_figure, error_figure
from harness.report.run_page import run_markdown
from support import user


def row(markdown: str, quantity: str) -> str:
    """The value cell of a `| quantity | value |` row."""
    (line,) = [l for l in markdown.splitlines() if l.startswith(f"| {quantity}")]
    return line.rsplit("|", 2)[1].strip()


def test_the_report_warns_of_points_with_no_correct_digit_and_says_what_backs_the_reference(run):
    record = run(*user("ZeroTailTanh"), "grid.start=-9", "grid.stop=9", "grid.n=100").record
    text = run_markdown({**record, "git_sha": "abc", "host": "h", "torch_version": "t"})
    assert "**44 points have no correct digit** (|err| >= |f'|" in text
    assert row(text, "wrong: no correct leading digit") == "44"
    reference = text.split("## Reference", 1)[1]
    assert row(reference, "engine") == "float64-richardson"
    assert row(reference, "what backs it").startswith("float64 Ridders extrapolation of f")
    assert float(row(reference, "largest uncertainty relative")) == \
        float(f"{record['reference_rel_bound_max']:.3g}")
    assert "**44 points disagree with the reference in a way that does not scale" in text


def test_a_second_derivative_report_says_f_double_prime(run):
    record = run("fn=sin", "method=stencil", "order=2", "grid.n=20").record
    text = run_markdown({**record, "git_sha": "abc", "host": "h", "torch_version": "t"})
    assert text.startswith("# sin f'' by stencil")
    assert row(text, "engine") == "arb"
    assert row(text, "points not certified") == "0"
    # The backing sentence holds "|f'|": escaped, so the table keeps two columns.
    assert row(text, "what backs it").endswith("(or &#124;f'&#124; <= 2^-1100), precision "
                                               "raised per point up to 4096 bits")


RECORD = {"fn": "sin", "method": "finite", "dtype": "float32", "device": "cpu", "order": 2,
          "reference": "arb", "scheme": "forward", "h": 1e-7}
# Five points: two plain errors, one exact, one with no correct digit, one nan result, and
# one reference-limited (Ridders-style uncertainty).
POINTS = pd.DataFrame({
    "x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
    "f": [0.0, 0.8, 0.9, 0.1, -0.8, -1.0],
    "df": [1e-3, 0.5, 0.4, -0.2, math.nan, 0.3],
    "df_ref": [1.1e-3, 0.5, 0.41, 0.1, 0.6, 0.3],
    "abs_err": [1e-4, 0.0, 1e-2, 0.3, math.nan, 1e-9],
    "excluded": [""] * 6,
    "verdict": ["inaccurate", "accurate", "inaccurate", "wrong", "nonfinite",
                "reference_limited"],
    "df_ref_uncertainty": [1e-12, 1e-12, 1e-12, 1e-12, 1e-12, 1e-8],
})


def labelled(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()
            if not line.get_label().startswith("_")}


def test_error_figure_draws_failures_as_failures_never_at_the_floor():
    ax = error_figure(POINTS, RECORD).axes[0]
    lines = labelled(ax)
    nan = lines["nan/inf result (1), marked at the top"]
    # Drawn in axes coordinates along the top edge (not at a small error on the data axis).
    assert list(nan.get_xdata()) == [4.0] and list(nan.get_ydata()) == [0.97]
    assert nan.get_transform() != ax.transData
    assert list(lines["no correct digit, |error| ≥ |f''| (1)"].get_xdata()) == [3.0]
    assert list(lines["within the reference's uncertainty (1)"].get_xdata()) == [5.0]
    exact = lines["|error| (1 exact, drawn at the bottom)"]
    assert list(exact.get_xdata()) == [0.0, 1.0, 2.0]
    assert min(exact.get_ydata()) == 1e-10  # the exact one, a decade under the least error
    assert "reference uncertainty" in lines
    assert ax.get_ylabel() == "|f''(x) - reference|"
    assert ax.get_title() == "sin f'' — finite, forward h=1e-07 — float32 on cpu"


def test_derivative_figure_names_the_order_and_marks_nan_results_at_the_top():
    ax = derivative_figure(POINTS, RECORD).axes[0]
    lines = labelled(ax)
    assert {"f(x)", "f''(x) reference (arb)", "f''(x) by finite",
            "no correct digit (1)", "nan/inf result (1), marked at the top"} <= set(lines)
    assert list(lines["nan/inf result (1), marked at the top"].get_ydata()) == [0.97]
    assert ax.get_ylabel() == "f(x), f''(x)"


def test_figures_of_points_tables_written_before_verdicts_still_draw():
    old = POINTS.drop(columns=["verdict", "df_ref_uncertainty"])
    lines = labelled(error_figure(old, RECORD).axes[0])
    assert "nan/inf result (1), marked at the top" in lines
    assert np.isfinite(lines["|error| (1 exact, drawn at the bottom)"].get_ydata()).all()
