"""Structured configs (types) and validate(cfg) (meaning), with exact one-line messages.

The config groups `fn`, `method`, `dtype` and `device` are filled into Hydra's
ConfigStore from the registries, so a new function or method is a CLI choice the moment
it is registered. `validate` turns a composed config into a `Study`, the plain values a
run needs, or raises ConfigError whose message names the valid choices.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from harness.functions import FUNCTIONS, Function, resolve_function
from harness.methods import METHODS, Method
from harness.registry import choice_error

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16}
ORDERS = (1, 2)
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A config the harness cannot run; the message is one line, for the user."""


@dataclass
class FnConf:
    # builtin | nn | expr
    kind: str = "builtin"
    # builtin: a registered function; nn: a torch.nn activation class name
    name: Optional[str] = "sin"
    # kind=expr: an expression in x, e.g. "x**2*sin(x)"
    expr: Optional[str] = None
    # kind=py: your function, "package.module:function" (an autograd.Function class works too)
    target: Optional[str] = None
    # kind=py: optional trusted derivative "package.module:function", used as the reference
    derivative: Optional[str] = None
    # kind=network: the vector v of the vector-Jacobian product: ones | random (seeded)
    v: str = "ones"
    # kind=network: keep stochastic layers (dropout) in train mode, with the run's seed
    train: bool = False
    # kind=network: input elements that finite / forward_ad check (null: the preset's default)
    max_points: Optional[int] = None
    # Safe for folder names; used in the run folder's name.
    label: str = "sin"


@dataclass
class GridConf:
    # The tutorial's np.arange(start, stop, step): stop excluded.
    start: float = -10.0
    stop: float = 10.0
    step: float = 0.01
    # If set: n evenly spaced points from start to stop inclusive (np.linspace).
    n: Optional[int] = None


@dataclass
class TimingConf:
    enabled: bool = True
    # Seconds of steady-state measurement per timed callable (method, forward pass).
    min_run_time: float = 0.5
    # Threads torch may use while timed; null = torch's default for this machine.
    num_threads: Optional[int] = None


@dataclass
class ReferenceConf:
    # Error is checked on at most this many points: all of them up to this size, else an
    # evenly strided deterministic subsample (first and last point included); see n_checked.
    # Per-point methods (the loop) are then also evaluated and timed on that subsample only.
    max_points: int = 20000
    # mpmath working precision in decimal digits.
    dps: int = 50
    # Reference values are cached here, keyed by function, exact x values and precision.
    cache_dir: Optional[str] = "results/.cache/reference"


@dataclass
class DtypeConf:
    name: str = MISSING


@dataclass
class DeviceConf:
    name: str = MISSING


@dataclass
class Config:
    fn: FnConf = field(default_factory=FnConf)
    method: Any = MISSING
    dtype: DtypeConf = field(default_factory=DtypeConf)
    device: DeviceConf = field(default_factory=DeviceConf)
    grid: GridConf = field(default_factory=GridConf)
    timing: TimingConf = field(default_factory=TimingConf)
    reference: ReferenceConf = field(default_factory=ReferenceConf)
    # Derivative order: 1 (f') or 2 (f'').
    order: int = 1
    # Root folder for runs and sweeps.
    out_root: str = "results"
    seed: int = 0


def method_conf_class(method: Method) -> type:
    """A dataclass `name` + the method's parameter fields, for the ConfigStore."""
    hints = typing.get_type_hints(method.params)  # resolve postponed (string) annotations
    params = [(f.name, hints[f.name], field(default=f.default))
              for f in dataclasses.fields(method.params)]
    return dataclasses.make_dataclass(f"{method.name.title()}Conf",
                                      [("name", str, field(default=method.name)), *params])


def register_configs() -> None:
    """Fill Hydra's ConfigStore from the registries (idempotent)."""
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


@dataclass(frozen=True)
class Study:
    """Validated plain values for one run."""

    function: Function
    method: Method
    params: dict
    order: int
    dtype: torch.dtype
    device: torch.device
    grid: GridConf
    timing: TimingConf
    reference: ReferenceConf


def validate(cfg: DictConfig) -> Study:
    """Composed config -> Study, or ConfigError with a one-line message."""
    method = _checked(lambda: METHODS.get(cfg.method.name))
    params = {k: v for k, v in OmegaConf.to_container(cfg.method).items() if k != "name"}
    accepted = [f.name for f in dataclasses.fields(method.params)]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"method {method.name} takes no parameter {unknown[0]!r}; it takes: "
                          f"{', '.join(accepted) or 'none'}")
    problem = method.check(**params)
    if problem:
        raise ConfigError(problem)
    return Study(
        function=_checked(lambda: resolve_function(cfg.fn.kind, cfg.fn.name, cfg.fn.expr,
                                                   cfg.fn.target, cfg.fn.derivative)),
        method=method,
        params=params,
        order=_order(cfg.order),
        dtype=parse_dtype(cfg.dtype.name),
        device=parse_device(cfg.device.name),
        grid=_grid(cfg.grid),
        timing=parse_timing(cfg.timing),
        reference=_reference(cfg.reference),
    )


def _checked(build):
    try:
        return build()
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _order(order: int) -> int:
    if order not in ORDERS:
        raise ConfigError(f"order must be 1 (first derivative) or 2 (second derivative), got {order}")
    return order


def parse_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ConfigError(choice_error("dtype", name, list(DTYPES)))
    return DTYPES[name]


def parse_device(name: str) -> torch.device:
    if name not in DEVICES:
        raise ConfigError(choice_error("device", name, list(DEVICES)))
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device=cuda but torch {torch.__version__} sees no CUDA GPU on this "
                          f"machine; choose one of: auto, cpu")
    return torch.device(name)


def _grid(grid: DictConfig) -> GridConf:
    g = GridConf(**OmegaConf.to_container(grid))
    for key in ("start", "stop", "step"):
        if not math.isfinite(getattr(g, key)):
            raise ConfigError(f"grid.{key} must be a finite number, got {getattr(g, key)}")
    if g.n is not None:
        if g.n < 1:
            raise ConfigError(f"grid.n must be >= 1, got {g.n}")
        if g.n > 1 and g.stop <= g.start:
            raise ConfigError(f"grid.stop ({g.stop}) must be > grid.start ({g.start}) when grid.n > 1")
        if g.n == 1 and g.stop != g.start:
            raise ConfigError(f"grid.n=1 studies one point: set grid.start and grid.stop equal "
                              f"(got {g.start} and {g.stop})")
    elif g.step <= 0 or g.stop <= g.start:
        raise ConfigError(f"the grid is empty: np.arange({g.start}, {g.stop}, {g.step}) has no "
                          f"points; need grid.step > 0 and grid.stop > grid.start, or set grid.n")
    return g


def parse_timing(timing: DictConfig) -> TimingConf:
    t = TimingConf(**OmegaConf.to_container(timing))
    if not t.min_run_time > 0:
        raise ConfigError(f"timing.min_run_time must be > 0 seconds, got {t.min_run_time}")
    if t.num_threads is not None and t.num_threads < 1:
        raise ConfigError(f"timing.num_threads must be >= 1 (or null for torch's default), "
                          f"got {t.num_threads}")
    return t


def _reference(reference: DictConfig) -> ReferenceConf:
    r = ReferenceConf(**OmegaConf.to_container(reference))
    if r.max_points < 2:
        raise ConfigError(f"reference.max_points must be >= 2, got {r.max_points}")
    if r.dps < 40:
        raise ConfigError(f"reference.dps must be >= 40 digits (the reference is checked at dps-20), got {r.dps}")
    return r
