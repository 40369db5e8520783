"""Fill Hydra's ConfigStore from the registries, so a new function or method is a CLI
choice the moment it is registered; compose the config `python run.py` would get, for
callers that are not run.py (the Python API)."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import field
from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.initialize import get_gh_backup, restore_gh_from_backup
from omegaconf import DictConfig, OmegaConf

from harness.config.schema import DEVICES, Config, DeviceConf, DtypeConf, FnConf
from harness.dtypes import DTYPES
from harness.functions.catalog import FUNCTIONS
from harness.methods import METHODS
from harness.methods.base import Method

# conf/ beside the package: config.yaml, the fn/ and sweep/ choices, the launchers.
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def method_conf_class(method: Method) -> type:
    """A dataclass `name` + the method's parameter fields, for the ConfigStore."""
    hints = typing.get_type_hints(method.params)  # resolve postponed (string) annotations
    params = [(f.name, hints[f.name], field(default=f.default))
              for f in dataclasses.fields(method.params)]
    return dataclasses.make_dataclass(f"{method.name.title()}Conf",
                                      [("name", str, field(default=method.name)), *params])


def order_suffix(order) -> str:
    """'' for the first derivative, '_order2' for the second: run folders name the order."""
    return "" if int(order) == 1 else f"_order{int(order)}"


def register_configs() -> None:
    """Fill Hydra's ConfigStore from the registries, and the resolver run folders' names
    use (idempotent)."""
    OmegaConf.register_new_resolver("dydx_order", order_suffix, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for name in FUNCTIONS.names():
        cs.store(group="fn", name=name, node=FnConf(kind="builtin", name=name, label=name))
    for name in METHODS.names():
        cs.store(group="method", name=name, node=method_conf_class(METHODS.get(name)))
    for name in DTYPES:
        cs.store(group="dtype", name=name, node=DtypeConf(name=name))
    for name in DEVICES:
        cs.store(group="device", name=name, node=DeviceConf(name=name))


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The config `python run.py <overrides>` composes, without starting a Hydra app.

    Works inside a running Hydra app too (a user's own @hydra.main): its global state is
    set aside and restored.
    """
    register_configs()
    saved = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=list(overrides))
    finally:
        restore_gh_from_backup(saved)
