"""Issue 12, "Never lose a result, never hang, never fail with a traceback": one test per
item of the issue, named for it (test_item_NN_...). Items 4 and 11 need real processes
(concurrent writers, Ctrl-C): they are in test_concurrency.py and test_kill_resume.py.

Commands run in this process through run.py's own entry (tests/support.run_py); the
sweeps they build are small (grid.n=20, timing off), but still seconds, so most are slow.
"""
from __future__ import annotations

import functools
import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import EXIT
from harness.functions.expr import ExpressionError, parse_expression
from harness.multirun.heartbeat import heartbeat
from harness.report.__main__ import main as report_main
from harness.results import MANIFEST, job_key, load_records
from support import ROOT, SMALL_SWEEP, run_py
from test_bad_input import make_read_only, make_writable, tree_digest

FAST = ("grid.n=20", "timing.enabled=false", "device=cpu")
ALLOWED = ("allowed: numbers, + - * / ** ( ), x, pi, e and functions abs, cos, elu, erf, exp, "
           "gelu, gelu_tanh, hardshrink, hardsigmoid, hardswish, hardtanh, leaky_relu, log, "
           "logsigmoid, mish, relu, relu6, selu, sigmoid, silu, sin, sinc, softplus, softshrink, "
           "softsign, sqrt, tan, tanh, tanhshrink")


def sweep(folder: Path, cache: Path, *args: str):
    return run_py("-m", *args, *FAST, f"hydra.sweep.dir={folder}", f"reference.cache_dir={cache}")


def single(cache: Path, *args: str):
    return run_py(*args, *FAST, f"reference.cache_dir={cache}")


def record_of(run_dir: Path) -> pd.Series:
    return pd.read_parquet(run_dir / "records.parquet").iloc[0]


# --- 1. a run never writes into a sweep ------------------------------------------------------

@pytest.mark.slow
def test_item_01_a_run_into_a_finished_sweep_folder_is_refused_and_it_stays_a_sweep(
        small_sweep, tmp_path, reference_cache, capsys):
    folder = tmp_path / "sweep"
    shutil.copytree(small_sweep[0], folder)
    before = tree_digest(folder)
    result = single(reference_cache, f"hydra.run.dir={folder}")
    assert result.status == 2
    assert result.stderr == (f"dydx: error: {folder} holds a sweep; nothing was changed. Choose "
                             f"another hydra.run.dir (python -m harness.report {folder} "
                             f"rebuilds the sweep's report)\n")
    assert tree_digest(folder) == before
    assert report_main([str(folder)]) == 0
    assert capsys.readouterr().out.startswith("dydx: 12 records (12 ok, 0 failed)\n")


def test_item_01_a_folder_where_a_sweep_has_only_started_is_refused_too(tmp_path, reference_cache):
    (tmp_path / MANIFEST).write_text('{"total": 4}\n')
    result = single(reference_cache, f"hydra.run.dir={tmp_path}")
    assert (result.status, result.stderr.count("\n")) == (2, 1)
    assert f"{tmp_path} holds a sweep; nothing was changed" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST]


# --- 2. two jobs are the same job only if their overrides are the same ------------------------

def test_item_02_job_keys_compare_overrides_exactly_not_their_words():
    one, two = ['fn.expr="x - 1 + 2 * x"'], ['fn.expr="x - 2 + 1 * x"']
    assert job_key(one) != job_key(two)
    assert job_key(["fn=expr", *one]) == job_key([*one, "fn=expr"])


@pytest.mark.slow
def test_item_02_a_sweep_over_two_expressions_with_the_same_words_runs_both(tmp_path,
                                                                            reference_cache):
    folder = tmp_path / "exprs"
    args = ("fn=expr", 'fn.expr="x - 1 + 2 * x","x - 2 + 1 * x"')
    first = sweep(folder, reference_cache, *args)
    assert first.status == 0, first.stderr
    records = load_records(folder)
    assert sorted(records["fn"]) == ["x - 1 + 2 * x", "x - 2 + 1 * x"]
    # 3x - 1 and 3x - 2 both have the derivative 3: each record checked its own function.
    assert (records["max_abs_err"] == 0).all() and (records["status"] == "ok").all()
    again = sweep(folder, reference_cache, *args)
    assert again.status == 0 and again.stdout.count("skipped, finished earlier in") == 2


# --- 3. a damaged record is "not finished": rerun it, warn, never block the others ------------

