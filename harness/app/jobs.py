"""The body of run.py's @hydra.main: one run, or one job of a sweep.

Both claim their folder first (harness.claims.Claim), so two processes never write into
one folder, and both run the study under the time limit (time_limit_s, the reference
included) with a heartbeat. A single run (`python run.py ...`) refuses a folder that holds
a finished run or a sweep, records any failure it can (unsupported, timeout, error, oom)
and ends with that status's exit code (harness.errors.EXIT); a bad config is one line,
exit 2, and leaves nothing behind. A sweep job (`python run.py -m ...`) must never stop its
siblings: it skips work already finished in the sweep folder (resume), reruns a job whose
record is damaged, and turns a bad config or an exception into a records row.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from functools import partial
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from harness.app.timing_worker import run_workers
from harness.claims import Claim
from harness.config.validate import method_params, time_limit, validate
from harness.errors import EXIT, DydxError, FolderError, Interrupted, Stop
from harness.multirun import manifest
from harness.multirun.heartbeat import heartbeat
from harness.multirun.launchers import SINGLE_RUN, LauncherInfo, available_cpus, job_threads
from harness.networks.presets import NETWORKS
from harness.report.format import headline, summary_line
from harness.report.run_page import write_run
from harness.results import (TRACEBACK, claimed_run, discard_unfinished, is_damaged, load_record,
                             overrides_text, write_traceback)
from harness.study.flow import Outcome, run_study
from harness.study.grid import grid_size
from harness.study.record import OK, failure, identity_columns
from harness.timelimit import TimeLimitExceeded, time_limit as limited, timeout_reason

# A run's exit status from its record's status.
RUN_EXIT = {OK: EXIT["ok"], "unsupported": EXIT["unsupported"], "timeout": EXIT["timeout"],
            "error": EXIT["failed"], "oom": EXIT["failed"]}
# Written by faulthandler only if the study stays stuck in native code past its limit.
STUCK = "stuck-traceback.txt"


def run_job(cfg: DictConfig) -> dict:
    """The body of run.py's main: one run, or one job of a sweep. A DydxError leaves as
    Stop, which Hydra's job runner does not catch and print around."""
    hydra_cfg = HydraConfig.get()
    try:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            return sweep_job(cfg, hydra_cfg)
        return single_run(cfg, hydra_cfg)
    except DydxError as err:
        raise Stop(err) from None


def compute(cfg: DictConfig, run_dir: Path, log) -> Outcome:
    """The study a config asks for; raises DydxError (one line) for one that cannot run."""
    study = validate(cfg)
    workers = partial(run_workers, OmegaConf.to_yaml(cfg, resolve=True), log=log,
                      max_run_time=study.timing.max_run_time)
    return run_study(study, run_dir, log=log, timing_workers=workers)


def context_columns(cfg: DictConfig, overrides: list[str], launcher: LauncherInfo,
                    job_num: int) -> dict:
    """Columns every record gets from how the run was launched and configured."""
    return {"overrides": overrides_text(overrides), **launcher.columns(), "job_num": job_num,
            "method_params": json.dumps(method_params(cfg))}


def single_run(cfg: DictConfig, hydra_cfg: DictConfig) -> dict:
    """Validate, claim the folder, run, store, summarize; exit with the record's status."""
    run_dir = Path(hydra_cfg.runtime.output_dir)
    # A bug keeps what it wrote (its traceback is recorded there); a refusal or Ctrl-C not.
    with claimed_run(run_dir, "hydra.run.dir", discard_on=(DydxError, KeyboardInterrupt)):
        record = _single_run(cfg, hydra_cfg, run_dir)
    print(summary_line(record))
    print(f"results: {run_dir}")
    if record["status"] != OK:
        raise SystemExit(RUN_EXIT[record["status"]])
    return record


def _single_run(cfg: DictConfig, hydra_cfg: DictConfig, run_dir: Path) -> dict:
    limit = time_limit(cfg)
    print(f"dydx: {fn_name(cfg.fn) or cfg.fn.label} by {cfg.method.name} in "
          f"{cfg.dtype.name} ...", flush=True)
    context = context_columns(cfg, list(hydra_cfg.overrides.task), SINGLE_RUN, -1)
    say = lambda line: print(line, flush=True)  # noqa: E731
    try:
        return _run_recorded(cfg, run_dir, context, limit, say, invalid_raises=True)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: nothing of this run was kept in {run_dir}; run the "
                          f"command again to start it over") from None


