"""The sweep manifest (sweep.json) and each job's place in the sweep.

When a sweep starts, the callback expands the job list exactly as Hydra's BasicSweeper
will and writes it, with an index of the runs already finished in the sweep folder, to
`sweep.json`. Each job reads it to know its place (index/total), whether it already ran
(resume), and how many jobs share the machine with it (timing contention).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig

from harness.multirun.launchers import LauncherInfo, available_cpus, launcher_info
from harness.results import is_complete, job_key, load_records, read_manifest, read_record

def expand_jobs(config: DictConfig) -> Optional[list[list[str]]]:
    """The overrides of every job, in Hydra's order, or None for a sweeper we cannot mirror.

    Uses BasicSweeper's own expansion (preset params first, then the command line), so the
    list, its order and hence each job's number match what the launcher will run.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    if not str(sweeper.get("_target_", "")).endswith(".BasicSweeper"):
        return None
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    arguments = params + list(config.hydra.overrides.task)
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() \
        else None
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    batches = BasicSweeper.split_arguments(parsed, sweeper.get("max_batch_size"))
    return [job for batch in batches for job in batch]


def varying_keys(jobs: list[list[str]]) -> list[str]:
    """Override keys that take more than one value across the jobs (what a job line shows)."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for token in job:
            key, _, value = token.partition("=")
            values.setdefault(key, set()).add(value)
    return [key for key, seen in values.items() if len(seen) > 1]


def finished_index(sweep_dir: Path) -> dict[str, str]:
    """job_key -> run folder (relative) for every finished run under the sweep folder
    (a damaged record counts as not finished: that job runs again)."""
    records = load_records(sweep_dir)
    if records.empty or "overrides" not in records.columns:
        return {}
    return {job_key(overrides): folder
            for overrides, folder in zip(records["overrides"], records["job_dir"])
            if isinstance(overrides, str)}


@dataclass(frozen=True)
class JobContext:
    """What a job knows about its sweep: position, identity, shown config, launcher."""

    num: int
    total: Optional[int]
    overrides: list[str]
    shown: list[str]
    launcher: LauncherInfo
    # Folder (relative to the sweep) of a finished run with the same overrides, if any.
    finished_in: Optional[str]

    @property
    def tag(self) -> str:
        return f"[{self.num + 1}/{self.total if self.total else '?'}]"


def job_context(hydra_cfg: DictConfig) -> JobContext:
    """The running job's context, from its Hydra config and the sweep manifest."""
    sweep_dir = Path(str(hydra_cfg.sweep.dir))
    manifest = read_manifest(sweep_dir) or {}
    overrides = list(hydra_cfg.overrides.task)
    total = manifest.get("total")
    varying = set(manifest.get("varying", [])) or {t.partition("=")[0] for t in overrides}
    shown = [t for t in overrides if t.partition("=")[0] in varying]
    info = launcher_info(hydra_cfg, total, available_cpus())
    finished = manifest.get("finished", {}).get(job_key(overrides))
    return JobContext(int(hydra_cfg.job.num), total, overrides, shown or overrides, info, finished)


def resume_decision(context: JobContext, sweep_dir: Path, run_dir: Path) -> tuple[str, Optional[Path]]:
    """('run', None), ('skip', finished run folder) or ('conflict', the occupied folder).

    A job is skipped when a finished run with the same overrides exists anywhere in the
    sweep folder (so reordering the command line still resumes). Its own folder holding a
    finished run of another job means the folder was reused for a different sweep: the job
    cannot write there without destroying that run, so it reports a conflict instead.
    """
    if context.finished_in is not None and is_complete(sweep_dir / context.finished_in):
        return "skip", sweep_dir / context.finished_in
    stored = read_record(run_dir)
    if stored is not None:
        if job_key(str(stored.get("overrides", ""))) == job_key(context.overrides):
            return "skip", run_dir
        return "conflict", run_dir
    return "run", None
