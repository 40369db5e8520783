"""harness.api, the Python API: a callable studied directly, the same flow as the command
line, nothing written unless asked, one exception type with the command line's messages,
sweeps, and stored runs and sweeps loaded back. Studies here are small (a few hundred
points, timing off unless a test is about it)."""
from __future__ import annotations

import math
import subprocess
import sys
import time

import mpmath
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

import harness as dydx
from harness.api import ConfigError, DydxError, Record, RunResult, SweepResult
from harness.claims import Claim
from harness.results import load_record
from support import FUNCTION_NAMES, ROOT, run_py

SMALL = dict(grid=dict(start=0, stop=10, n=101), timing=False)


def erfcx_derivative(x: float) -> float:
    """erfcx'(x) = 2 x erfcx(x) - 2/sqrt(pi), in 40-digit mpmath (independent of dydx)."""
    with mpmath.workdps(40):
        x = mpmath.mpf(x)
        return float(2 * x * mpmath.exp(x * x) * mpmath.erfc(x) - 2 / mpmath.sqrt(mpmath.pi))


@pytest.fixture(scope="module")
def erfcx():
    return dydx.study(torch.special.erfcx, method="autograd", dtype="float64", quiet=True,
                      **SMALL)


def test_a_callable_is_studied_directly_against_an_independent_reference(erfcx):
    truth = np.array([erfcx_derivative(x) for x in erfcx.points["x"]])
    points = erfcx.points
    # The reference (float64 Ridders of the forward) is within its own stated uncertainty.
    assert np.all(np.abs(points["df_ref"] - truth) <= points["df_ref_uncertainty"] + 1e-15)
    # The record's error is the method's error against the truth, up to that uncertainty.
    assert erfcx.record.max_abs_err == pytest.approx(
        np.max(np.abs(points["df"] - truth)), abs=points["df_ref_uncertainty"].max() + 1e-15)
    assert (erfcx.record.fn, erfcx.record.reference, erfcx.record.n) == \
        ("special_erfcx", "float64-richardson", 101)
    assert erfcx.record.columns["fn_source"] == "py"


def test_a_callables_trusted_derivative_is_its_reference():
    def df(x):
        return 2 * x * torch.special.erfcx(x) - 2 / math.sqrt(math.pi)

    r = dydx.study(torch.special.erfcx, method="finite", derivative=df, name="erfcx",
                   quiet=True, **SMALL)
    x = torch.tensor(r.points["x"].to_numpy())
    assert r.record.reference == "user-derivative" and r.record.fn == "erfcx"
    assert np.array_equal(r.points["df_ref"].to_numpy(), df(x).numpy())


def test_the_record_is_typed_and_to_frame_is_the_full_row(erfcx):
    record = erfcx.record
    assert isinstance(record, Record) and record.ok and record.status == "ok"
    assert isinstance(record.max_abs_err, float) and isinstance(record.n, int)
    assert math.isnan(record.points_per_s)  # timing off: no throughput, said as NaN
    # float64 autograd is closer to the truth than the Ridders reference can tell: every
    # point is reference-limited, so there are no ULPs to show, and nothing is wrong.
    assert (record.n_reference_limited, record.n_wrong) == (101, 0)
    assert math.isnan(record.max_ulp) and math.isnan(record.rel_pass_rate)
    frame = record.to_frame()
    assert frame.shape[0] == 1 and frame["max_abs_err"].iloc[0] == record.max_abs_err
    assert record.n_checked == 101 == frame["n_checked"].iloc[0]  # any column, as an attribute
    with pytest.raises(AttributeError, match="the record has no column 'no_such'"):
        record.no_such


def test_plot_returns_the_runs_two_figures(erfcx):
    figures = erfcx.plot()
    assert len(figures) == 2 and all(isinstance(f, Figure) for f in figures)
    assert figures[1].axes[0].get_yscale() == "log"


def test_a_builtin_gives_the_same_numbers_as_the_command_lines_flow(run):
    by_api = dydx.study("tanh", method="finite", dtype="float32", quiet=True,
                        grid=dict(n=400), timing=False).record
    by_cli = run("fn=tanh", "method=finite", "dtype=float32", "grid.n=400").record
    for column in ("max_abs_err", "median_ulp", "max_ulp", "rel_pass_rate", "n_wrong",
                   "n_checked"):
        assert by_api.columns[column] == by_cli[column], column