def sweep_job(cfg: DictConfig, hydra_cfg: DictConfig) -> dict:
    """One job of a sweep: skip if finished, else run it and record ok or the failure."""
    run_dir = Path(hydra_cfg.runtime.output_dir)
    sweep_dir = Path(str(hydra_cfg.sweep.dir))
    job = manifest.job_context(hydra_cfg)
    shown = " ".join(job.shown)
    decision, where = manifest.resume_decision(job, sweep_dir, run_dir)
    if decision == "skip":
        if where != run_dir:
            discard_unfinished(run_dir)
        record = load_record(where)
        print(f"{job.tag} {shown}: skipped, finished earlier in {where.name}: {headline(record)}",
              flush=True)
        return record
    if decision == "conflict":
        print(f"{job.tag} {shown}: not run: {run_dir} holds a finished run of another job "
              f"(this folder was used for a different sweep); use a new hydra.sweep.dir",
              file=sys.stderr, flush=True)
        return {"status": "conflict", "status_reason": f"{run_dir} holds another job"}
    try:
        return _sweep_run(cfg, run_dir, job, shown)
    except FolderError as err:  # another process holds this job's folder
        print(f"{job.tag} {shown}: not run: {err}", file=sys.stderr, flush=True)
        return {"status": "conflict", "status_reason": str(err)}
    except KeyboardInterrupt:
        discard_unfinished(run_dir)
        raise


def _sweep_run(cfg: DictConfig, run_dir: Path, job: manifest.JobContext, shown: str) -> dict:
    with Claim(run_dir) as claim:
        claim.remove_temp_files()
        if is_damaged(run_dir):
            print(f"{job.tag} {shown}: warning: {run_dir.name}/records.parquet is damaged "
                  f"(unreadable); running the job again", file=sys.stderr, flush=True)
        # timing.num_threads, when given, is applied by the timer itself; otherwise parallel
        # local workers share the CPUs (the whole worker process uses that many threads).
        threads = job_threads(job.launcher, available_cpus())
        if threads and cfg.timing.num_threads is None:
            torch.set_num_threads(threads)
        say = lambda line: print(f"{job.tag} {line.strip()}", flush=True)  # noqa: E731
        context = context_columns(cfg, job.overrides, job.launcher, job.num)
        start = time.perf_counter()
        try:
            limit = time_limit(cfg)
        except DydxError as err:
            return _record_failure(cfg, run_dir, context, "invalid", str(err))
        record = _run_recorded(cfg, run_dir, context, limit, say, invalid_raises=False)
    print(f"{job.tag} {shown}: {headline(record)} ({time.perf_counter() - start:.1f} s)",
          flush=True)
    return record


def _run_recorded(cfg: DictConfig, run_dir: Path, context: dict, limit: float,
                  say: Callable[[str], None], invalid_raises: bool) -> dict:
    """Run the study under the time limit; a failure becomes a failure record (a bad
    config raises instead when `invalid_raises`: a single run stores nothing for it)."""
    stuck = lambda: _stuck(cfg, run_dir, context, limit, say)  # noqa: E731
    try:
        with heartbeat(say), limited(limit, on_stuck=stuck, stuck_file=run_dir / STUCK):
            outcome = compute(cfg, run_dir, log=say)
    except DydxError as err:
        if invalid_raises:
            raise
        return _record_failure(cfg, run_dir, context, "invalid", str(err))
    except TimeLimitExceeded:
        return _record_failure(cfg, run_dir, context, "timeout", timeout_reason(limit))
    except Exception as err:  # noqa: BLE001 - any failure of the study is recorded
        write_traceback(run_dir, traceback.format_exc())
        status = "oom" if isinstance(err, (MemoryError, torch.OutOfMemoryError)) else "error"
        reason = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        return _record_failure(cfg, run_dir, context, status,
                               f"{reason} (traceback: {run_dir / TRACEBACK})")
    record = {**outcome.record, **context}
    write_run(run_dir, record, outcome.points, OmegaConf.to_yaml(cfg, resolve=True),
              figures=cfg.get("figures", True))
    return record


def _stuck(cfg: DictConfig, run_dir: Path, context: dict, limit: float,
           say: Callable[[str], None]) -> None:
    """The study is stuck in native code past its limit and cannot be interrupted: record
    the timeout from this watchdog thread and end the process (status 4)."""
    reason = timeout_reason(limit) + "; it was stuck in native code, so the process was ended"
    _record_failure(cfg, run_dir, context, "timeout", reason)
    say(f"timeout: {reason}; a sweep stops here: rerun it with its hydra.sweep.dir to "
        f"resume (this job is recorded)")
    sys.stdout.flush()
    os._exit(EXIT["timeout"])


def _record_failure(cfg: DictConfig, run_dir: Path, context: dict, status: str,
                    reason: str) -> dict:
    record = {**failure_record(cfg, run_dir, status, reason), **context}
    write_run(run_dir, record, pd.DataFrame(), OmegaConf.to_yaml(cfg, resolve=True))
    return record


def fn_name(fn: DictConfig) -> str:
    """The name the study would give the function (records must group the same way)."""
    if fn.kind == "nn":
        return f"nn.{fn.name}"
    if fn.kind == "torch":
        return f"torch.{fn.name}"
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
