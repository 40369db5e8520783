"""The Hydra side of a sweep: a callback that claims the sweep folder and writes the
manifest before a multirun, and the summary and report after it. Hydra calls both hooks
in the submitting process for every launcher, so this works the same with the basic,
joblib and submitit launchers; nothing here schedules jobs.

Hydra turns an Exception raised in a callback into a warning and runs the sweep anyway,
so a refusal (the folder is another sweep's, or a run's) crosses it as `Stop`.
"""
from __future__ import annotations

import shlex
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import pandas as pd
from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from harness.analysis.tables import missing_jobs
from harness.claims import Claim
from harness.errors import DydxError, FolderError, Incomplete, Interrupted, Stop
from harness.multirun.compose import compose_once
from harness.multirun.launchers import LauncherInfo, available_cpus, launcher_info
from harness.multirun.manifest import expand_jobs, finished_index, varying_keys
from harness.report.blocks import Table, render_text
from harness.report.format import summary_line
from harness.report.sweep_page import CONSOLE_ROWS, write_sweep_report
from harness.results import is_complete, job_key, read_manifest, write_manifest
from harness.study.record import OK


def _say(line: str) -> None:
    print(f"dydx: {line}", flush=True)


def resume_command(sweep_dir: Path) -> str:
    """The command that resumes this sweep: this one, into the same folder."""
    args = ["python", *sys.argv]
    if not any(arg.startswith("hydra.sweep.dir=") for arg in sys.argv):
        args.append(f"hydra.sweep.dir={sweep_dir}")
    return shlex.join(args)


def claim_sweep(sweep_dir: Path, knob: str = "hydra.sweep.dir") -> Claim:
    """The sweep folder for this sweep alone, cleared of the temp files killed writers left
    in it and its job folders; FolderError if a run or a live sweep has it. `knob` is the
    setting that chose the folder (hydra.sweep.dir; the Python API's out)."""
    if is_complete(sweep_dir):
        raise FolderError(f"{sweep_dir} holds a finished single run; a sweep there would "
                          f"replace its report. Choose another {knob}")
    claim = Claim(sweep_dir)
    claim.remove_temp_files("tables", "plots")
    for job_dir in (p for p in sweep_dir.iterdir() if p.is_dir() and p.name[0] != "."):
        try:
            with Claim(job_dir) as job:  # a job folder no one is writing: its leftovers go
                job.remove_temp_files()
        except FolderError:
            pass  # someone is writing there: their temp files are live
    return claim