def test_expressions_nn_classes_and_method_parameters(run):
    expr = dydx.study("x**2*sin(x)", method="finite", params=dict(scheme="forward", h=1e-3),
                      quiet=True, **SMALL).record
    assert (expr.fn, expr.columns["scheme"], expr.columns["h"]) == ("x**2*sin(x)", "forward", 1e-3)
    # The forward difference's error is h/2 |f''| to leading order: with h = 1e-3 on [0, 10]
    # (|f''| of x^2 sin x reaches about 100) it is far above round-off, and below 0.1.
    assert 1e-4 < expr.max_abs_err < 0.1
    gelu = dydx.study("nn.GELU", quiet=True, **SMALL).record
    assert (gelu.fn, gelu.reference) == ("nn.GELU", "arb")  # the certified reference


def test_nothing_is_written_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dydx.study("sin", quiet=True, **SMALL)
    dydx.sweep(fn=["sin", "cos"], quiet=True, **SMALL)
    assert list(tmp_path.iterdir()) == []


def cached(cache) -> dict:
    """SMALL, with the session's reference cache: a study with out= caches its reference
    beside its results (results/.cache/reference by default)."""
    return {**SMALL, "reference": dict(cache_dir=str(cache))}


def test_out_stores_a_run_folder_like_the_command_line(tmp_path, reference_cache):
    r = dydx.study("sin", method="finite", out=tmp_path / "run", quiet=True,
                   **cached(reference_cache))
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"records.parquet", "points.parquet", "config.yaml", "report.md",
            "derivative.png", "error.png"} <= names
    stored = load_record(tmp_path / "run")
    assert stored["max_abs_err"] == r.record.max_abs_err
    assert stored["launcher"] == "api" and stored["overrides"].startswith("fn=sin method=finite")


def test_out_never_overwrites_a_finished_run(tmp_path, reference_cache):
    dydx.study("sin", out=tmp_path, quiet=True, **cached(reference_cache))
    before = (tmp_path / "records.parquet").read_bytes()
    with pytest.raises(DydxError) as err:
        dydx.study("cos", out=tmp_path, quiet=True, **cached(reference_cache))
    assert str(err.value) == f"{tmp_path} already holds a finished run; nothing was " \
                             f"changed. Choose another out"
    assert (tmp_path / "records.parquet").read_bytes() == before


def cli_line(*args: str) -> str:
    """The one line `python run.py args` prints on stderr, without its 'dydx: error: '."""
    done = run_py(*args, "device=cpu", "timing.enabled=false")
    assert done.status == 2 and done.stderr.count("\n") == 1, done.stderr
    return done.stderr.strip().removeprefix("dydx: error: ")


@pytest.mark.parametrize("kwargs, args", [
    (dict(grid=dict(nn=3)), ["grid.nn=3"]),
    (dict(grid=dict(n="abc")), ["grid.n=abc"]),
    (dict(grid=dict(n=1e6)), ["grid.n=1e6"]),
    (dict(grid=dict(n=10 ** 12)), ["grid.n=1000000000000"]),
    (dict(timing=dict(enabld=False)), ["timing.enabld=false"]),
    (dict(reference=dict(dps=10)), ["reference.dps=10"]),
    (dict(params=dict(h=1e-7)), ["method.h=1e-7"]),
    (dict(method="finite", params=dict(hh=1e-5)), ["method=finite", "method.hh=1e-5"]),
    (dict(fn="nn.Gelu"), ["fn=nn", "fn.name=Gelu"]),
    (dict(fn="tutorial_mlp", method="complex_step"), ["fn=tutorial_mlp", "method=complex_step"]),
    (dict(fn="x*1.0000001**9999"), ["fn=expr", "fn.expr=x*1.0000001**9999"]),
    (dict(time_limit_s=0), ["time_limit_s=0"]),
    (dict(order=3), ["order=3"]),
])
def test_the_api_raises_the_command_lines_line_as_one_exception_type(kwargs, args):
    with pytest.raises(DydxError) as api:
        dydx.study(**{"quiet": True, "timing": False, **kwargs})
    assert str(api.value) == cli_line(*args)
    assert isinstance(api.value, ConfigError) and isinstance(api.value, ValueError)


def test_an_out_folder_the_command_line_would_refuse_is_refused_with_its_line(tmp_path):
    (tmp_path / "file.txt").write_text("not a folder\n")
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text("{}\n")
    held = Claim(tmp_path / "held")  # as another dydx process would hold it
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    try:
        for folder in ("file.txt", "file.txt/run", "sweep", "held"):
            out = tmp_path / folder
            with pytest.raises(DydxError) as api:
                dydx.study("sin", out=out, quiet=True, **SMALL)
            cli = cli_line(f"hydra.run.dir={out}")
            # The same line; it names the setting that chose the folder.
            assert str(api.value) == cli.replace("hydra.run.dir", "out"), folder
            assert not isinstance(api.value, ConfigError)
        with pytest.raises(DydxError) as api:
            dydx.sweep(fn=["sin"], out=tmp_path / "held", quiet=True, **SMALL)
        assert str(api.value).startswith(f"{tmp_path / 'held'} is in use by another dydx "
                                         f"process (pid ")
        assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written
    finally:
        held.release()


