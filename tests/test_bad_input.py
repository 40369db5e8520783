"""The bad-input corpus: command lines a careless or hostile user types. Each one must end
with exit status 2 and exactly one line on stderr that says what is wrong (no traceback),
and leave everything stored exactly as it was (the whole tree hashed before and after).

The corpus runs in this process through run.py's own entry (runpy, tests/support.run_py),
because a subprocess pays seconds of start-up per command; a representative subset runs
as real `python run.py` subprocesses (marked slow), including what only a real command
line can carry (bytes that are not UTF-8).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.claims import Claim
from support import EXPRESSION_WORDS, NN_ACTIVATION_NAMES, ROOT, run_py

DIGITS_310 = "1" + "0" * 309
# (id, command line, what the one stderr line must contain). {world} is the folder that
# holds everything stored: results/ with a finished run and a finished sweep, a file, a
# read-only folder, and the reference cache.
CORPUS = [
    # --- group choices: the registries' names, with a near miss suggested
    ("fn_sinn", ["fn=sinn"], "unknown fn 'sinn' (did you mean 'sin'?); choose one of: abs, "),
    ("fn_bogus", ["fn=bogus"],
     "unknown fn 'bogus'; choose one of: abs, cos, cube, discriminator, elu, erf, exp, expr, "
     "gelu, gelu_tanh, hardshrink, hardsigmoid, hardswish, hardtanh, leaky_relu, log, "
     "logsigmoid, mish, nn, py, relu, relu6, selu, sigmoid, silu, sin, sinc, softplus, "
     "softshrink, softsign, sqrt, tan, tanh, tanhshrink, torch, tutorial_mlp"),
    ("method_autgrad", ["method=autgrad"],
     "unknown method 'autgrad' (did you mean 'autograd'?); choose one of: autograd, backward, "),
    ("method_in_sweep", ["-m", "method=autograd,finitte"],
     "unknown method 'finitte' (did you mean 'finite'?)"),
    ("fn_in_sweep", ["-m", "fn=sin,bogus"], "unknown fn 'bogus'"),
    ("dtype_float8", ["dtype=float8"],
     "unknown dtype 'float8' (did you mean 'float64'?); choose one of: bfloat16, float16, "
     "float32, float64"),
    ("dtype_int", ["dtype=int32"], "unknown dtype 'int32'"),
    ("device_tpu", ["device=tpu"], "unknown device 'tpu'; choose one of: auto, cpu, cuda"),
    ("sweep_preset", ["-m", "+sweep=nope"],
     "unknown sweep 'nope'; choose one of: atlas, methods, scaling, stepsize"),
    ("sweep_without_plus", ["-m", "sweep=methods"],
     "a sweep preset is added with a plus: +sweep=... (one of: atlas, methods, scaling, stepsize)"),
    ("launcher", ["-m", "hydra/launcher=nope"],
     "unknown hydra/launcher 'nope'; choose one of: basic, joblib, slurm, submitit_local, "
     "submitit_slurm"),
    # --- keys the config does not have (Hydra's own errors list none)
    ("grid_nn", ["grid.nn=5"],
     "unknown key 'grid.nn' (did you mean 'grid.n'?); the keys of grid are: kind, start, "
     "stop, step, n, per_binade, subnormals, seed"),
    ("methd", ["methd=finite"],
     "unknown key 'methd' (did you mean 'method'?); the keys are: fn, method, dtype, device, "
     "grid, timing, reference, hunt, order, out_root, seed, time_limit_s, figures"),
    ("fn_nam", ["fn.nam=GELU"], "unknown key 'fn.nam' (did you mean 'fn.name'?); the keys of fn "
                                "are: kind, name, expr, target, derivative, v, train, max_points, "
                                "label"),
    ("timing_key", ["timing.enabld=false"],
     "unknown key 'timing.enabld' (did you mean 'timing.enabled'?); the keys of timing are: "
     "enabled, precision, min_run_time, max_run_time, num_threads, processes"),
    ("reference_key", ["reference.dpss=60"], "unknown key 'reference.dpss' (did you mean "
                                             "'reference.dps'?)"),
    ("unknown_top_key", ["foo=1"], "unknown key 'foo'; the keys are: fn, method, "),
    ("appended_key", ["+foo=1"], "unknown key 'foo'; the keys are: fn, method, "),
    ("nested_too_deep", ["grid.n.x=1"], "unknown key 'grid.n.x'"),
    ("scalar_as_section", ["order.x=1"], "order is a single value, not a section: set it as "
                                         "order=..."),
    ("method_param_typo", ["method=finite", "method.hh=1e-5"],
     "method finite takes no parameter 'hh' (did you mean 'h'?); it takes: scheme, h"),
    ("h_for_autograd_default", ["method.h=1e-7"],
     "method autograd takes no parameter 'h'; it takes: none"),
    ("h_for_autograd", ["method=autograd", "method.h=1e-7"],
     "method autograd takes no parameter 'h'; it takes: none"),
    ("h_in_a_mixed_sweep", ["-m", "method=finite,autograd", "method.h=1e-5"],
     "method autograd takes no parameter 'h'; it takes: none"),
    ("scheme_for_stencil", ["method=stencil", "method.scheme=central"],
     "method stencil takes no parameter 'scheme'; it takes: accuracy, h"),
    ("no_method_takes_it", ["-m", "+sweep=methods", "method.hx=1"],
     "unknown key 'method.hx' (did you mean 'method.h'?); the methods' parameters are: "
     "accuracy, con, h, initial_step, ntab, scheme"),
    # --- values of the wrong type
    ("h_abc", ["method=finite", "method.h=abc"], "method.h must be a number or null, got 'abc'"),
    ("n_abc", ["grid.n=abc"], "grid.n must be an integer or null, got 'abc'"),
    ("n_fraction", ["grid.n=1.5"], "grid.n must be an integer or null, got 1.5"),
    ("n_float", ["grid.n=1e6"],
     "grid.n must be an integer or null, got 1000000.0, a float: write it as 1000000"),
    ("n_list", ["grid.n=[1,2]"], "grid.n must be an integer or null, got [1, 2]"),
    ("start_abc", ["grid.start=abc"], "grid.start must be a number, got 'abc'"),
    ("order_abc", ["order=abc"], "order must be an integer, got 'abc'"),
    ("seed_fraction", ["seed=1.5"], "seed must be an integer, got 1.5"),
    ("enabled_maybe", ["timing.enabled=maybe"], "timing.enabled must be true or false, got 'maybe'"),
    ("run_time_fast", ["timing.min_run_time=fast"],
     "timing.min_run_time must be a number, got 'fast'"),
    ("dps_many", ["reference.dps=many"], "reference.dps must be an integer, got 'many'"),
    ("time_limit_soon", ["time_limit_s=soon"], "time_limit_s must be a number, got 'soon'"),
    ("n_in_a_sweep", ["-m", "grid.n=10,ten"], "grid.n must be an integer or null, got 'ten'"),
    # --- values the study cannot run
    ("order_3", ["order=3"], "order must be 1 (first derivative) or 2 (second derivative), got 3"),
    ("n_zero", ["grid.n=0"], "grid.n must be >= 1, got 0"),
    ("step_zero", ["grid.step=0"], "the grid is empty: np.arange(-10.0, 10.0, 0.0) has no points"),
    ("stop_below_start", ["grid.start=5", "grid.stop=1"], "the grid is empty: np.arange(5.0, 1.0"),
    ("start_nan", ["grid.start=nan"], "grid.start must be a finite number, got nan"),
    ("n_terabytes", ["grid.n=1000000000000"],
     "grid.n=1000000000000 asks for 1e+12 points, about 546 TiB at up to 600 bytes per point; "
     "the limit is this machine's memory, "),
    ("step_tiny", ["grid.step=1e-13"],
     "grid.step=1e-13 asks for 2e+14 points, about 107 PiB at up to 600 bytes per point; the "
     "limit is this machine's memory, "),
    ("run_time_zero", ["timing.min_run_time=0"], "timing.min_run_time must be > 0 seconds, got 0"),
    ("max_points_1", ["reference.max_points=1"], "reference.max_points must be >= 2, got 1"),
    ("dps_10", ["reference.dps=10"], "reference.dps must be >= 40 digits"),
    ("time_limit_zero", ["time_limit_s=0"], "time_limit_s must be a number of seconds > 0, got 0"),
    ("time_limit_negative", ["time_limit_s=-5"],
     "time_limit_s must be a number of seconds > 0, got -5"),
    ("scheme_bogus", ["method=finite", "method.scheme=bogus"], "unknown method.scheme 'bogus'; "
                                                               "choose one of: "),
    ("accuracy_3", ["method=stencil", "method.accuracy=3"], "unknown method.accuracy 3; "
                                                            "choose one of: "),
    ("nn_gelu_case", ["fn=nn", "fn.name=Gelu"],
     "unsupported fn.name 'Gelu' (did you mean 'GELU'?) for fn=nn; choose one of: CELU, ELU, "),
    ("nn_softmax", ["fn=nn", "fn.name=Softmax"],
     "unsupported fn.name 'Softmax' for fn=nn; choose one of: " + NN_ACTIVATION_NAMES),
    ("network_complex_step", ["fn=tutorial_mlp", "method=complex_step"],
     "method complex_step does not apply to networks (it needs an elementwise function); for "
     "networks choose one of: autograd, backward, finite, forward_ad, loop"),
    ("network_order_2", ["fn=tutorial_mlp", "order=2"], "networks: order must be 1"),
    ("network_v", ["fn=tutorial_mlp", "fn.v=bogus"], "unknown fn.v 'bogus'; choose one of: "),
    # --- expressions: parsed against a whitelist, never evaluated, bounded
    ("expr_code", ["fn=expr", "fn.expr=\"__import__('os').system('touch {world}/pwned')\""],
     "fn.expr \"__import__('os').system('touch {world}/pwned')\": only calls of plain function "
     "names are allowed at column 1; " + EXPRESSION_WORDS),
    ("expr_power_tower", ["fn=expr", 'fn.expr="(1.0000001**9999)**300"'],
     "would need about 1.44e+05 digits to keep exactly (the limit is 1000)"),
    ("expr_big_exact", ["fn=expr", 'fn.expr="x*1.0000001**9999"'],
     "would need about 1.44e+05 digits to keep exactly (the limit is 1000)"),
    ("expr_310_digits", ["fn=expr", f"fn.expr={DIGITS_310}*x"],
     "the integer literal is larger than float64's maximum (about 1.8e308) at column 1"),
    ("expr_null_byte", ["fn=expr", "fn.expr=x\x00+1"],
     "cannot read the override 'fn.expr=x\\x00+1': the character '\\x00' (U+0000) at column 10 "
     "is not allowed (only printable ASCII)"),
    ("expr_null_byte_quoted", ["fn=expr", "fn.expr='x\x00+1'"],
     "fn.expr 'x\\x00+1': the character '\\x00' (U+0000) at column 2 is not allowed"),
    ("expr_surrogate", ["fn=expr", "fn.expr=x\udcff"],
     "the argument 'fn.expr=x\\udcff' holds bytes that are not UTF-8 text ('\\udcff' at column "
     "10); dydx takes only text"),
    ("expr_surrogate_quoted", ["fn=expr", "fn.expr='x\udcff'"],
     "the argument \"fn.expr='x\\udcff'\" holds bytes that are not UTF-8 text"),
    ("sweep_dir_surrogate", ["-m", "hydra.sweep.dir={world}/\udcff"],
     "holds bytes that are not UTF-8 text"),
    ("expr_empty", ["fn=expr", "fn.expr=''"], "fn.expr is empty; write an expression in x"),
    ("expr_unknown_name", ["fn=expr", "fn.expr=y"], "unknown name 'y' at column 1"),
    ("expr_syntax", ["fn=expr", "fn.expr='x**'"], "is not a valid expression: invalid syntax"),
    ("expr_overflow", ["fn=expr", "fn.expr='9**9**9*x'"], "to keep exactly (the limit is 1000)"),
    ("expr_not_real", ["fn=expr", "fn.expr='(-8)**(1/3)*x'"], "not a finite real at column 1"),
    ("expr_too_long", ["fn=expr", f"fn.expr={'x+' * 300}x"],
     "fn.expr is 601 characters long; the limit is 500"),
    # --- your code (fn=py): importable, callable, and returning one value per element
    ("py_without_target", ["fn=py"], "fn.target must look like package.module:function, got None"),
    ("py_no_module", ["fn=py", "fn.target=no_such_module:f"],
     "fn.target: cannot import module 'no_such_module'"),
    ("py_not_callable", ["fn=py", "fn.target=tests.userpkg.ops:NOT_CALLABLE"], "is not callable"),
    ("py_sum", ["fn=py", "fn.target=tests.userpkg.hostile:summed"],
     "fn.target tests.userpkg.hostile:summed returned a tensor of shape () for x of shape "
     "(2000,) in float64; it must return a torch.Tensor of x's shape and dtype, one value per "
     "element"),
    ("py_ints", ["fn=py", "fn.target=tests.userpkg.hostile:integers"], "returned int64 values"),
    ("py_none", ["fn=py", "fn.target=tests.userpkg.hostile:nothing"], "returned None for x"),
    ("py_number", ["fn=py", "fn.target=tests.userpkg.hostile:python_number"],
     "returned a Python float for x"),
    ("py_numpy", ["fn=py", "fn.target=tests.userpkg.hostile:numpy_array"],
     "returned a numpy array for x"),
    ("py_too_few", ["fn=py", "fn.target=tests.userpkg.hostile:too_few"],
     "returned a tensor of shape (1000,) for x of shape (2000,)"),
    ("py_upcast", ["fn=py", "fn.target=tests.userpkg.hostile:upcast", "dtype=float32"],
     "returned float64 values for x of shape (2000,) in float32"),
    ("py_bad_derivative", ["fn=py", "fn.target=tests.userpkg.hostile:square",
                           "fn.derivative=tests.userpkg.hostile:wrong_shape_derivative"],
     "fn.derivative of tests.userpkg.hostile:square returned a tensor of shape (3,)"),
    # --- the command line itself
    ("unknown_option", ["--bogus"], "unrecognized arguments: --bogus; run.py takes key=value "
                                    "overrides and the options --help, "),
    ("bad_cfg_choice", ["--cfg", "bogus"], "argument --cfg/-c: invalid choice: 'bogus'"),
    ("no_equals", ["fn"], "cannot read the override 'fn': missing EQUAL at '<EOF>'"),
    ("unbalanced", ["fn=sin("], "cannot read the override 'fn=sin(': no viable alternative at "
                                "input 'sin('"),
    ("two_equals", ["a=b=c"], "cannot read the override 'a=b=c': mismatched input '='"),
    # --- folders: never written when they hold a run or a sweep, or cannot be written
    ("run_into_a_file", ["hydra.run.dir={world}/file.txt"],
     "cannot write results under {world}/file.txt: {world}/file.txt is a file, not a folder"),
    ("run_under_a_file", ["hydra.run.dir={world}/file.txt/run"],
     "{world}/file.txt is a file, not a folder"),
    ("run_into_proc", ["hydra.run.dir=/proc/x"], "cannot write results under /proc/x: /proc "
                                                 "does not take new files"),
    ("run_into_read_only", ["hydra.run.dir={world}/readonly/run"],
     "cannot write results under {world}/readonly/run: {world}/readonly does not take new files"),
    ("out_root_read_only", ["out_root={world}/readonly"], "{world}/readonly does not take new "
                                                          "files"),
    ("run_into_a_finished_run", ["hydra.run.dir={world}/results/runs/done"],
     "{world}/results/runs/done already holds a finished run; nothing was changed. Choose "
     "another hydra.run.dir"),
    ("run_into_a_sweep", ["hydra.run.dir={world}/results/sweeps/s"],
     "{world}/results/sweeps/s holds a sweep; nothing was changed. Choose another hydra.run.dir"),
    ("run_into_a_held_folder", ["hydra.run.dir={world}/results/runs/held"],
     "{world}/results/runs/held is in use by another dydx process (pid "),
    ("sweep_into_a_run", ["-m", "hydra.sweep.dir={world}/results/runs/done"],
     "{world}/results/runs/done holds a finished single run; a sweep there would replace its "
     "report. Choose another hydra.sweep.dir"),
    ("sweep_into_a_file", ["-m", "hydra.sweep.dir={world}/file.txt"], "is a file, not a folder"),
    ("sweep_into_a_held_folder", ["-m", "hydra.sweep.dir={world}/results/runs/held"],
     "{world}/results/runs/held is in use by another dydx process (pid "),
]
# Run as real `python run.py` subprocesses too (slow): one refused inside Hydra's job runner
# (user code), beside the undecodable byte that precheck refuses before Hydra runs.
SUBPROCESS = ["py_sum"]


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under root -> sha256 of its bytes ('dir' for folders)."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else
            hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))}


def make_read_only(folder: Path) -> bool:
    """Make `folder` refuse new files, even for root (the immutable flag); False if this
    machine offers no way to."""
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return True
    return subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0


def make_writable(folder: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    folder.chmod(0o755)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder holding a finished run, a finished sweep, a file, a read-only folder, a
    folder another process holds, and the reference cache."""
    root = tmp_path_factory.mktemp("world")
    base = [f"reference.cache_dir={root}/cache", "device=cpu", "grid.n=20",
            "timing.enabled=false"]
    done = run_py(f"hydra.run.dir={root}/results/runs/done", *base)
    sweep = run_py("-m", "fn=sin,tanh", f"hydra.sweep.dir={root}/results/sweeps/s", *base)
    assert (done.status, sweep.status) == (0, 0), done.stderr + sweep.stderr
    (root / "file.txt").write_text("not a folder\n")
    (root / "readonly").mkdir()
    read_only = make_read_only(root / "readonly")
    (root / "results" / "runs" / "held").mkdir()
    claim = Claim(root / "results" / "runs" / "held")  # as if another dydx process ran there
    yield root, read_only
    claim.release()
    make_writable(root / "readonly")