@pytest.mark.slow
def test_item_03_a_truncated_record_is_left_out_of_the_report_and_rerun_on_resume(
        small_sweep, tmp_path, reference_cache, capsys):
    folder = tmp_path / "damaged"
    shutil.copytree(small_sweep[0], folder)
    damaged = folder / "0_sin_autograd_float32" / "records.parquet"
    damaged.write_bytes(damaged.read_bytes()[:100])
    (folder / "11_tanh_finite_float64" / "records.parquet").unlink()
    started = json.loads((folder / MANIFEST).read_text())["started"]

    assert report_main([str(folder)]) == 0
    printed = capsys.readouterr()
    assert printed.err == (f"dydx: warning: {damaged} is damaged (cannot be read) and was left "
                           f"out; rerun its job to replace it\n")
    assert printed.out.startswith("dydx: 10 records (10 ok, 0 failed)")  # 12, less 2
    assert "## Damaged records" in (folder / "report.md").read_text()

    time.sleep(1)  # the manifest's start time has a resolution of one second
    resumed = run_py("-m", *SMALL_SWEEP, f"hydra.sweep.dir={folder}",
                     f"reference.cache_dir={reference_cache}", "device=cpu")
    assert resumed.status == 0, resumed.stderr
    assert resumed.stderr == ("[1/12] fn=sin method=autograd dtype=float32: warning: "
                              "0_sin_autograd_float32/records.parquet is damaged (unreadable); "
                              "running the job again\n")
    assert resumed.stdout.count("skipped, finished earlier in") == 10
    assert json.loads((folder / MANIFEST).read_text())["started"] != started
    summary = pd.read_parquet(folder / "summary.parquet")
    assert len(summary) == 12 and (summary["status"] == "ok").all()


# --- 5. temp files of killed writes are cleaned up on the next run of their folder -------------

TEMPS = {"": [".sweep.k3j9zq1a.json", ".summary.abcdefgh.parquet"],
         "tables": [".accuracy.q1w2e3r4.csv"],
         "0_sin_autograd_float32": [".points.a1b2c3d4.csv", ".config.zzzzzzzz.yaml",
                                    ".derivative.x9y8z7w6.png"],
         "4_sin_finite_float32": [".records.mnbvcxzl.parquet"]}


@pytest.mark.slow
def test_item_05_temp_files_left_by_killed_writes_are_removed_when_the_sweep_resumes(
        small_sweep, tmp_path, reference_cache):
    folder = tmp_path / "temps"
    shutil.copytree(small_sweep[0], folder)
    (folder / "4_sin_finite_float32" / "records.parquet").unlink()
    for sub, names in TEMPS.items():
        for name in names:
            (folder / sub / name).write_bytes(b"")
    keep = folder / "0_sin_autograd_float32" / ".notes.txt"  # not a temp file of ours
    keep.write_text("mine\n")
    resumed = run_py("-m", *SMALL_SWEEP, f"hydra.sweep.dir={folder}",
                     f"reference.cache_dir={reference_cache}", "device=cpu")
    assert resumed.status == 0, resumed.stderr
    left = [p for sub, names in TEMPS.items() for p in (folder / sub).glob(".*.*")
            if p.name in names]
    assert left == [] and keep.read_text() == "mine\n"
    assert not list(folder.rglob(".dydx.lock"))


def test_item_05_a_single_run_cleans_the_temp_files_in_its_folder(tmp_path, reference_cache):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in (".points.a1b2c3d4.csv", ".config.zzzzzzzz.yaml", ".derivative.x9y8z7w6.png"):
        (folder / name).write_bytes(b"")
    result = single(reference_cache, f"hydra.run.dir={folder}")
    assert result.status == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.yaml", "derivative.png", "error.png", "points.csv", "points.parquet",
        "records.csv", "records.parquet", "report.md"]


# --- 6. a time limit on every run, the reference included, and a bounded parser --------------

def test_item_06_user_code_that_never_returns_is_stopped_and_recorded_as_timeout(
        tmp_path, reference_cache, monkeypatch):
    monkeypatch.chdir(ROOT)
    start = time.perf_counter()
    result = single(reference_cache, "fn=py", "fn.target=tests.userpkg.hostile:spins",
                    "time_limit_s=1", f"hydra.run.dir={tmp_path / 'run'}")
    assert time.perf_counter() - start < 30
    assert result.status == 4 and result.stderr == ""
    record = record_of(tmp_path / "run")
    assert (record["status"], record["status_reason"]) == (
        "timeout", "stopped at the time limit of 1 s (time_limit_s; the reference included); "
                   "give it more with time_limit_s=...")
    assert "status timeout: stopped at the time limit of 1 s" in result.stdout