def sleepy(x):
    time.sleep(60)
    return x


def test_a_study_past_its_time_limit_is_recorded_as_timeout_as_on_the_command_line():
    start = time.monotonic()
    r = dydx.study(sleepy, time_limit_s=0.5, quiet=True, **SMALL)
    assert time.monotonic() - start < 20
    assert r.record.status == "timeout" and r.points.empty
    assert r.record.status_reason == "stopped at the time limit of 0.5 s (time_limit_s; the " \
                                     "reference included); give it more with time_limit_s=..."
    s = dydx.sweep(fn=[sleepy, "sin"], time_limit_s=2, quiet=True, **SMALL)
    assert list(s.summary["status"]) == ["timeout", "ok"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(fn="sinn"), f"unknown fn 'sinn' (did you mean 'sin'?); choose one of: "
                      f"{FUNCTION_NAMES}, discriminator, tutorial_mlp; or nn.<Class>, an "
                      f"expression in x, 'package.module:function' or a Python callable"),
    (dict(method="autograd2"), "unknown method 'autograd2' (did you mean 'autograd'?); choose "
                               "one of: autograd, backward, compiled, complex_step, finite, "
                               "forward_ad, loop, numdifftools, richardson, scipy, stencil, "
                               "vmap_grad"),
    (dict(dtype="float8"), "unknown dtype 'float8' (did you mean 'float64'?); choose one of: "
                           "float64, float32, float16, "
                           "bfloat16"),
    (dict(grid=dict(nn=3)), "unknown key 'grid.nn' (did you mean 'grid.n'?); the keys of "
                            "grid are: kind, start, stop, step, n, per_binade, subnormals, seed"),
    (dict(grid=dict(n="many")), "grid.n must be an integer or null, got 'many'"),
    (dict(grid=dict(n=0)), "grid.n must be >= 1, got 0"),
    (dict(method="finite", params=dict(hh=1)), "method finite takes no parameter 'hh' (did "
                                               "you mean 'h'?); it takes: scheme, h"),
    (dict(method="finite", params=dict(scheme="sideways")),
     "unknown method.scheme 'sideways'; choose one of: central, forward, backward"),
    (dict(fn=3), "fn must be a function name, an expression in x, 'package.module:function' "
                 "or a callable, got int"),
    (dict(fn="sin", derivative=torch.cos), "derivative= is the trusted derivative of your own "
                                           "function (a callable or 'package.module:function'), "
                                           "not of fn='sin'"),
    (dict(timing="fast"), "timing must be a dict of settings (or None), got str"),
])
def test_bad_input_raises_one_configerror_with_the_command_lines_message(kwargs, message):
    with pytest.raises(ConfigError) as err:
        dydx.study(**{"quiet": True, **kwargs})
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)


def test_the_cli_says_the_same_for_the_same_bad_choice(run):
    with pytest.raises(ConfigError) as api:
        dydx.study("sin", method="finite", params=dict(h=-1.0), quiet=True)
    with pytest.raises(ConfigError) as cli:
        run("fn=sin", "method=finite", "method.h=-1.0")
    assert str(api.value) == str(cli.value)


def test_an_unsupported_combination_is_a_record_with_its_reason_as_on_the_command_line():
    r = dydx.study("relu", method="complex_step", quiet=True, **SMALL)
    assert r.record.status == "unsupported" and "relu" in r.record.status_reason
    assert r.points.empty
    with pytest.raises(ConfigError, match="^relu by complex_step has no points to plot: "
                                          "status unsupported: "):
        r.plot()


def test_sweep_runs_every_combination_in_order_and_records_failures():
    def broken(x):
        raise RuntimeError("boom")

    s = dydx.sweep(fn=["sin", broken], method=["autograd", "complex_step"],
                   dtype=["float32", "float64"], quiet=True, **SMALL)
    summary = s.summary
    assert isinstance(s, SweepResult) and len(summary) == 8 == len(s.runs)
    assert list(summary["fn"][:4]) == ["sin"] * 4
    assert list(summary["method"][:4]) == ["autograd", "autograd", "complex_step", "complex_step"]
    assert list(summary["dtype"][:4]) == ["float32", "float64"] * 2
    assert (summary["status"][:4] == "ok").all()
    assert list(summary["status"][4:]) == ["error"] * 2 + ["unsupported"] * 2
    assert summary["status_reason"][4] == "RuntimeError: boom"
    assert list(summary["job_num"]) == list(range(8))


