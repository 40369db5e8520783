"""The Python API: dydx from a notebook, a script or another project's test suite.

    import torch, harness as dydx
    r = dydx.study(torch.special.erfcx, method="autograd", dtype="float32",
                   grid=dict(start=0, stop=100, n=10_001))
    r.record          # a Record: the one-row result, typed (r.record.to_frame() for pandas)
    r.points          # the per-point DataFrame
    r.plot()          # the run's figures, as matplotlib Figures
    s = dydx.sweep(fn=["sin", "tanh"], method=["autograd", "finite"],
                   dtype=["float32", "float64"])
    s.summary         # one row per job; s.report(out=...) writes report.md and report.html
    dydx.load("results/sweeps/<folder>")    # a stored run or sweep, as the same objects

A thin layer over the command line's own path, never a second one: each job's config is
composed from conf/ as `python run.py` composes it (harness.config.store.compose_config),
checked by harness.config.validate, run by harness.study.flow.run_study, stored by
harness.results and reported by harness.report. Nothing is written unless `out=` names a
folder. Whatever the command line turns away with one line (bad input, a folder it must not
or cannot write) raises DydxError with that line (bad input: its kind ConfigError, a
ValueError), and a study runs under the same time limit (time_limit_s).
"""
from __future__ import annotations

import itertools
import json
import math
import re
import sys
import time
import traceback
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, ContextManager, Mapping, Optional, Sequence, Union

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from harness.config.overrides import check_override
from harness.config.schema import DEVICES
from harness.config.store import compose_config, order_suffix
from harness.config.validate import method_params, time_limit, validate
from harness.dtypes import DTYPES
from harness.errors import ConfigError, DydxError, FolderError
from harness.functions.catalog import FUNCTIONS, TARGET, callable_function
from harness.methods import METHODS
from harness.multirun.callback import claim_sweep, end_messages
from harness.multirun.launchers import LauncherInfo
from harness.multirun.manifest import finished_index, varying_keys
from harness.networks.presets import NETWORKS
from harness.registry import choice_error
from harness.report.format import failure_line, headline, summary_line
from harness.report.run_page import run_figures, write_run
from harness.report.sweep_page import EMBED_RUNS, write_sweep_report
from harness.results import (claimed_run, is_complete, job_key, load_points, load_record,
                             load_records, read_records, write_manifest)
from harness.study.flow import Outcome, make_spec, run_study
from harness.study.record import OK, failure
from harness.study.spec import Study
from harness.timelimit import TimeLimitExceeded, time_limit as limited, timeout_reason

__all__ = ["ConfigError", "DydxError", "Record", "RunResult", "SweepResult", "load", "study",
           "sweep"]

# A function to study: a registered name ("tanh"), "nn.GELU", a network preset, an
# expression in x ("x**2*sin(x)"), "package.module:function", or a Python callable.
FnLike = Union[str, Callable]
# What the records of API runs say launched them (the command line says single, basic, ...).
API = LauncherInfo("api", 1, True)