class SweepCallback(Callback):
    """Claims the sweep folder and writes the manifest before a multirun, the summary and
    report after it. Hydra pickles callbacks into joblib and submitit workers: the claim
    and the Ctrl-C handler stay in the submitting process (see __getstate__)."""

    def __init__(self) -> None:
        self._claim: Optional[Claim] = None
        self._sigint: Any = None

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            self._claim = claim_sweep(sweep_dir)
        except DydxError as err:
            raise Stop(err) from None
        self._catch_ctrl_c(sweep_dir)
        jobs = expand_jobs(config)
        total = len(jobs) if jobs is not None else None
        info = launcher_info(config.hydra, total, available_cpus())
        compose_once(GlobalHydra.instance().config_loader(), in_process=str(
            config.hydra.launcher.get("_target_", "")).endswith(".BasicLauncher"))
        finished = finished_index(sweep_dir)
        manifest = {
            "command": shlex.join(["python", *sys.argv]),
            "total": total,
            "jobs": jobs,
            "varying": varying_keys(jobs) if jobs else [],
            "launcher": asdict(info) | {"parallel": info.parallel},
            "finished": finished,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_manifest(sweep_dir, manifest)
        _say(start_message(sweep_dir, total, info, jobs, finished, output_in_logs(config)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        manifest = read_manifest(sweep_dir) or {}
        try:
            outcome = write_sweep_report(sweep_dir)
        except FileNotFoundError as err:  # not one finished run
            raise Stop(Incomplete(f"{err}; resume with: {resume_command(sweep_dir)}")) from None
        except (OSError, ValueError) as err:
            raise Stop(Incomplete(f"the jobs ran but the sweep report could not be built "
                                  f"({type(err).__name__}: {err}); rebuild it with: "
                                  f"python -m harness.report {sweep_dir}")) from None
        finally:
            self._release()
        for line in end_messages(sweep_dir, manifest, outcome.records, outcome.paths,
                                 echo_jobs=output_in_logs(config), headline=outcome.headline):
            print(line, flush=True)
        missing = missing_jobs(outcome.records, manifest.get("jobs") or [])
        if missing:
            raise Stop(Incomplete(
                f"{len(missing)} of {len(manifest['jobs'])} jobs have no record (interrupted, "
                f"or their folder holds another sweep's run): {resume_command(sweep_dir)} "
                f"runs what is missing"))

    def _catch_ctrl_c(self, sweep_dir: Path) -> None:
        """Ctrl-C stops the sweep with one line that says how to resume it."""
        if threading.current_thread() is not threading.main_thread():
            return
        line = (f"interrupted: finished jobs are kept in {sweep_dir}; resume with: "
                f"{resume_command(sweep_dir)}")

        def interrupt(signum, frame):
            self._release()  # on_multirun_end will not come
            raise Interrupted(line)

        self._sigint = signal.signal(signal.SIGINT, interrupt)

    def _release(self) -> None:
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None
        if self._claim is not None:
            self._claim.release()
            self._claim = None


def output_in_logs(config: DictConfig) -> bool:
    """submitit runs each job in its own process whose output goes to log files."""
    return str(config.hydra.launcher.get("_target_", "")).startswith(
        "hydra_plugins.hydra_submitit_launcher")


def start_message(sweep_dir: Path, total: Optional[int], info: LauncherInfo,
                  jobs: Optional[list[list[str]]], finished: dict,
                  logs_elsewhere: bool = False) -> str:
    workers = f"{info.n_workers} at a time" if info.n_workers else "concurrency unknown"
    line = f"sweep of {total if total is not None else 'an unknown number of'} jobs into " \
           f"{sweep_dir} (launcher {info.name}, {workers})"
    if jobs and finished:
        done = sum(job_key(job) in finished for job in jobs)
        if done:
            line += f"; {done} already finished there and will be skipped"
    if info.parallel and info.local:
        line += "; timings taken in parallel are contended (marked in the report)"
    if not any(arg.startswith("hydra.sweep.dir=") for arg in sys.argv):
        line += f"\ndydx: if it is interrupted, resume it with: {resume_command(sweep_dir)}"
    if logs_elsewhere:
        line += f"\ndydx: each job's output goes to {sweep_dir}/.submitit/<job id>/*_log.out; " \
                f"the lines are repeated here when the sweep ends"
    return line


def end_messages(sweep_dir: Path, manifest: dict, records: pd.DataFrame, paths: dict,
                 echo_jobs: bool = False, headline: Optional[Table] = None) -> list[str]:
    """The closing lines, as printed: the report's headline table, then (each after
    'dydx: ') what finished, what failed, where the report is."""
    said = []
    if echo_jobs and not records.empty:  # job output went to submitit's log files
        said += [f"[{int(r.get('job_num', -1)) + 1}] {summary_line(r.to_dict())}"
                 for _, r in records.iterrows()]
    table = headline_lines(headline, paths.get("report.md")) \
        if headline is not None and headline.rows else []
    lines = []
    jobs = manifest.get("jobs") or []
    if jobs:
        lines.append(f"{len(jobs) - len(missing_jobs(records, jobs))}/{len(jobs)} jobs have a "
                     f"record")
    if not records.empty:
        failed = records[records["status"] != OK]
        counts = failed["status"].value_counts()
        lines.append(f"{len(records)} records: {len(records) - len(failed)} ok"
                     + (", " + ", ".join(f"{n} {s}" for s, n in counts.items()) if len(failed) else ""))
    for name in ("summary.csv", "report.md", "report.html", "atlas.md", "atlas.html"):
        if name in paths:
            lines.append(f"{name}: {paths[name]}")
    return [f"dydx: {line}" for line in said] + table + [f"dydx: {line}" for line in lines]


def headline_lines(table: Table, report: Optional[Path]) -> list[str]:
    """The report's headline table for the terminal, at most CONSOLE_ROWS rows of it."""
    shown = Table(table.header, table.rows[:CONSOLE_ROWS], table.note)
    lines = [""] + render_text(shown).splitlines() + [""]
    if len(table.rows) > CONSOLE_ROWS:
        lines.insert(3 + CONSOLE_ROWS, f"... {len(table.rows) - CONSOLE_ROWS} more rows in "
                                       f"{report or 'report.md'}")
    return lines
