"""check_override(key, values, methods): a command-line override read against the config
schema *before* Hydra composes, so a misspelt key or a value of the wrong type is one line
that lists the valid keys, with a "did you mean" for a near miss (Hydra's own errors are
several lines and list none). The Python API checks its keyword settings with it too, so
both say the same line for the same mistake.

Light on purpose (no pandas, no study): the command line runs it before anything heavy
is imported.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from harness.config.schema import Config, DeviceConf, DtypeConf, FnConf
from harness.config.store import method_conf_class
from harness.errors import ConfigError
from harness.methods import METHODS
from harness.registry import near_miss
from harness.study.settings import GridConf, ReferenceConf, TimingConf

# The config sections below the top level whose keys are fixed (method's depend on it).
SECTIONS = {"fn": FnConf, "dtype": DtypeConf, "device": DeviceConf, "grid": GridConf,
            "timing": TimingConf, "reference": ReferenceConf}
# Top-level keys that are config groups: their value is a choice, checked against the
# registries before Hydra runs (harness.app.commandline).
GROUPS = ("fn", "method", "dtype", "device")


def _keys(schema: type) -> list[str]:
    return [f.name for f in dataclasses.fields(schema)]


def _unknown_key(key: str, name: str, keys: list[str], listing: str) -> ConfigError:
    guess = near_miss(name, keys, cutoff=0.6)
    prefix = key[:len(key) - len(name)]
    hint = f" (did you mean {prefix + guess!r}?)" if guess is not None else ""
    return ConfigError(f"unknown key {key!r}{hint}; {listing}: {', '.join(keys)}")


def _kind(schema: type, name: str) -> str:
    """What a field accepts, in words: 'an integer or null'."""
    hint = typing.get_type_hints(schema)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    words = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
    text = words.get(base, "a value")
    return text + (" or null" if type(None) in typing.get_args(hint) else "")


def _check_type(key: str, schema: type, name: str, values: list) -> None:
    """Each value as OmegaConf would take it into the schema's field, or ConfigError."""
    node = OmegaConf.structured(schema)
    for value in values:
        try:
            node[name] = value
        except OmegaConfBaseException:
            kind = _kind(schema, name)
            hint = f", a float: write it as {int(value)}" if kind.startswith("an integer") and \
                isinstance(value, float) and value.is_integer() else ""
            raise ConfigError(f"{key} must be {kind}, got {value!r}{hint}") from None


def check_override(key: str, values: list, methods: Optional[list[str]] = None) -> None:
    """A command-line override `key=value[,value...]` against the schema: ConfigError for
    a key the config does not have or a value its type cannot take. `methods`: the method
    choices the override applies to (None: unknown, so any method's parameter is a key)."""
    head, _, rest = key.partition(".")
    top = _keys(Config)
    if head not in top:
        raise _unknown_key(key, head, top, "the keys are")
    if head == "method" and rest:
        return _check_method_param(key, rest, values, methods)
    if not rest:
        if head not in GROUPS:
            _check_type(key, Config, head, values)
        return
    schema = SECTIONS.get(head)
    if schema is None:
        raise ConfigError(f"{head} is a single value, not a section: set it as {head}=...")
    name, _, deeper = rest.partition(".")
    if name not in _keys(schema) or deeper:
        raise _unknown_key(key, name, _keys(schema), f"the keys of {head} are")
    _check_type(key, schema, name, values)


def _check_method_param(key: str, name: str, values: list, methods: Optional[list[str]]) -> None:
    """method.<name>: a parameter of every chosen method (of some method, when the choice
    is not known before Hydra composes, as with a sweep preset)."""
    known = [m for m in (methods or METHODS.names()) if m in METHODS]
    taking = [m for m in known if name in _keys(METHODS.get(m).params)]
    if methods is None and not taking:
        params = sorted({p for m in known for p in _keys(METHODS.get(m).params)})
        raise _unknown_key(key, name, params, "the methods' parameters are")
    for method in known if methods is not None else taking:
        accepted = _keys(METHODS.get(method).params)
        if name not in accepted:
            guess = near_miss(name, accepted, cutoff=0.6)
            hint = f" (did you mean {guess!r}?)" if guess is not None else ""
            raise ConfigError(f"method {method} takes no parameter {name!r}{hint}; it takes: "
                              f"{', '.join(accepted) or 'none'}")
        _check_type(key, method_conf_class(METHODS.get(method)), name, values)