# --- results -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    """One study's record, typed: the headline columns as attributes, every stored column
    in `columns` (and as an attribute: `record.n_excluded`), `to_frame()` for pandas.

    Numbers a study did not produce (a failed run's errors, an untimed run's throughput,
    ULPs where every point is reference-limited) are NaN (None for counts); `status`,
    `status_reason` and the counts say why.
    """

    fn: str
    method: str
    dtype: str
    device: str
    n: Optional[int]
    status: str
    status_reason: str
    reference: str
    max_abs_err: float
    median_ulp: float
    max_ulp: float
    # Accurate points over those the reference resolves (the headline's pass rate).
    rel_pass_rate: float
    # Points with no correct digit; points whose error the reference cannot resolve.
    n_wrong: Optional[int]
    n_reference_limited: Optional[int]
    points_per_s: float
    time_median_s: float
    time_iqr_s: float
    cost_vs_forward: float
    columns: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Record":
        typed = {}
        for f in fields(cls):
            if f.name != "columns":
                typed[f.name] = _typed(row.get(f.name), f.type)
        return cls(**typed, columns=MappingProxyType(dict(row)))

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_frame(self) -> pd.DataFrame:
        """The record as the one-row table records.parquet holds."""
        return pd.DataFrame([dict(self.columns)])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "columns":
            raise AttributeError(name)
        try:
            return self.columns[name]
        except KeyError:
            raise AttributeError(f"the record has no column {name!r}") from None

    def __str__(self) -> str:
        return summary_line(dict(self.columns))


def _typed(value: Any, annotation: str) -> Any:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if annotation == "str":
        return "" if missing else str(value)
    if annotation == "float":
        return math.nan if missing else float(value)
    return None if missing else int(value)  # Optional[int]


@dataclass(frozen=True)
class RunResult:
    """One study: its record, its points, and the folder it is stored in (None: in memory)."""

    record: Record
    points: pd.DataFrame = field(repr=False)
    folder: Optional[Path] = None
    # config.yaml of the run, written with it when a sweep run in memory is reported.
    config_yaml: str = field(default="", repr=False, compare=False)

    def plot(self) -> list:
        """The run's figures (f and f' against the reference; |error| on a log scale)."""
        figures = run_figures(self.points, dict(self.record.columns))
        if not figures:
            raise ConfigError(f"{self.record.fn} by {self.record.method} has no points to "
                              f"plot: {failure_line(dict(self.record.columns))}")
        return list(figures.values())

    def __str__(self) -> str:
        return str(self.record) + (f"\nstored in {self.folder}" if self.folder else "")


@dataclass(frozen=True)
class SweepResult:
    """Every job of a sweep: `summary` (one row per record, as summary.parquet holds it),
    the runs, and the folder it is stored in (None: in memory until report(out=...))."""

    summary: pd.DataFrame = field(repr=False)
    folder: Optional[Path] = None
    # The runs computed in this session; a loaded sweep reads them from its folder.
    computed: tuple[RunResult, ...] = field(default=(), repr=False, compare=False)

    @property
    def runs(self) -> list[RunResult]:
        """Each job's RunResult, in the order of `summary`."""
        if self.computed:
            return list(self.computed)
        return [_stored_run(self.folder, d) for d in self.summary["job_dir"]] if self.folder else []

    def report(self, out: Optional[Union[str, Path]] = None,
               embed_runs: int = EMBED_RUNS) -> dict[str, Path]:
        """Write the sweep report (summary, tables, plots, report.md, report.html) and
        return {file name: path}. A sweep held in memory writes its runs into `out` first;
        a stored one rebuilds its report in place (or writes its runs into `out`)."""
        folder = Path(out) if out is not None else self.folder
        if folder is None:
            raise ConfigError("this sweep was run without out=: give a folder, "
                              "s.report(out='results/sweeps/mine'), to write it there")
        with claim_sweep(folder, "out"):
            if folder != self.folder:
                _write_runs(folder, self.runs)
            paths = write_sweep_report(folder, embed_runs=embed_runs).paths
        return {name: Path(path) for name, path in paths.items()}

    def __str__(self) -> str:
        ok = int((self.summary["status"] == OK).sum()) if "status" in self.summary else 0
        where = f" in {self.folder}" if self.folder else ""
        return f"sweep of {len(self.summary)} records ({ok} ok){where}"


def _stored_run(folder: Path, job_dir: str) -> RunResult:
    """A run of a stored sweep, its record with `job_dir` as summary.parquet has it."""
    run_dir = folder / job_dir
    return RunResult(Record.from_row({**load_record(run_dir), "job_dir": job_dir}),
                     load_points(run_dir), run_dir)


def _write_runs(folder: Path, runs: Sequence[RunResult]) -> None:
    if folder.is_dir() and not load_records(folder).empty:
        raise FolderError(f"{folder} already holds finished runs; nothing was changed. "
                          f"Choose an empty folder")
    for run in runs:
        write_run(folder / str(run.record.columns["job_dir"]), dict(run.record.columns),
                  run.points, run.config_yaml)


