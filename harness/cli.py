"""What run.py does around Hydra: check the command line early, run one job, report errors.

`precheck` reads the overrides before Hydra composes anything, so an unknown function,
method, dtype, device or sweep preset fails at once, in one line that lists the choices,
before a sweep launches a single job. `run_job` is the body of the @hydra.main function.

A single run (`python run.py ...`) fails loudly: a bad config exits with status 2 and an
exception propagates. A sweep job (`python run.py -m ...`) must never stop its siblings:
it skips work already finished in the sweep folder (resume), and a bad config or an
exception becomes a records row with status invalid/error/oom and its reason.
"""
from __future__ import annotations

import json
import math
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from harness import sweep
from harness.config import DEVICES, DTYPES, ConfigError, validate
from harness.functions import FUNCTIONS
from harness.machine import machine_info
from harness.methods import METHODS
from harness.registry import choice_error
from harness.report import headline, summary_line, write_failed_run, write_run
from harness.results import is_complete
from harness.network_study import run_network_config
from harness.networks import NETWORKS
from harness.runner import Outcome, run_study

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
# Config groups whose choices precheck validates; `sweep` is the preset folder conf/sweep/.
CHECKED_GROUPS = ("fn", "method", "dtype", "device", "sweep")


def group_choices(group: str) -> list[str]:
    """Registered choices plus the YAML files in conf/<group>/."""
    registered = {"fn": FUNCTIONS.names(), "method": METHODS.names(), "dtype": list(DTYPES),
                  "device": list(DEVICES)}.get(group, [])
    files = [p.stem for p in (CONF_DIR / group).glob("*.yaml")]
    return sorted(set(registered) | set(files))


def _first_comment(path: Path) -> str:
    """A config file's description: its first comment line that is not a package header."""
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.lstrip("#").strip()
        if line.startswith("#") and text and not text.startswith("@package"):
            return text
    return ""


def _loader_options(group: str) -> list[str]:
    """Options Hydra knows for a group (plugin-provided ones too), when Hydra is running."""
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        return []
    return list(GlobalHydra.instance().config_loader().get_group_options(group))


# Launchers that Hydra's plugins provide without a file in conf/hydra/launcher/.
PLUGIN_LAUNCHERS = {
    "basic": "Hydra's default: one job at a time in this process; use it for timing studies.",
    "joblib": "Parallel on this machine, one job per CPU (hydra.launcher.n_jobs): right for "
              "accuracy sweeps; its timings are contended and marked, so time serially.",
    "submitit_local": "submitit on this machine: each job its own process, all at once; "
                      "the SLURM code path, testable here.",
    "submitit_slurm": "submitit's bare SLURM launcher; prefer slurm (dydx's fields and defaults).",
}


def preset_descriptions(group: str = "sweep") -> str:
    """'  name        description' per option of conf/<group>/ and Hydra's (for --help)."""
    files = {p.stem: p for p in (CONF_DIR / group).glob("*.yaml")}
    lines = []
    for name in sorted(set(files) | set(_loader_options(group))):
        about = _first_comment(files[name]) if name in files else \
            PLUGIN_LAUNCHERS.get(name, "(provided by a Hydra plugin)")
        lines.append(f"  {name:<16}{about}")
    return "\n".join(lines)


# `python run.py --help` lists the sweep presets with their descriptions, read from the
# files themselves so the help cannot drift from conf/sweep/ (see hydra.help in config.yaml).
OmegaConf.register_new_resolver("dydx_presets", preset_descriptions, replace=True)


def _values(override) -> list[str]:
    if not override.is_sweep_override():
        return [override.get_value_element_as_str()]
    if override.is_discrete_sweep():
        try:
            return list(override.sweep_string_iterator())
        except HydraException:  # glob(...) needs Hydra's config loader; let Hydra check it
            return []
    return []


def precheck(args: list[str]) -> str | None:
    """The first problem with a group choice on the command line, or None."""
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return None  # Hydra reports its own syntax errors
    for override in parsed:
        group = override.key_or_group.lstrip("+~")
        if group not in CHECKED_GROUPS:
            continue
        choices = group_choices(group)
        for value in _values(override):
            if value not in choices:
                return choice_error(group, value, choices)
    return None


