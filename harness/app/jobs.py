"""The body of run.py's @hydra.main: one run, or one job of a sweep.

A single run (`python run.py ...`) fails loudly: a bad config exits with status 2 and an
exception propagates. A sweep job (`python run.py -m ...`) must never stop its siblings:
it skips work already finished in the sweep folder (resume), and a bad config or an
exception becomes a records row with status invalid/error/oom and its reason.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from harness.app.commandline import fail
from harness.app.timing_worker import run_workers
from harness.config.validate import ConfigError, method_params, validate
from harness.multirun import manifest
from harness.multirun.heartbeat import heartbeat
from harness.multirun.launchers import SINGLE_RUN, LauncherInfo, available_cpus, job_threads
from harness.networks.presets import NETWORKS
from harness.report.format import headline, summary_line
from harness.report.run_page import write_run
from harness.results import is_complete, load_record
from harness.study.flow import Outcome, run_study
from harness.study.grid import grid_size
from harness.study.record import failure, identity_columns


def run_job(cfg: DictConfig) -> dict:
    """The body of run.py's main: one run, or one job of a sweep."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return sweep_job(cfg, hydra_cfg)
    return single_run(cfg, hydra_cfg)


def _remove_if_empty(run_dir: Path) -> None:
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()


def _reject(run_dir: Path, message: str) -> None:
    """Fail without leaving an empty folder behind (Hydra creates it before we run)."""
    _remove_if_empty(run_dir)
    fail(message)


def compute(cfg: DictConfig, run_dir: Path, log) -> Outcome:
    """The study a config asks for; raises ConfigError (one line) for one that cannot run."""
    study = validate(cfg)
    workers = partial(run_workers, OmegaConf.to_yaml(cfg, resolve=True), log=log,
                      max_run_time=study.timing.max_run_time)
    return run_study(study, run_dir, log=log, timing_workers=workers)


def context_columns(cfg: DictConfig, overrides: list[str], launcher: LauncherInfo,
                    job_num: int) -> dict:
    """Columns every record gets from how the run was launched and configured."""
    return {"overrides": " ".join(overrides), **launcher.columns(), "job_num": job_num,
            "method_params": json.dumps(method_params(cfg))}


def single_run(cfg: DictConfig, hydra_cfg: DictConfig) -> dict:
    """Validate, refuse to overwrite a finished run, run, store, summarize."""
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if is_complete(run_dir):
        fail(f"{run_dir} already holds a finished run; nothing was changed. "
             f"Choose another hydra.run.dir")
    print(f"dydx: {fn_name(cfg.fn) or cfg.fn.label} by {cfg.method.name} in "
          f"{cfg.dtype.name} ...", flush=True)
    try:
        outcome = compute(cfg, run_dir, log=lambda line: print(line, flush=True))
    except ConfigError as err:
        _reject(run_dir, str(err))
    record = {**outcome.record,
              **context_columns(cfg, list(hydra_cfg.overrides.task), SINGLE_RUN, -1)}
    write_run(run_dir, record, outcome.points, OmegaConf.to_yaml(cfg, resolve=True))
    print(summary_line(record))
    print(f"results: {run_dir}")
    return record


def sweep_job(cfg: DictConfig, hydra_cfg: DictConfig) -> dict:
    """One job of a sweep: skip if finished, else run it and record ok or the failure."""
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweep_dir = Path(str(hydra_cfg.sweep.dir))
    job = manifest.job_context(hydra_cfg)
    shown = " ".join(job.shown)
    decision, where = manifest.resume_decision(job, sweep_dir, run_dir)
    if decision == "skip":
        if where != run_dir:
            _remove_if_empty(run_dir)
        record = load_record(where)
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
    print(f"{job.tag} {shown}: {headline(record)} ({time.perf_counter() - start:.1f} s)",
          flush=True)
    return record


def _run_recorded(cfg: DictConfig, run_dir: Path, job: manifest.JobContext, context: dict) -> dict:
    """Run the study; any failure becomes a failure record instead of an exception."""
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    # timing.num_threads, when given, is applied by the timer itself; otherwise parallel
    # local workers share the CPUs (the whole worker process uses that many threads).
    threads = job_threads(job.launcher, available_cpus())
    if threads and cfg.timing.num_threads is None:
        torch.set_num_threads(threads)
    say = lambda line: print(f"{job.tag} {line.strip()}", flush=True)  # noqa: E731
    try:
        with heartbeat(say):
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
    write_run(run_dir, record, pd.DataFrame(), config_yaml)
    return record


def fn_name(fn: DictConfig) -> str:
    """The name the study would give the function (records must group the same way)."""
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
    return grid_size(cfg.grid)


def failure_record(cfg: DictConfig, run_dir: Path, status: str, reason: str) -> dict:
    """The record of a job that produced no numbers: what was asked, and why it failed."""
    params = method_params(cfg)
    h = params.get("h")
    device = str(cfg.device.name)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    described = {"scheme": str(params.get("scheme", "") or "")}
    if isinstance(h, (int, float)):
        described.update(h=float(h), h_mode="absolute")
    order = int(cfg.get("order", 1)) if str(cfg.get("order", 1)).isdigit() else 1
    identity = identity_columns(fn_name(cfg.fn), str(cfg.fn.kind), str(cfg.method.name),
                                described, order, str(cfg.dtype.name), device, _size(cfg),
                                int(cfg.seed), run_dir)
    return failure(identity, status, reason)