# --- one job: a config composed as on the command line ------------------------------------

@dataclass(frozen=True)
class _Job:
    study: Study
    config: DictConfig
    # The command line that asks for the same study: the record's `overrides`, the job's key.
    overrides: tuple[str, ...]

    @property
    def label(self) -> str:
        """What a sweep job's folder is named after, as hydra.sweep.subdir names it."""
        c = self.config
        return f"{c.fn.label}_{c.method.name}_{c.dtype.name}{order_suffix(c.order)}"


def _job(fn: FnLike, method: str, dtype: str, device: str, order: int,
         settings: Mapping[str, Any]) -> _Job:
    """Compose, fill and validate one study's config, or raise ConfigError."""
    group, values, function = _fn_choice(fn, settings.get("name"), settings.get("derivative"))
    for key, value, choices in (("method", method, METHODS.names()), ("dtype", dtype, list(DTYPES)),
                                ("device", device, list(DEVICES))):
        if value not in choices:
            raise ConfigError(choice_error(key, value, choices))
    cfg = compose_config([f"fn={group}", f"method={method}", f"dtype={dtype}", f"device={device}"])
    _fill(cfg, "fn", values, checked=False)
    _fill(cfg, "method", settings.get("params") or {})
    for key in ("grid", "timing", "reference"):
        _fill(cfg, key, _section(key, settings.get(key)))
    if not settings.get("writes") and "cache_dir" not in (settings.get("reference") or {}):
        cfg.reference.cache_dir = None  # nothing is written unless asked
    for key, value in (("order", order), ("seed", settings.get("seed", 0)),
                       ("time_limit_s", settings.get("time_limit_s"))):
        if value is not None:
            check_override(key, [value])
            _set(cfg, key, value)
    time_limit(cfg)  # > 0 seconds, or ConfigError now rather than when the job runs
    return _Job(validate(cfg, function), cfg, tuple(_overrides(cfg, group, values, settings)))


def _fn_choice(fn: FnLike, name: Optional[str], derivative) -> tuple[str, dict, Any]:
    """fn -> (its config group, values for cfg.fn, a Function for a callable or None)."""
    if callable(fn):
        label = re.sub(r"[^A-Za-z0-9._-]+", "_", name or "").strip("_")
        function = _checked(lambda: callable_function(fn, name, derivative))
        return "py", {"name": function.name, "label": label or "py"}, function
    if not isinstance(fn, str):
        raise ConfigError(f"fn must be a function name, an expression in x, "
                          f"'package.module:function' or a callable, got {type(fn).__name__}")
    if derivative is not None and not TARGET.match(fn.strip()):
        raise ConfigError(f"derivative= is the trusted derivative of your own function (a "
                          f"callable or 'package.module:function'), not of fn={fn!r}")
    text = fn.strip()
    if text in FUNCTIONS or text in NETWORKS:
        return text, {}, None
    if text.startswith("nn."):
        return "nn", {"name": text[len("nn."):]}, None
    if TARGET.match(text):
        if derivative is not None and not isinstance(derivative, str):
            raise ConfigError(f"with fn={text!r}, give derivative= as 'package.module:function' "
                              f"too (or pass both as callables)")
        return "py", {"target": text, "derivative": derivative}, None
    if re.fullmatch(r"[A-Za-z_]\w*", text) and text != "x":
        raise ConfigError(choice_error("fn", text, FUNCTIONS.names() + NETWORKS.names())
                          + "; or nn.<Class>, an expression in x, 'package.module:function' "
                            "or a Python callable")
    return "expr", {"expr": text}, None


def _checked(build):
    try:
        return build()
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _section(key: str, value) -> Mapping:
    """grid=dict(...), reference=dict(...), timing=dict(...) or timing=False/True."""
    if value is None:
        return {}
    if key == "timing" and isinstance(value, bool):
        return {"enabled": value}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a dict of settings (or None), got {type(value).__name__}")
    return value