def test_sweep_job_folders_are_named_as_the_command_lines(tmp_path, reference_cache):
    dydx.sweep(fn="sin", method="finite", order=[1, 2], out=tmp_path, quiet=True,
               **cached(reference_cache))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name[0].isdigit()) == [
        "0_sin_finite_float64", "1_sin_finite_float64_order2"]


def test_sweep_params_lists_are_swept():
    s = dydx.sweep(fn="sin", method="finite", params=dict(h=[1e-2, 1e-3, 1e-4]), quiet=True,
                   **SMALL)
    assert list(s.summary["h"]) == [1e-2, 1e-3, 1e-4]
    # Central differences: error ~ h^2 |f'''| / 6 while truncation dominates.
    errors = s.summary["max_abs_err"].to_numpy()
    assert errors[0] / errors[1] == pytest.approx(100, rel=0.01)
    assert errors[1] / errors[2] == pytest.approx(100, rel=0.01)


def test_sweep_checks_every_combination_before_running_any(tmp_path, capsys, reference_cache):
    with pytest.raises(ConfigError) as err:
        dydx.sweep(fn=["sin", "tanh"], method=["autograd", "finite"], params=dict(h=1e-3),
                   out=tmp_path / "s", **cached(reference_cache))
    assert str(err.value) == "sweep job fn=sin method=autograd dtype=float64 device=auto " \
                             "order=1 method.h=0.001: method autograd takes no parameter " \
                             "'h'; it takes: none"
    assert not (tmp_path / "s").exists() and capsys.readouterr().out == ""


def test_a_stored_sweep_resumes_and_loads_back(tmp_path, capsys, reference_cache):
    folder = tmp_path / "sweep"
    first = dydx.sweep(fn=["sin", "tanh"], method=["autograd", "finite"], out=folder,
                       **cached(reference_cache))
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == f"dydx: sweep of 4 jobs into {folder}"
    assert "[1/4] fn=sin method=autograd: max |err| " in printed
    assert (folder / "report.html").is_file() and (folder / "summary.parquet").is_file()
    (folder / "1_sin_finite_float64" / "records.parquet").unlink()
    again = dydx.sweep(fn=["sin", "tanh"], method=["autograd", "finite"], out=folder,
                       **cached(reference_cache))
    printed = capsys.readouterr().out
    assert "3 already finished there and will be skipped" in printed
    assert printed.count("skipped, finished earlier in") == 3
    loaded = dydx.load(folder)
    assert isinstance(loaded, SweepResult) and len(loaded.summary) == 4
    key = ["fn", "method", "max_abs_err", "median_ulp"]
    pd.testing.assert_frame_equal(loaded.summary[key], first.summary[key])
    pd.testing.assert_frame_equal(again.summary[key], first.summary[key])
    run = dydx.load(folder / "0_sin_autograd_float64")
    assert isinstance(run, RunResult) and run.record.max_abs_err == first.runs[0].record.max_abs_err
    assert len(run.points) == 101


def test_a_sweep_in_memory_writes_its_runs_and_report_when_asked(tmp_path):
    s = dydx.sweep(fn=["sin", "cos"], quiet=True, **SMALL)
    with pytest.raises(ConfigError, match=r"^this sweep was run without out=: give a folder"):
        s.report()
    paths = s.report(out=tmp_path / "later")
    assert paths["report.html"] == tmp_path / "later" / "report.html"
    assert (tmp_path / "later" / "1_cos_autograd_float64" / "records.parquet").is_file()
    assert len(dydx.load(tmp_path / "later").summary) == 2


def test_load_says_what_it_needs(tmp_path):
    with pytest.raises(ConfigError) as err:
        dydx.load(tmp_path)
    assert str(err.value) == f"no finished runs under {tmp_path} (a run is finished when its " \
                             f"folder holds records.parquet)"
    with pytest.raises(ConfigError) as err:
        dydx.load(tmp_path / "nowhere")
    assert str(err.value) == f"{tmp_path / 'nowhere'} is neither a folder of runs nor a " \
                             f"stored table (summary.parquet, summary.csv, records.parquet " \
                             f"or records.csv)"


def test_import_harness_is_cheap_and_harness_study_is_both_function_and_package():
    code = ("import sys, harness; print(sorted(m for m in ('torch', 'pandas', 'hydra', "
            "'matplotlib') if m in sys.modules)); import harness.study.flow as flow; "
            "print(harness.study.flow is flow, callable(harness.study))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True True"


def test_harness_study_dotted_paths_still_resolve_for_monkeypatch(monkeypatch):
    monkeypatch.setattr("harness.study.machine.git_sha", lambda: "patched")
    from harness.study import machine

    assert machine.git_sha() == "patched"