def fail(message: str) -> None:
    print(f"dydx: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _reject(run_dir: Path, message: str) -> None:
    """Fail without leaving an empty folder behind (Hydra creates it before we run)."""
    _remove_if_empty(run_dir)
    fail(message)


def _remove_if_empty(run_dir: Path) -> None:
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()


def run_job(cfg: DictConfig) -> dict:
    """The body of run.py's main: one run, or one job of a sweep."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return sweep_job(cfg, hydra_cfg)
    return single_run(cfg, hydra_cfg)


def compute(cfg: DictConfig, run_dir: Path, log) -> Outcome:
    """The study a config asks for: a network's vector-Jacobian product, or an elementwise
    function's derivative. Raises ConfigError (one line) for a config that cannot run."""
    if cfg.fn.kind == "network":
        return run_network_config(cfg, run_dir)
    return run_study(validate(cfg), run_dir, seed=cfg.seed, log=log)


def context_columns(cfg: DictConfig, overrides: list[str], launcher: sweep.LauncherInfo,
                    job_num: int) -> dict:
    """Columns cli.py adds to every record: how the run was launched and configured."""
    # In the method's own field order, so labels read like its config: scheme before h.
    params = {k: v for k, v in OmegaConf.to_container(cfg.method, resolve=True).items()
              if k != "name"}
    return {"overrides": " ".join(overrides), **launcher.columns(), "job_num": job_num,
            "method_params": json.dumps(params)}


def single_run(cfg: DictConfig, hydra_cfg: DictConfig) -> dict:
    """Validate, refuse to overwrite a finished run, run, store, summarize."""
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if is_complete(run_dir):
        fail(f"{run_dir} already holds a finished run; nothing was changed. "
             f"Choose another hydra.run.dir")
    print(f"dydx: {_fn_name(cfg.fn) or cfg.fn.label} by {cfg.method.name} in "
          f"{cfg.dtype.name} ...", flush=True)
    try:
        outcome = compute(cfg, run_dir, log=lambda line: print(line, flush=True))
    except ConfigError as err:
        _reject(run_dir, str(err))
    record = {**outcome.record,
              **context_columns(cfg, list(hydra_cfg.overrides.task), sweep.SINGLE_RUN, -1)}
    write_run(run_dir, record, outcome.points, OmegaConf.to_yaml(cfg, resolve=True))
    print(summary_line(record))
    print(f"results: {run_dir}")
    return record


def sweep_job(cfg: DictConfig, hydra_cfg: DictConfig) -> dict:
    """One job of a sweep: skip if finished, else run it and record ok or the failure."""
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweep_dir = Path(str(hydra_cfg.sweep.dir))
    job = sweep.job_context(hydra_cfg)
    shown = " ".join(job.shown)
    decision, where = sweep.resume_decision(job, sweep_dir, run_dir)
    if decision == "skip":
        if where != run_dir:
            _remove_if_empty(run_dir)
        record = sweep.stored_record(where)
        print(f"{job.tag} {shown}: skipped, finished earlier in {where.name}: {headline(record)}",
              flush=True)
        return record
    if decision == "conflict":
        print(f"{job.tag} {shown}: not run: {run_dir} holds a finished run of another job "
              f"(this folder was used for a different sweep); use a new hydra.sweep.dir",
              file=sys.stderr, flush=True)
        return {"status": "conflict", "status_reason": f"{run_dir} holds another job"}
    context = context_columns(cfg, job.overrides, job.launcher, job.num)
    start = time.perf_counter()
    record = _run_recorded(cfg, run_dir, job, context)
    elapsed = time.perf_counter() - start
    print(f"{job.tag} {shown}: {headline(record)} ({elapsed:.1f} s)", flush=True)
    return record


def _run_recorded(cfg: DictConfig, run_dir: Path, job: sweep.JobContext, context: dict) -> dict:
    """Run the study; any failure becomes a failure record instead of an exception."""
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    # timing.num_threads, when given, is applied by the timer itself; otherwise parallel
    # local workers share the CPUs (the whole worker process uses that many threads).
    threads = sweep.job_threads(job.launcher, sweep.available_cpus())
    if threads and cfg.timing.num_threads is None:
        torch.set_num_threads(threads)
    say = lambda line: print(f"{job.tag} {line.strip()}", flush=True)  # noqa: E731
    try:
        with sweep.heartbeat(say):
            outcome = compute(cfg, run_dir, log=say)
    except ConfigError as err:
        return _record_failure(cfg, run_dir, context, "invalid", str(err), config_yaml)
    except Exception as err:  # noqa: BLE001 - a sweep job records any failure and goes on
        traceback.print_exc(file=sys.stderr)
        status = "oom" if isinstance(err, (MemoryError, torch.OutOfMemoryError)) else "error"
        reason = f"{type(err).__name__}: {err}".splitlines()[0]
        return _record_failure(cfg, run_dir, context, status, reason, config_yaml)
    record = {**outcome.record, **context}
    write_run(run_dir, record, outcome.points, config_yaml)
    return record


def _record_failure(cfg: DictConfig, run_dir: Path, context: dict, status: str, reason: str,
                    config_yaml: str) -> dict:
    record = {**failure_record(cfg, run_dir, status, reason), **context}
    write_failed_run(run_dir, record, config_yaml)
    return record


def _fn_name(fn: DictConfig) -> str:
    """The name the runner would give the function (records must group the same way)."""
    if fn.kind == "nn":
        return f"nn.{fn.name}"
    if fn.kind == "expr":
        return str(fn.expr or "").strip()
    if fn.kind == "py":
        return str(fn.get("target") or "")
    if fn.kind == "network":
        return str(fn.name)
    return str(fn.name or fn.label)


def _size(cfg: DictConfig) -> float:
    """Points on the grid, or elements of a network preset's input."""
    if cfg.fn.kind == "network" and cfg.fn.name in NETWORKS:
        return NETWORKS.get(cfg.fn.name).numel
    return _grid_size(cfg.grid)


def _grid_size(grid: DictConfig) -> float:
    try:
        if grid.n is not None:
            return int(grid.n)
        return max(0, math.ceil((grid.stop - grid.start) / grid.step))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return math.nan


def failure_record(cfg: DictConfig, run_dir: Path, status: str, reason: str) -> dict:
    """The record of a job that produced no numbers: what was asked, and why it failed."""
    params = {k: v for k, v in OmegaConf.to_container(cfg.method, resolve=True).items()
              if k != "name"}
    h = params.get("h")
    device = str(cfg.device.name)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return {
        "fn": _fn_name(cfg.fn), "fn_source": str(cfg.fn.kind), "method": str(cfg.method.name),
        "scheme": str(params.get("scheme", "") or ""),
        "h": float(h) if isinstance(h, (int, float)) else math.nan,
        "h_mode": "absolute" if isinstance(h, (int, float)) else "",
        "order": int(cfg.get("order", 1)) if str(cfg.get("order", 1)).isdigit() else 1,
        "dtype": str(cfg.dtype.name), "device": device, "n": _size(cfg),
        "status": status, "status_reason": reason,
        **machine_info(torch.device("cpu")),
        "seed": int(cfg.seed),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
    }