def _fill(cfg: DictConfig, key: str, values: Mapping, checked: bool = True) -> None:
    """Set cfg.<key>.<name> for each value. A name the section lacks or a value its type
    cannot take raises the line the command line gives for `key.name=value`
    (harness.config.overrides); `checked=False` for values the API itself chose."""
    node = cfg[key]
    with open_dict(node):
        for name, value in values.items():
            if checked:
                check_override(f"{key}.{name}", [value], [str(cfg.method.name)])
            _set(node, name, value, prefix=f"{key}.")


def _set(node: DictConfig, name: str, value, prefix: str = "") -> None:
    try:
        node[name] = value
    except OmegaConfBaseException as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(f"{prefix}{name}: {first}") from None


def _overrides(cfg: DictConfig, group: str, values: Mapping, settings: Mapping) -> list[str]:
    """The `python run.py` overrides that ask for this study (a callable: fn=py fn.name=...)."""
    out = [f"fn={group}"] + [f"fn.{k}={v}" for k, v in values.items()
                             if v is not None and k != "label"]
    out += [f"method={cfg.method.name}", f"dtype={cfg.dtype.name}", f"device={cfg.device.name}"]
    out += [f"method.{k}={v}" for k, v in (settings.get("params") or {}).items()]
    for key in ("grid", "timing", "reference"):
        out += [f"{key}.{k}={v}" for k, v in _section(key, settings.get(key)).items()]
    out += [f"order={cfg.order}"] if cfg.order != 1 else []
    out += [f"time_limit_s={cfg.time_limit_s}"] if settings.get("time_limit_s") is not None else []
    return out


def _context(job: _Job, num: int) -> dict:
    """The columns the command line adds to a record from how the run was launched."""
    return {"overrides": " ".join(job.overrides), **API.columns(), "job_num": num,
            "method_params": json.dumps(method_params(job.config))}


def _print(line: str) -> None:
    print(line, flush=True)


def _quiet(line: str) -> None:
    pass


# --- the three entry points ---------------------------------------------------------------

def study(fn: FnLike = "sin", method: str = "autograd", dtype: str = "float64", *,
          device: str = "auto", order: int = 1, grid: Optional[Mapping] = None,
          params: Optional[Mapping] = None, timing: Union[Mapping, bool, None] = None,
          reference: Optional[Mapping] = None, seed: int = 0, name: Optional[str] = None,
          derivative: Optional[Callable] = None, out: Union[str, Path, None] = None,
          time_limit_s: Optional[float] = None, quiet: bool = False) -> RunResult:
    """One study, as `python run.py fn=... method=... dtype=...` runs it.

    fn: a registered name ("tanh"), "nn.GELU", a network preset, an expression in x
        ("x**2*sin(x)"), "package.module:function", or a Python callable of one tensor (a
        torch.autograd.Function class is used through .apply); `name` names a callable in
        the record, `derivative` is a callable's trusted derivative (the reference;
        without it, float64 Ridders extrapolation of the forward).
    grid, timing, reference: the settings of `grid.*`, `timing.*`, `reference.*`
        (timing=False skips timing); params: the method's parameters (`method.<name>`).
    out: a folder to store the run in, as a run folder of the command line; without it
        nothing is written (not even the reference cache). A folder that holds a finished
        run or a sweep, that another process is writing, or that cannot be written is
        refused (DydxError) before anything runs.
    time_limit_s: seconds the study may take, the reference included (default: the
        config's, 600); past it the record has status `timeout`. Python code (yours too)
        is interrupted; a call stuck inside native code is not (run.py ends its process).
    quiet: no progress lines (per-point methods report every 2000 points).
    A method that cannot do this function, dtype or device returns a record with status
    `unsupported` and its reason, as the command line does. Everything the command line
    turns away with one line raises DydxError with that line (bad input: ConfigError).
    """
    job = _job(fn, method, dtype, device, order, dict(
        grid=grid, params=params, timing=timing, reference=reference, seed=seed, name=name,
        derivative=derivative, writes=out is not None, time_limit_s=time_limit_s))
    folder = None if out is None else Path(out)
    # `out`, held as run.py holds its run folder; a run that raises leaves nothing there.
    with nullcontext() if folder is None else claimed_run(folder, "out"):
        record, points = _limited_run(job, folder or Path("."), _quiet if quiet else _print)
        record = {**record, **_context(job, -1)}
        config_yaml = OmegaConf.to_yaml(job.config, resolve=True)
        if folder is not None:
            write_run(folder, record, points, config_yaml)
    return RunResult(Record.from_row(record), points, folder, config_yaml)


