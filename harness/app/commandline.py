"""The command line before Hydra composes it: early checks of group choices, and the
sweep-preset and launcher descriptions that `python run.py --help` shows.

`precheck` reads the overrides before anything runs, so an unknown function, method,
dtype, device or sweep preset fails at once, in one line that lists the choices, before a
sweep launches a single job.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

from harness.config.schema import DEVICES
from harness.config.store import CONF_DIR
from harness.dtypes import DTYPES
from harness.functions.catalog import FUNCTIONS
from harness.methods import METHODS
from harness.methods.base import parameter_notes
from harness.registry import choice_error

# Config groups whose choices precheck validates; `sweep` is the preset folder conf/sweep/.
CHECKED_GROUPS = ("fn", "method", "dtype", "device", "sweep")
# Launchers that Hydra's plugins provide without a file in conf/hydra/launcher/.
PLUGIN_LAUNCHERS = {
    "basic": "Hydra's default: one job at a time in this process; use it for timing studies.",
    "joblib": "Parallel on this machine, one job per CPU (hydra.launcher.n_jobs): right for "
              "accuracy sweeps; its timings are contended and marked, so time serially.",
    "submitit_local": "submitit on this machine: each job its own process, all at once; "
                      "the SLURM code path, testable here.",
    "submitit_slurm": "submitit's bare SLURM launcher; prefer slurm (dydx's fields and defaults).",
}


def fail(message: str) -> None:
    """One line on stderr, exit status 2: the command cannot run as given."""
    print(f"dydx: error: {message}", file=sys.stderr)
    raise SystemExit(2)


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
        if group not in CHECKED_GROUPS:
            continue
        choices = group_choices(group)
        for value in _values(override):
            if value not in choices:
                return choice_error(group, value, choices)
    return None


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


def preset_descriptions(group: str = "sweep") -> str:
    """'  name        description' per option of conf/<group>/ and Hydra's (for --help)."""
    files = {p.stem: p for p in (CONF_DIR / group).glob("*.yaml")}
    lines = []
    for name in sorted(set(files) | set(_loader_options(group))):
        about = _first_comment(files[name]) if name in files else \
            PLUGIN_LAUNCHERS.get(name, "(provided by a Hydra plugin)")
        lines.append(f"  {name:<16}{about}")
    return "\n".join(lines)


def method_help(name: str) -> str:
    """What `python run.py method=NAME --help` says about the method: what it computes, and
    each parameter with its default and the comment on its field."""
    if name not in METHODS:
        return ""  # precheck has already said which methods there are
    method = METHODS.get(name)
    notes = parameter_notes(method.params)
    lines = [f"  {name}: {method.headline}"]
    lines += [f"  method.{f.name}={f.default}: {notes.get(f.name, '')}".rstrip(": ")
              for f in dataclasses.fields(method.params)] or ["  (no parameters)"]
    if method.vjp is not None:
        lines.append("  applies to networks too (fn=tutorial_mlp, fn=discriminator)")
    return "\n".join(lines)


# `python run.py --help` lists the sweep presets with their descriptions, read from the
# files themselves so the help cannot drift from conf/sweep/ (see hydra.help in config.yaml).
OmegaConf.register_new_resolver("dydx_presets", preset_descriptions, replace=True)
OmegaConf.register_new_resolver("dydx_method", method_help, replace=True)