@pytest.mark.slow
def test_item_06_the_time_limit_covers_the_reference_and_progress_is_printed(
        tmp_path, reference_cache, monkeypatch):
    monkeypatch.setattr("harness.app.jobs.heartbeat", functools.partial(heartbeat, every_s=1.0))
    # autograd of tanh at 200,000 points takes milliseconds, their certified reference tens
    # of seconds (measured: 45 s for the whole run on a loaded 2-core machine).
    start = time.perf_counter()
    result = run_py("fn=tanh", "grid.n=200000", "reference.max_points=200000",
                    "timing.enabled=false", "device=cpu", "time_limit_s=3",
                    f"reference.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert time.perf_counter() - start < 40
    assert result.status == 4, result.stderr
    assert record_of(tmp_path / "run")["status"] == "timeout"
    assert "still running (1 s)" in result.stdout and "still running (2 s)" in result.stdout
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


@pytest.mark.slow
def test_item_06_a_timed_out_job_is_a_row_and_the_sweep_goes_on(tmp_path, reference_cache,
                                                                monkeypatch):
    monkeypatch.chdir(ROOT)
    folder = tmp_path / "sweep"
    result = sweep(folder, reference_cache, "fn=py",
                   "fn.target=tests.userpkg.hostile:spins,tests.userpkg.hostile:square",
                   "time_limit_s=1")
    assert result.status == 0, result.stderr
    summary = pd.read_parquet(folder / "summary.parquet").set_index("fn")
    assert summary.loc["tests.userpkg.hostile:spins", "status"] == "timeout"
    assert summary.loc["tests.userpkg.hostile:square", "status"] == "ok"


def test_item_06_the_parser_refuses_a_constant_too_large_to_fold_at_once():
    start = time.perf_counter()
    with pytest.raises(ExpressionError) as info:
        parse_expression("(1.0000001**9999)**300")
    assert time.perf_counter() - start < 1.0
    assert str(info.value) == (
        "fn.expr '(1.0000001**9999)**300': the constant sub-expression would need about "
        "1.44e+05 digits to keep exactly (the limit is 1000); write its value as a decimal at "
        f"column 2; {ALLOWED}")


# --- 7. the grid is bounded by memory, and the message says the limit -------------------------

def memory_total() -> int:
    """This machine's memory, from /proc/meminfo (independent of how dydx reads it)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.3g} GiB"


@pytest.mark.parametrize("args, asked", [
    (("grid.n=1000000000000",), "grid.n=1000000000000 asks for 1e+12 points, about 546 TiB"),
    (("grid.step=1e-13",), "grid.step=1e-13 asks for 2e+14 points, about 107 PiB"),
])
def test_item_07_a_grid_larger_than_memory_is_refused_with_the_limit(tmp_path, reference_cache,
                                                                     args, asked):
    result = run_py(*args, "device=cpu", f"reference.cache_dir={reference_cache}",
                    f"hydra.run.dir={tmp_path / 'run'}")
    total = memory_total()
    assert result.status == 2
    assert result.stderr == (f"dydx: error: {asked} at up to 600 bytes per point; the limit is "
                             f"this machine's memory, {gib(total)}: use at most "
                             f"{total // 600:,} points\n")
    assert not (tmp_path / "run").exists()


# --- 8. folders that cannot be written: one line, or (the cache) a warning --------------------

@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "readonly"
    folder.mkdir()
    if not make_read_only(folder):
        pytest.skip("this machine cannot make a folder read-only for root (no chattr)")
    yield folder
    make_writable(folder)


@pytest.mark.parametrize("where, says", [
    ("file", "{tmp}/file is a file, not a folder; choose another folder"),
    ("proc", "cannot write results under /proc/x: /proc does not take new files"),
    ("readonly", "cannot write results under {tmp}/readonly/run: {tmp}/readonly does not take "
                 "new files"),
])
def test_item_08_a_run_folder_that_cannot_be_written_is_one_line(tmp_path, read_only,
                                                                  reference_cache, where, says):
    (tmp_path / "file").write_text("")
    run_dir = {"file": tmp_path / "file", "proc": Path("/proc/x"),
               "readonly": read_only / "run"}[where]
    before = tree_digest(tmp_path)
    result = single(reference_cache, f"hydra.run.dir={run_dir}")
    assert result.status == 2 and result.stderr.count("\n") == 1
    assert says.format(tmp=tmp_path) in result.stderr
    assert tree_digest(tmp_path) == before


def test_item_08_a_reference_cache_that_cannot_be_written_is_a_warning_not_a_lost_run(
        tmp_path, read_only):
    run_dir = tmp_path / "run"
    result = run_py(*FAST, f"reference.cache_dir={read_only}/cache", f"hydra.run.dir={run_dir}")
    assert result.status == 0
    assert result.stderr == (f"dydx: warning: reference.cache_dir {read_only}/cache cannot be "
                             f"written (Operation not permitted); the reference was computed "
                             f"but not cached\n")
    assert record_of(run_dir)["status"] == "ok" and record_of(run_dir)["max_ulp"] <= 1


@pytest.mark.slow
def test_item_08_rebuilding_a_read_only_sweep_is_one_line_and_changes_nothing(
        small_sweep, tmp_path, capsys):
    folder = tmp_path / "sweep"
    shutil.copytree(small_sweep[0], folder)
    if not make_read_only(folder):
        pytest.skip("this machine cannot make a folder read-only for root (no chattr)")
    try:
        before = tree_digest(folder)
        assert report_main([str(folder)]) == 2
        assert capsys.readouterr().err == (f"dydx: error: cannot write results under {folder}: "
                                           f"{folder} does not take new files (Operation not "
                                           f"permitted); choose another folder\n")
        assert tree_digest(folder) == before
    finally:
        make_writable(folder)


# --- 9. what your code returns is checked, and the message says what was expected ------------

@pytest.mark.parametrize("name, returned", [
    ("summed", "a tensor of shape ()"), ("integers", "int64 values"), ("nothing", "None"),
    ("python_number", "a Python float"), ("numpy_array", "a numpy array"),
    ("too_few", "a tensor of shape (1000,)"),
])
def test_item_09_user_code_returning_the_wrong_thing_is_one_line_that_says_what_was_expected(
        tmp_path, reference_cache, monkeypatch, name, returned):
    monkeypatch.chdir(ROOT)
    result = run_py("fn=py", f"fn.target=tests.userpkg.hostile:{name}", "grid.n=2000",
                    "timing.enabled=false", "device=cpu", f"reference.cache_dir={reference_cache}",
                    f"hydra.run.dir={tmp_path / 'run'}")
    assert result.status == 2
    assert result.stderr == (f"dydx: error: fn.target tests.userpkg.hostile:{name} returned "
                             f"{returned} for x of shape (2000,) in float64; it must return a "
                             f"torch.Tensor of x's shape and dtype, one value per element\n")
    assert not (tmp_path / "run").exists()


# --- 10. expressions: huge literals and constants, null bytes, lone surrogates ----------------

@pytest.mark.parametrize("text, what, column", [
    ("1" + "0" * 309 + "*x", "the integer literal is larger than float64's maximum "
                             "(about 1.8e308)", 1),
    ("x*1.0000001**9999", "the constant sub-expression would need about 1.44e+05 digits to "
                          "keep exactly (the limit is 1000); write its value as a decimal", 3),
])
def test_item_10_huge_literals_and_constants_are_refused_before_anything_computes_them(
        text, what, column):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert str(info.value) == f"fn.expr {text!r}: {what} at column {column}; {ALLOWED}"


@pytest.mark.parametrize("text, char, code", [("x\x00", "'\\x00'", "0000"),
                                              ("x\ud800", "'\\ud800'", "D800"),
                                              ("x\u00b2", "'²'", "00B2")])
def test_item_10_null_bytes_surrogates_and_other_characters_are_refused_where_they_are(
        text, char, code):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert str(info.value) == (f"fn.expr {text!r}: the character {char} (U+{code}) at column 2 "
                               f"is not allowed; {ALLOWED}")


# --- 12. Hydra's errors for keys and types are one line that lists the valid keys -------------

@pytest.mark.parametrize("args, line", [
    (["grid.nn=5"], "unknown key 'grid.nn' (did you mean 'grid.n'?); the keys of grid are: "
                    "kind, start, stop, step, n, per_binade, subnormals, seed"),
    (["methd=finite"], "unknown key 'methd' (did you mean 'method'?); the keys are: fn, method, "
                       "dtype, device, grid, timing, reference, hunt, order, out_root, seed, "
                       "time_limit_s, figures"),
    (["method=finite", "method.h=abc"], "method.h must be a number or null, got 'abc'"),
    (["method=autograd", "method.h=1e-7"], "method autograd takes no parameter 'h'; it takes: "
                                           "none"),
    (["method=autgrad"], "unknown method 'autgrad' (did you mean 'autograd'?); choose one of: "
                         "autograd, backward, compiled, complex_step, finite, forward_ad, loop, "
                         "numdifftools, richardson, scipy, stencil, vmap_grad"),
])
def test_item_12_hydras_key_and_type_errors_are_one_line_exit_2_with_the_valid_keys(
        tmp_path, reference_cache, args, line):
    result = single(reference_cache, *args, f"hydra.run.dir={tmp_path / 'run'}")
    assert (result.status, result.stderr) == (2, f"dydx: error: {line}\n")
    assert not (tmp_path / "run").exists()


def test_item_12_near_misses_of_choices_are_suggested(tmp_path, reference_cache):
    sinn = single(reference_cache, "fn=sinn", f"hydra.run.dir={tmp_path / 'a'}")
    gelu = single(reference_cache, "fn=nn", "fn.name=Gelu", f"hydra.run.dir={tmp_path / 'b'}")
    assert sinn.stderr.startswith("dydx: error: unknown fn 'sinn' (did you mean 'sin'?); ")
    assert gelu.stderr.startswith("dydx: error: unsupported fn.name 'Gelu' (did you mean "
                                  "'GELU'?) for fn=nn; choose one of: CELU, ELU, GELU, ")
    assert (sinn.status, gelu.status) == (2, 2)


# --- 13. an unsupported run has its own exit status; networks say what applies ----------------

def test_item_13_an_unsupported_run_is_recorded_and_exits_3(tmp_path, reference_cache):
    result = single(reference_cache, "fn=relu", "method=complex_step",
                    f"hydra.run.dir={tmp_path / 'run'}")
    assert result.status == 3 and result.stderr == ""
    record = record_of(tmp_path / "run")
    assert (record["status"], record["status_reason"]) == (
        "unsupported", "complex_step: relu is not analytic (or not built only from analytic "
                       "pieces), so Im f(x+ih)/h is not its derivative")


def test_item_13_a_method_without_a_network_form_says_it_does_not_apply_to_networks(
        tmp_path, reference_cache):
    result = single(reference_cache, "fn=tutorial_mlp", "method=complex_step",
                    f"hydra.run.dir={tmp_path / 'run'}")
    assert (result.status, result.stderr) == (
        2, "dydx: error: method complex_step does not apply to networks (it needs an "
           "elementwise function); for networks choose one of: autograd, backward, finite, "
           "forward_ad, loop\n")


# --- 14. a rebuild says what it could not rebuild ---------------------------------------------

def test_item_14_rebuilding_a_run_without_its_points_says_the_plots_were_not_rebuilt(
        tmp_path, reference_cache, capsys):
    run_dir = tmp_path / "run"
    assert single(reference_cache, f"hydra.run.dir={run_dir}").status == 0
    plots = {name: (run_dir / name).read_bytes() for name in ("derivative.png", "error.png")}
    (run_dir / "points.parquet").unlink()
    (run_dir / "report.md").unlink()
    assert report_main([str(run_dir)]) == 6
    printed = capsys.readouterr()
    assert printed.out == f"wrote {run_dir / 'report.md'}\n"
    assert printed.err == ("dydx: error: could not rebuild derivative.png, error.png: "
                           "points.parquet is missing; older copies, if any, were left as they "
                           "were\n")
    assert {name: (run_dir / name).read_bytes() for name in plots} == plots
    assert (run_dir / "report.md").read_text().startswith("# sin by autograd")


# --- the README says what each exit status means ----------------------------------------------

def test_the_readme_says_what_each_exit_status_means():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- exit statuses: harness/errors.py EXIT -->", 1)[1].split("\n\n- ")[0]
    rows = dict(re.findall(r"^\| (\d+) \| (.+) \|$", table, re.M))
    assert sorted(map(int, rows)) == sorted(EXIT.values())
    words = {"ok": "done", "bug": "a bug", "usage": "nothing was changed",
             "unsupported": "unsupported", "timeout": "time limit", "failed": "the run failed",
             "incomplete": "incomplete", "interrupted": "interrupted"}
    for name, code in EXIT.items():
        assert words[name] in rows[str(code)], (name, rows[str(code)])