def _limited_run(job: _Job, run_dir: Path, log) -> tuple[dict, pd.DataFrame]:
    """run_study under the job's time limit (time_limit_s, the reference included); past
    it, a record with status timeout and its reason, as on the command line. Only Python
    code is interrupted: the API never ends the caller's process, as run.py's last
    backstop does for code stuck in a native call."""
    limit = time_limit(job.config)
    try:
        with limited(limit):
            outcome: Outcome = run_study(job.study, run_dir, log=log)
    except TimeLimitExceeded:
        identity = make_spec(job.study).identity(run_dir)
        return failure(identity, "timeout", timeout_reason(limit)), pd.DataFrame()
    return outcome.record, outcome.points


def _listed(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def sweep(fn: Union[FnLike, Sequence[FnLike]] = "sin",
          method: Union[str, Sequence[str]] = "autograd",
          dtype: Union[str, Sequence[str]] = "float64", *,
          device: Union[str, Sequence[str]] = "auto", order: Union[int, Sequence[int]] = 1,
          params: Optional[Mapping[str, Any]] = None, grid: Optional[Mapping] = None,
          timing: Union[Mapping, bool, None] = None, reference: Optional[Mapping] = None,
          seed: int = 0, out: Union[str, Path, None] = None,
          time_limit_s: Optional[float] = None, quiet: bool = False) -> SweepResult:
    """Every combination of the listed values, as `python run.py -m` runs them, in order.

    fn, method, dtype, device, order and each value of `params` may be a list; the other
    arguments are study()'s. Every combination is composed and checked before any runs, so
    bad input raises ConfigError at once. A job that fails (unsupported, past its time
    limit, an exception in your function) becomes a record with its status and reason, and
    the others go on. With `out`, the folder is held for this sweep alone (DydxError if a
    finished run or a live sweep has it), each job is stored in
    `out/<num>_<fn>_<method>_<dtype>/`, jobs already finished there are skipped (resume),
    and the sweep report is written when it ends.
    """
    axes = {"fn": _listed(fn), "method": _listed(method), "dtype": _listed(dtype),
            "device": _listed(device), "order": _listed(order),
            **{f"method.{k}": _listed(v) for k, v in (params or {}).items()}}
    folder = None if out is None else Path(out)
    settings = dict(grid=grid, timing=timing, reference=reference, seed=seed,
                    writes=folder is not None, time_limit_s=time_limit_s)
    combinations = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    jobs = [_combination_job(values, settings) for values in combinations]
    say = _quiet if quiet else _print
    claim: ContextManager = nullcontext() if folder is None else claim_sweep(folder, "out")
    with claim:
        manifest = _start(folder, jobs, axes, say)
        varying = [key for key, values in axes.items() if len(values) > 1]
        runs = [_sweep_job(job, f"[{num + 1}/{len(jobs)}] " + " ".join(
                    f"{k}={_shown(values[k])}" for k in varying), num, folder, manifest, say)
                for num, (job, values) in enumerate(zip(jobs, combinations))]
        summary = pd.DataFrame([dict(r.record.columns) for r in runs])
        if folder is None:
            return SweepResult(summary, None, tuple(runs))
        outcome = write_sweep_report(folder)
    for line in end_messages(folder, manifest, outcome.records, outcome.paths,
                             headline=outcome.headline):
        say(line)
    return SweepResult(outcome.records, folder, tuple(runs))


def _combination_job(values: dict, settings: dict) -> _Job:
    params = {k[len("method."):]: v for k, v in values.items() if k.startswith("method.")}
    try:
        return _job(values["fn"], values["method"], values["dtype"], values["device"],
                    values["order"], {**settings, "params": params})
    except ConfigError as err:
        shown = " ".join(f"{k}={_shown(v)}" for k, v in values.items())
        raise ConfigError(f"sweep job {shown}: {err}") from None


def _shown(value) -> str:
    return (getattr(value, "__name__", None) or str(value)) if callable(value) else str(value)


def _start(folder: Optional[Path], jobs: list[_Job], axes: dict, say) -> dict:
    """The sweep manifest (sweep.json, written when the sweep is stored) and its first line."""
    job_lists = [list(job.overrides) for job in jobs]
    finished = finished_index(folder) if folder is not None and folder.is_dir() else {}
    manifest = {"command": "harness.sweep(" + ", ".join(
                    f"{k}={[_shown(v) for v in values]}" for k, values in axes.items()) + ")",
                "total": len(jobs), "jobs": job_lists, "varying": varying_keys(job_lists),
                "launcher": asdict(API) | {"parallel": API.parallel},
                "finished": finished, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    where = f" into {folder}" if folder is not None else " (in memory: out= stores it)"
    done = sum(job_key(j) in finished for j in job_lists)
    say(f"dydx: sweep of {len(jobs)} jobs{where}" +
        (f"; {done} already finished there and will be skipped" if done else ""))
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        write_manifest(folder, manifest)
    return manifest


def _sweep_job(job: _Job, tag: str, num: int, folder: Optional[Path], manifest: dict,
               say) -> RunResult:
    """One job of a sweep: skipped when finished in the folder, else run and recorded."""
    done = manifest["finished"].get(job_key(list(job.overrides)))
    if folder is not None and done is not None and is_complete(folder / done):
        say(f"{tag}: skipped, finished earlier in {done}")
        return _stored_run(folder, done)
    job_dir = f"{num}_{job.label}"
    run_dir = folder / job_dir if folder is not None else Path(job_dir)
    start = time.perf_counter()
    record, points = _recorded(job, run_dir, lambda line: say(f"{tag} {line.strip()}"),
                               say is not _quiet)
    record = {**record, **_context(job, num), "job_dir": job_dir}
    config_yaml = OmegaConf.to_yaml(job.config, resolve=True)
    if folder is not None:
        write_run(run_dir, record, points, config_yaml)
    say(f"{tag}: {headline(record)} ({time.perf_counter() - start:.1f} s)")
    return RunResult(Record.from_row(record), points, run_dir if folder else None, config_yaml)


def _recorded(job: _Job, run_dir: Path, log, tell: bool) -> tuple[dict, pd.DataFrame]:
    """run_study; an exception (in your function, say) becomes the record's status and
    reason, so one failing job does not stop the sweep (as in `python run.py -m`); its
    traceback goes to stderr unless `tell` is false (quiet)."""
    try:
        return _limited_run(job, run_dir, log)
    except Exception as err:  # noqa: BLE001 - a sweep job records any failure and goes on
        if tell:
            traceback.print_exc(file=sys.stderr)
        status = "oom" if isinstance(err, (MemoryError, torch.OutOfMemoryError)) else "error"
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
        return failure(make_spec(job.study).identity(run_dir), status, reason), pd.DataFrame()


def load(path: Union[str, Path]) -> Union[RunResult, SweepResult]:
    """A stored run folder as a RunResult; a sweep folder (or any folder of runs, or a
    stored summary.parquet/.csv) as a SweepResult."""
    source = Path(path)
    if source.is_dir() and is_complete(source):
        return RunResult(Record.from_row(load_record(source)), load_points(source), source)
    try:
        records = read_records(source)
    except FileNotFoundError as err:
        raise ConfigError(str(err)) from None
    return SweepResult(records, source if source.is_dir() else None)