def command(args: list[str], root: Path) -> list[str]:
    """The corpus line, aimed at the world (results, cache) unless it names its own."""
    args = [a.format(world=root) for a in args]
    for default in (f"out_root={root}/results", f"reference.cache_dir={root}/cache",
                    "device=cpu"):
        if not any(a.startswith(default.split("=")[0] + "=") for a in args):
            args.append(default)
    return args


def test_the_corpus_has_at_least_60_command_lines():
    assert len(CORPUS) >= 60 and len({case[0] for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("name, args, says", CORPUS, ids=[case[0] for case in CORPUS])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(world, monkeypatch, name, args, says):
    root, read_only = world
    if "readonly" in " ".join(args) and not read_only:
        pytest.skip("this machine cannot make a folder read-only for root (no chattr)")
    monkeypatch.chdir(ROOT)  # fn=py imports tests.userpkg from the working directory
    before = tree_digest(root)
    result = run_py(*command(args, root))
    lines = result.stderr.splitlines()
    assert result.status == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("dydx: error: "), result.stderr
    assert says.format(world=root) in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert tree_digest(root) == before
    assert not (root / "pwned").exists()


@pytest.mark.slow
def test_bad_input_through_a_real_command_line(world):
    """The subset as `python run.py` subprocesses, and an fn.expr with a byte that is not
    UTF-8 (Python hands it over as a lone surrogate)."""
    root, _ = world
    cases = {name: (args, says) for name, args, says in CORPUS if name in SUBPROCESS}
    argvs = {name: [sys.executable, "run.py", *command(args, root)]
             for name, (args, _) in cases.items()}
    argvs["undecodable_byte"] = [os.fsencode(sys.executable), b"run.py", b"fn=expr",
                                 b"fn.expr=x\xff", *(a.encode() for a in command([], root))]
    cases["undecodable_byte"] = ([], "the argument 'fn.expr=x\\udcff' holds bytes that are not "
                                     "UTF-8 text ('\\udcff' at column 10)")
    before = tree_digest(root)

    def run(argv):
        return subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(argvs, pool.map(run, argvs.values())))
    for name, result in done.items():
        stderr = result.stderr.decode("utf-8", "backslashreplace")
        assert result.returncode == 2, (name, stderr)
        assert stderr.count("\n") == 1 and stderr.startswith("dydx: error: "), (name, stderr)
        assert cases[name][1].format(world=root) in stderr, (name, stderr)
        assert b"Traceback" not in result.stdout + result.stderr
    assert tree_digest(root) == before
