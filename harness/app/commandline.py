"""The command line before Hydra composes it: every check that can be made on the text,
and the sweep-preset and launcher descriptions that `python run.py --help` shows.

`precheck` reads the options and overrides before anything runs, so an unknown option, a
misspelt key, a value of the wrong type, an unknown function, method, dtype, device,
launcher or sweep preset, or a results folder that cannot be written fails at once, in
one line that lists what is valid, before a sweep launches a single job (Hydra's own
errors for these are several lines, exit 1, and list nothing).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import OmegaConf

from harness.claims import check_writable
from harness.config.overrides import check_override
from harness.config.schema import DEVICES, Config
from harness.config.store import CONF_DIR
from harness.dtypes import DTYPES
from harness.errors import ConfigError
from harness.functions.catalog import FUNCTIONS
from harness.functions.torch_ops import TORCH_OPS
from harness.methods import METHODS
from harness.methods.base import parameter_notes
from harness.registry import choice_error

# Config groups whose choices precheck validates; `sweep` is the preset folder conf/sweep/.
CHECKED_GROUPS = ("fn", "method", "dtype", "device", "sweep", "hydra/launcher")
# Launchers that Hydra's plugins provide without a file in conf/hydra/launcher/.
PLUGIN_LAUNCHERS = {
    "basic": "Hydra's default: one job at a time in this process; use it for timing studies.",
    "joblib": "Parallel on this machine, one job per CPU (hydra.launcher.n_jobs): right for "
              "accuracy sweeps; its timings are contended and marked, so time serially.",
    "submitit_local": "submitit on this machine: each job its own process, all at once; "
                      "the SLURM code path, testable here.",
    "submitit_slurm": "submitit's bare SLURM launcher; prefer slurm (dydx's fields and defaults).",
}


def group_choices(group: str) -> list[str]:
    """Registered choices plus the YAML files in conf/<group>/ (and Hydra's launchers)."""
    registered = {"fn": FUNCTIONS.names(), "method": METHODS.names(), "dtype": list(DTYPES),
                  "device": list(DEVICES), "hydra/launcher": list(PLUGIN_LAUNCHERS)}.get(group, [])
    files = [p.stem for p in (CONF_DIR / group).glob("*.yaml")]
    return sorted(set(registered) | set(files))


def _values(override: Override) -> Optional[list]:
    """The values an override sets (several for a sweep), typed as Hydra parsed them;
    None when only Hydra can enumerate them (glob(...) needs its config loader)."""
    if not override.is_sweep_override():
        return [override.value()]
    if override.is_discrete_sweep():
        try:
            return list(override.sweep_iterator())
        except HydraException:
            return None
    return None


def _options(args: list[str]) -> argparse.Namespace:
    """The command line as Hydra reads it; ConfigError for an option run.py does not take."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    known = ", ".join(a.option_strings[0] for a in parser._actions if a.option_strings)

    def error(message: str) -> None:
        raise ConfigError(f"{message}; run.py takes key=value overrides and the options "
                          f"{known}")

    parser.error = error  # argparse would print its usage, several lines, and exit 2
    return parser.parse_args(args)


def _check_text(arg: str) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates, which no file, table or
    terminal can hold: refuse them before anything stores or prints them."""
    for column, char in enumerate(arg, start=1):
        if "\ud800" <= char <= "\udfff":
            raise ConfigError(f"the argument {arg!r} holds bytes that are not UTF-8 text "
                              f"({char!r} at column {column}); dydx takes only text")


def _unreadable(text: str, err: HydraException) -> ConfigError:
    """Hydra's grammar refused an override: say where, in one line."""
    odd = next(((i, c) for i, c in enumerate(text, 1) if not " " <= c <= "~"), None)
    if odd is not None:
        reason = f"the character {odd[1]!r} (U+{ord(odd[1]):04X}) at column {odd[0]} is not " \
                 f"allowed (only printable ASCII)"
    else:
        lines = [line.strip() for line in str(err).splitlines()]
        reason = next((line for line in lines if line and not line.startswith(
            ("Error parsing override", "See https", "^"))), "not in Hydra's override grammar")
    return ConfigError(f"cannot read the override {text!r}: {reason}; write key=value (e.g. "
                       f"fn=sin), a sweep as key=a,b,c, and quote a value with special "
                       f"characters: 'fn.expr=\"x**2\"'")


def _parse(overrides: list[str]) -> list[Override]:
    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed += parser.parse_overrides([text])
        except HydraException as err:
            raise _unreadable(text, err) from None
    return parsed


def _default(group: str) -> str:
    """The choice conf/config.yaml's defaults list makes for a group."""
    for entry in OmegaConf.load(CONF_DIR / "config.yaml").defaults:
        if isinstance(entry, dict) or OmegaConf.is_dict(entry):
            if group in entry:
                return str(entry[group])
    return ""


def _methods(parsed: list[Override]) -> Optional[list[str]]:
    """The methods the command runs (None when a sweep preset or glob decides them)."""
    for override in parsed:
        if override.key_or_group == "method":
            values = _values(override)
            return None if values is None else [str(v) for v in values]
    if any(o.key_or_group == "sweep" for o in parsed):
        return None
    return [_default("method")]


def _check_choice(override: Override) -> None:
    group = override.key_or_group
    if group == "sweep" and not override.is_add():
        raise ConfigError(f"a sweep preset is added with a plus: +sweep=... (one of: "
                          f"{', '.join(group_choices('sweep'))})")
    choices = group_choices(group)
    for value in _values(override) or []:
        if str(value) not in choices:
            raise ConfigError(choice_error(group, value, choices))


def _check_folders(parsed: list[Override], multirun: bool) -> None:
    """The folder the results go to must be one this process can write in."""
    given = {o.key_or_group: o.value() for o in parsed if not o.is_sweep_override()}
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = given.get(key, given.get("out_root", Config.out_root))
    if isinstance(folder, str) and "${" not in folder:
        check_writable(Path(folder))


def precheck(args: list[str]) -> None:
    """Raise ConfigError or FolderError (one line) for the first problem on the command
    line; Hydra composes only a command line that passed."""
    if "--version" in args:
        return
    for arg in args:
        _check_text(arg)
    options = _options(args)
    if options.shell_completion:
        return  # its arguments (install=bash, query=...) are Hydra's, not overrides
    parsed = _parse(options.overrides)
    methods = _methods(parsed)
    for override in parsed:
        key = override.key_or_group
        if key in CHECKED_GROUPS:
            _check_choice(override)
        elif not key.startswith("hydra") and not override.is_delete():
            values = _values(override)
            check_override(key, values if values is not None else [], methods)
    _check_folders(parsed, multirun=options.multirun)


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


def torch_op_names(separator: str = ",") -> str:
    """Every registered torch op (fn=torch fn.name=...): the atlas sweep's list, and --help's."""
    return separator.join(TORCH_OPS.names())


# `python run.py --help` lists the sweep presets with their descriptions, read from the
# files themselves so the help cannot drift from conf/sweep/ (see hydra.help in config.yaml).
OmegaConf.register_new_resolver("dydx_presets", preset_descriptions, replace=True)
OmegaConf.register_new_resolver("dydx_method", method_help, replace=True)
# conf/sweep/atlas.yaml sweeps fn.name over ${dydx_torch_ops:}: the registry, never a copy.
OmegaConf.register_new_resolver("dydx_torch_ops", torch_op_names, replace=True)
