"""`python run.py ...` end to end, through a subprocess: the README commands (bad input:
tests/test_bad_input.py, in process, with a subset as real subprocesses).

Every subprocess pays ~5-10 s of Python start-up (torch, Hydra, sympy, matplotlib), so the
commands run two at a time in module fixtures and the tests inspect what they left.
Numbers in the records are checked against an independent mpmath computation.
"""
from __future__ import annotations

import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
RUN_FILES = {"records.csv", "records.parquet", "points.csv", "points.parquet", "derivative.png",
             "error.png", "report.md", "config.yaml"}
EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
# The tutorial's grid, np.arange(-10, 10, 0.01): the default of every command below.
TUTORIAL_X = np.arange(-10.0, 10.0, 0.01)

# The README commands (issue 2), by name. fn.expr is one argv item, as the shell passes it.
README = {
    "default": [],
    "sin_finite_f64": ["fn=sin", "method=finite", "dtype=float64"],
    "sin_forward_f32": ["fn=sin", "method=finite", "method.scheme=forward", "method.h=1e-7",
                        "dtype=float32"],
    "tanh_loop_f32": ["fn=tanh", "method=loop", "dtype=float32"],
    "nn_gelu": ["fn=nn", "fn.name=GELU", "method=autograd"],
    "expr": ["fn=expr", 'fn.expr="x**2*sin(x)"', "method=autograd"],
    "relu_100k": ["fn=relu", "method=finite", "grid.n=100000"],
}


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    out_root: Path

    def run_dir(self) -> Path:
        (folder,) = (self.out_root / "runs").iterdir()
        return folder

    def record(self) -> pd.Series:
        records = pd.read_csv(self.run_dir() / "records.csv", keep_default_na=False,
                              na_values=[""])
        assert len(records) == 1
        return records.iloc[0]

    def points(self) -> pd.DataFrame:
        return pd.read_parquet(self.run_dir() / "points.parquet")


def run_cli(args: list[str], out_root: Path, cache: Path) -> Result:
    command = [sys.executable, "run.py", *args, f"out_root={out_root}",
               f"reference.cache_dir={cache}", "timing.min_run_time=0.05",
               "timing.max_run_time=0.25"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return Result(done.returncode, done.stdout, done.stderr, out_root)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-reference-cache")


@pytest.fixture(scope="module")
def readme_runs(tmp_path_factory, cache) -> dict[str, Result]:
    base = tmp_path_factory.mktemp("readme")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_cli, args, base / name, cache)
                   for name, args in README.items()}
        return {name: future.result() for name, future in futures.items()}


# --- every README command makes a complete run folder ------------------------------------------

