"""What run.py does around Hydra: check the command line early, run one job, report errors.

`precheck` reads the overrides before Hydra composes anything, so an unknown function,
method, dtype or device fails at once, in one line that lists the choices, before a sweep
launches a single job. `run_job` is the body of the @hydra.main function.
"""
from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from harness.config import DEVICES, DTYPES, ConfigError, validate
from harness.functions import FUNCTIONS
from harness.methods import METHODS
from harness.registry import choice_error
from harness.report import summary_line, write_run
from harness.results import is_complete
from harness.runner import run_study

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def group_choices(group: str) -> list[str]:
    """Registered choices plus the YAML files in conf/<group>/."""
    registered = {"fn": FUNCTIONS.names(), "method": METHODS.names(), "dtype": list(DTYPES),
                  "device": list(DEVICES)}.get(group, [])
    files = [p.stem for p in (CONF_DIR / group).glob("*.yaml")]
    return sorted(set(registered) | set(files))


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
        if group not in ("fn", "method", "dtype", "device", "sweep"):
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
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()
    fail(message)


def run_job(cfg: DictConfig) -> dict:
    """Validate, refuse to overwrite a finished run, run, store, summarize."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if is_complete(run_dir):
        fail(f"{run_dir} already holds a finished run; nothing was changed. "
             f"Choose another hydra.run.dir")
    try:
        study = validate(cfg)
    except ConfigError as err:
        _reject(run_dir, str(err))
    print(f"dydx: {study.function.name} by {study.method.name} in "
          f"{cfg.dtype.name} on {study.device.type} ...", flush=True)
    outcome = run_study(study, run_dir, seed=cfg.seed,
                        log=lambda line: print(line, flush=True))
    record = {**outcome.record, "overrides": " ".join(hydra_cfg.overrides.task)}
    write_run(run_dir, record, outcome.points, OmegaConf.to_yaml(cfg, resolve=True))
    print(summary_line(record))
    print(f"results: {run_dir}")
    return record