@pytest.mark.parametrize("name", README)
def test_readme_command_exits_0_and_writes_a_complete_run_folder(readme_runs, name):
    result = readme_runs[name]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    folder = result.run_dir()
    assert RUN_FILES <= {p.name for p in folder.iterdir()}
    for png in ("derivative.png", "error.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.stdout.rstrip().endswith(f"results: {folder}")


@pytest.mark.parametrize("name, fn, source, method, dtype", [
    ("default", "sin", "builtin", "autograd", "float64"),
    ("sin_finite_f64", "sin", "builtin", "finite", "float64"),
    ("sin_forward_f32", "sin", "builtin", "finite", "float32"),
    ("tanh_loop_f32", "tanh", "builtin", "loop", "float32"),
    ("nn_gelu", "nn.GELU", "nn", "autograd", "float64"),
    ("expr", "x**2*sin(x)", "expr", "autograd", "float64"),
    ("relu_100k", "relu", "builtin", "finite", "float64"),
])
def test_record_names_what_ran(readme_runs, name, fn, source, method, dtype):
    r = readme_runs[name].record()
    assert (r["fn"], r["fn_source"], r["method"], r["dtype"]) == (fn, source, method, dtype)
    # A torch.nn module with a symbolic twin (GELU) is checked against the certified one.
    assert (r["status"], r["device"], r["reference"]) == ("ok", "cpu", "arb")


@pytest.mark.parametrize("name, scheme, h, h_mode", [
    ("sin_finite_f64", "central", EPS64 ** (1 / 3), "auto: eps^(1/3)*max(1,|x|)"),
    ("sin_forward_f32", "forward", 1e-7, "absolute"),
    ("relu_100k", "central", EPS64 ** (1 / 3), "auto: eps^(1/3)*max(1,|x|)"),
])
def test_finite_difference_record_states_its_step(readme_runs, name, scheme, h, h_mode):
    r = readme_runs[name].record()
    assert (r["scheme"], r["h"], r["h_mode"]) == (scheme, h, h_mode)


@pytest.mark.parametrize("name", ["default", "tanh_loop_f32", "nn_gelu", "expr"])
def test_ad_record_has_no_step(readme_runs, name):
    r = readme_runs[name].record()
    assert pd.isna(r["scheme"]) and math.isnan(r["h"]) and pd.isna(r["h_mode"])


def test_default_grid_is_the_tutorials_arange(readme_runs):
    r, points = readme_runs["default"].record(), readme_runs["default"].points()
    assert (r["n"], r["n_checked"]) == (2000, 2000)
    assert (r["x_min"], r["x_max"]) == (-10.0, TUTORIAL_X[-1])
    np.testing.assert_array_equal(points["x"], TUTORIAL_X)


def test_large_grid_is_checked_on_an_even_subsample_with_both_ends(readme_runs):
    r, points = readme_runs["relu_100k"].record(), readme_runs["relu_100k"].points()
    assert (r["n"], r["n_checked"], r["x_min"], r["x_max"]) == (100000, 20000, -10.0, 10.0)
    index = np.unique(np.linspace(0, 99999, 20000).round().astype(np.int64))
    np.testing.assert_array_equal(points["index"], index)
    np.testing.assert_array_equal(points["x"], np.linspace(-10, 10, 100000)[index])


def test_config_yaml_is_the_resolved_config_of_the_run(readme_runs):
    result = readme_runs["sin_forward_f32"]
    cfg = OmegaConf.load(result.run_dir() / "config.yaml")
    assert (cfg.fn.name, cfg.method.name, cfg.method.scheme, cfg.method.h, cfg.dtype.name) == \
        ("sin", "finite", "forward", 1e-7, "float32")
    assert cfg.out_root == str(result.out_root)
    assert cfg.timing.min_run_time == 0.05


def test_report_md_heads_with_the_function_and_method(readme_runs):
    report = (readme_runs["sin_finite_f64"].run_dir() / "report.md").read_text()
    assert report.startswith("# sin by finite")
    assert "![f and f'](derivative.png)" in report and "![error](error.png)" in report


def test_raw_times_are_in_the_parquet_and_give_the_median_of_undisturbed_blocks(readme_runs):
    folder = readme_runs["default"].run_dir()
    assert "raw_times_s" not in pd.read_csv(folder / "records.csv").columns
    record = pd.read_parquet(folder / "records.parquet").iloc[0]
    raw = np.asarray(record["raw_times_s"])
    stalled = np.asarray(record["raw_times_stalled"], dtype=bool)
    assert raw.size >= 1 and np.all(raw > 0) and stalled.shape == raw.shape
    # The statistics leave out blocks that waited for a CPU (all of them count when
    # every block did, and the record then says it was contended).
    used = raw[~stalled] if (~stalled).any() else raw
    assert record["time_median_s"] == pytest.approx(np.median(used), rel=1e-12)
    assert record["time_min_s"] == used.min()
    assert record["n_timed"] == 2000 and record["n_blocks"] == raw.size
    assert record["n_blocks_stalled"] == stalled.sum()


# --- the numbers agree with an independent high-precision computation -------------------------

def exact(fn, xs: np.ndarray) -> np.ndarray:
    """fn at the exact float values xs, at 40 digits, rounded once to float64."""
    with mpmath.workdps(40):
        return np.array([float(fn(mpmath.mpf(float(v)))) for v in xs])


def errors_vs(points: pd.DataFrame, derivative) -> np.ndarray:
    """|df - f'(x)| with f' from mpmath at 40 digits (difference taken at 40 digits)."""
    with mpmath.workdps(40):
        return np.array([float(abs(mpmath.mpf(float(d)) - derivative(mpmath.mpf(float(v)))))
                         for v, d in zip(points["x"], points["df"])])


def gelu_prime(v):
    return mpmath.ncdf(v) + v * mpmath.npdf(v)


@pytest.mark.parametrize("name, derivative", [
    ("default", mpmath.cos),
    ("sin_finite_f64", mpmath.cos),
    ("tanh_loop_f32", lambda v: mpmath.sech(v) ** 2),
    ("nn_gelu", gelu_prime),
    ("expr", lambda v: 2 * v * mpmath.sin(v) + v**2 * mpmath.cos(v)),
])
def test_max_abs_err_matches_an_independent_mpmath_recomputation(readme_runs, name, derivative):
    result = readme_runs[name]
    points = result.points()
    assert (points["excluded"] == "").all()
    assert result.record()["max_abs_err"] == pytest.approx(
        errors_vs(points, derivative).max(), rel=1e-9)


def test_points_table_holds_f_and_the_double_double_reference(readme_runs):
    points = readme_runs["default"].points()
    x = points["x"].to_numpy()
    sin, cos = exact(mpmath.sin, x), exact(mpmath.cos, x)
    assert np.all(np.abs(points["f"] - sin) <= np.spacing(np.abs(sin)))
    np.testing.assert_array_equal(points["df_ref"], cos)
    with mpmath.workdps(40):
        rest = [float(mpmath.cos(mpmath.mpf(v)) - mpmath.mpf(c)) for v, c in zip(x, cos)]
    np.testing.assert_array_equal(points["df_ref_lo"], rest)


def test_default_autograd_of_sin_is_within_one_ulp_everywhere(readme_runs):
    points = readme_runs["default"].points()
    truth = exact(mpmath.cos, points["x"].to_numpy())
    assert np.all(np.abs(points["df"] - truth) <= np.spacing(np.abs(truth)))
    assert readme_runs["default"].record()["max_ulp"] <= 1.0


def test_finite_difference_values_are_the_central_quotient_of_f_itself(readme_runs):
    points = readme_runs["sin_finite_f64"].points()
    x, df = points["x"].to_numpy(), points["df"].to_numpy()
    h = EPS64 ** (1 / 3) * np.maximum(1.0, np.abs(x))
    step = (x + h) - x
    quotient = (np.sin(x + step) - np.sin(x - step)) / (2 * step)
    # Same formula, independent float64 arithmetic: agreement to the rounding of f's values.
    assert np.all(np.abs(df - quotient) <= 4 * EPS64 / step)
    # And the error is the method's own: truncation step^2/6 |cos| plus rounding.
    assert np.all(np.abs(df - exact(mpmath.cos, x)) <= step**2 / 6 + 4 * EPS64 / step)
    # Not the tutorial's f(sin(x)) by mistake: cos(sin x) cos x is up to 0.18 away.
    assert np.max(np.abs(df - np.cos(np.sin(x)) * np.cos(x))) > 0.15


def test_forward_step_below_float32_resolution_is_counted_non_finite(readme_runs):
    result = readme_runs["sin_forward_f32"]
    points, r = result.points(), result.record()
    x32 = points["x"].to_numpy().astype(np.float32)
    rounds_away = (x32 + np.float32(1e-7)) == x32           # x + h == x in float32
    assert 0 < rounds_away.sum() < len(x32)
    np.testing.assert_array_equal(~np.isfinite(points["df"].to_numpy()), rounds_away)
    assert r["n_nonfinite"] == rounds_away.sum()
    finite = points[~rounds_away]
    assert r["max_abs_err"] == pytest.approx(errors_vs(finite, mpmath.cos).max(), rel=1e-9)
    assert r["assert_close_rate"] == pytest.approx(
        (finite["abs_err"] <= 1e-5 + 1.3e-6 * finite["df_ref"].abs()).sum() / len(points),
        rel=1e-12)
    # The headline rate is relative: the non-finite points fail it too.
    assert r["rel_pass_rate"] == pytest.approx(
        (finite["abs_err"] <= 1.3e-6 * finite["df_ref"].abs()).sum() / len(points), rel=1e-12)


def test_loop_in_float32_is_within_a_few_ulps_at_the_float32_x(readme_runs):
    points = readme_runs["tanh_loop_f32"].points()
    x = points["x"].to_numpy()
    assert np.array_equal(x, x.astype(np.float32).astype(np.float64))
    truth = exact(lambda v: mpmath.sech(v) ** 2, x)
    assert np.all(np.abs(points["df"] - truth) <= 16 * EPS32 * np.maximum(truth, 1.0))


def test_relu_difference_quotient_is_exact_off_the_kink(readme_runs):
    result = readme_runs["relu_100k"]
    points, r = result.points(), result.record()
    np.testing.assert_array_equal(points["df"], (points["x"] > 0).astype(float))
    assert (r["max_abs_err"], r["n_excluded"], r["n_nonfinite"]) == (0.0, 0, 0)
