"""validate(cfg): a composed config -> a Study, or ConfigError with a one-line message that
names the valid choices. The only place that reads meaning into config values (the keys
and types of single overrides are checked before composing: harness.config.overrides).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional

import torch
from omegaconf import DictConfig, OmegaConf

from harness.config.schema import DEVICES, ORDERS, Config
from harness.dtypes import DTYPES
from harness.errors import ConfigError
from harness.functions.catalog import Function, resolve_function
from harness.methods import METHODS
from harness.methods.base import Method
from harness.networks.checks import V_KINDS
from harness.networks.presets import NETWORKS
from harness.registry import choice_error
from harness.study.grid import GRID_KINDS, TAIL_KINDS, grid_kind, grid_size
from harness.study.settings import GridConf, HuntConf, ReferenceConf, TimingConf
from harness.study.spec import NetworkSubject, Study


# Memory a study needs per grid point, at most over the registered methods: measured with
# getrusage at grid.n = 4e6 (tanh, float64, CPU): richardson 558 bytes (its tableau),
# stencil 174, finite 119, autograd 95. A grid is refused when even this could not fit.
BYTES_PER_POINT = 600
# Binades of float64 with the subnormal ones (the most any dtype has): 2046 + 52.
FLOAT64_BINADES = 2098


def method_params(cfg: DictConfig) -> dict:
    """The method's parameters from `cfg.method`, in its own field order (scheme before h)."""
    return {k: v for k, v in OmegaConf.to_container(cfg.method, resolve=True).items()
            if k != "name"}


def validate(cfg: DictConfig, function: Optional[Function] = None) -> Study:
    """Composed config -> Study, or ConfigError with a one-line message.

    `function`, when given, is the subject instead of cfg.fn: a Python callable that the
    Python API wrapped (harness.functions.catalog.callable_function)."""
    method = _checked(lambda: METHODS.get(cfg.method.name))
    params = _params(method, method_params(cfg))
    network = function is None and cfg.fn.kind == "network"
    subject = function or (_network(cfg, method) if network else _checked(lambda: resolve_function(
        cfg.fn.kind, cfg.fn.name, cfg.fn.expr, cfg.fn.target, cfg.fn.derivative)))
    return Study(subject=subject, method=method, params=params, order=_order(cfg.order, network),
                 dtype=parse_dtype(cfg.dtype.name), device=parse_device(cfg.device.name),
                 timing=parse_timing(cfg.timing), reference=_reference(cfg.reference),
                 grid=None if network else _grid(cfg.grid, memory_bytes(cfg.device.name)),
                 seed=int(cfg.seed), hunt=_hunt(cfg.hunt))


def _checked(build):
    try:
        return build()
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _params(method: Method, params: dict) -> dict:
    accepted = [f.name for f in dataclasses.fields(method.params)]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"method {method.name} takes no parameter {unknown[0]!r}; it takes: "
                          f"{', '.join(accepted) or 'none'}")
    problem = method.check(**params)
    if problem:
        raise ConfigError(problem)
    return params


def _network(cfg: DictConfig, method: Method) -> NetworkSubject:
    """fn.kind == network: the preset, its cotangent and mode, checked."""
    preset = _checked(lambda: NETWORKS.get(cfg.fn.name))
    if method.vjp is None:
        applies = [name for name in METHODS.names() if METHODS.get(name).vjp is not None]
        raise ConfigError(f"method {method.name} does not apply to networks (it needs an "
                          f"elementwise function); for networks choose one of: {', '.join(applies)}")
    v_kind, train = cfg.fn.get("v", "ones"), cfg.fn.get("train", False)
    if v_kind not in V_KINDS:
        raise ConfigError(choice_error("fn.v", v_kind, list(V_KINDS)))
    if not isinstance(train, bool):
        raise ConfigError(f"fn.train must be true or false, got {train!r}")
    max_points = cfg.fn.get("max_points", None)
    if max_points is not None and max_points < 2:
        raise ConfigError(f"fn.max_points must be >= 2, got {max_points}")
    return NetworkSubject(preset, v_kind, train, max_points)


def _order(order: int, network: bool) -> int:
    if network and order != 1:
        raise ConfigError(f"networks: order must be 1 (the vector-Jacobian product; the "
                          f"gradient-penalty check covers second order), got {order}")
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


def _grid(grid: DictConfig, memory: Optional[int] = None) -> GridConf:
    g = GridConf(**OmegaConf.to_container(grid))
    for key in ("start", "stop", "step"):
        if not math.isfinite(getattr(g, key)):
            raise ConfigError(f"grid.{key} must be a finite number, got {getattr(g, key)}")
    if g.kind is not None and g.kind not in GRID_KINDS:
        raise ConfigError(choice_error("grid.kind", g.kind, list(GRID_KINDS)))
    kind = grid_kind(g)
    if kind in TAIL_KINDS:
        _tail_grid(g)
    elif kind == "linspace":
        _linspace(g)
    else:
        _arange(g)
    if memory is not None:
        _fits(g, memory)
    return g


def _arange(g: GridConf) -> None:
    if g.n is not None:
        raise ConfigError(f"grid.kind=arange takes grid.start, grid.stop and grid.step, not "
                          f"grid.n={g.n}; for n evenly spaced points use grid.kind=linspace")
    if g.step <= 0 or g.stop <= g.start:
        raise ConfigError(f"the grid is empty: np.arange({g.start}, {g.stop}, {g.step}) has no "
                          f"points; need grid.step > 0 and grid.stop > grid.start, or set grid.n")


def _tail_grid(g: GridConf) -> None:
    if g.per_binade < 1:
        raise ConfigError(f"grid.per_binade must be >= 1, got {g.per_binade}")
    if g.n is not None and g.n < 1:
        raise ConfigError(f"grid.n (the draws of grid.kind=random) must be >= 1, got {g.n}")


def memory_bytes(device: str) -> Optional[int]:
    """The memory a study on `device` can use at most: the GPU's, or this machine's RAM."""
    try:
        if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
            return int(torch.cuda.get_device_properties(0).total_memory)
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, RuntimeError, AssertionError):  # unknown: no bound
        return None


def _size(nbytes: float) -> str:
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    power = min(int(math.log(max(nbytes, 1), 1024)), len(units) - 1)
    return f"{nbytes / 1024 ** power:.3g} {units[power]}"


def _points(g: GridConf) -> tuple[float, str]:
    """(points the grid asks for, the setting that asks): a binade grid at most float64's
    2,098 binades (subnormal ones included) on each sign, per_binade in each."""
    kind = grid_kind(g)
    if kind == "binades":
        return 2 * FLOAT64_BINADES * g.per_binade + 2, f"grid.per_binade={g.per_binade}"
    if kind == "random":
        return grid_size(g), f"grid.n={g.n}"
    if g.n is not None:
        return g.n, f"grid.n={g.n}"
    return (g.stop - g.start) / g.step, f"grid.step={g.step}"


def _fits(g: GridConf, memory: int) -> None:
    """ConfigError when the grid cannot fit in memory (grid.n=1e12 would ask for TiBs)."""
    points, asked = _points(g)
    if points * BYTES_PER_POINT <= memory:
        return
    raise ConfigError(f"{asked} asks for {points:.3g} points, about "
                      f"{_size(points * BYTES_PER_POINT)} at up to {BYTES_PER_POINT} bytes per "
                      f"point; the limit is this machine's memory, {_size(memory)}: use at most "
                      f"{memory // BYTES_PER_POINT:,} points")


def _linspace(g: GridConf) -> None:
    if g.n is None:
        raise ConfigError("grid.kind=linspace needs grid.n, the number of points")
    if g.n < 1:
        raise ConfigError(f"grid.n must be >= 1, got {g.n}")
    if g.n > 1 and g.stop <= g.start:
        raise ConfigError(f"grid.stop ({g.stop}) must be > grid.start ({g.start}) when grid.n > 1")
    if g.n == 1 and g.stop != g.start:
        raise ConfigError(f"grid.n=1 studies one point: set grid.start and grid.stop equal "
                          f"(got {g.start} and {g.stop})")


def parse_timing(timing: DictConfig) -> TimingConf:
    t = TimingConf(**OmegaConf.to_container(timing))
    if not 0 < t.precision < 1:
        raise ConfigError(f"timing.precision must be a fraction between 0 and 1 (0.02: the "
                          f"median known to +-2 %), got {t.precision}")
    if not t.min_run_time > 0:
        raise ConfigError(f"timing.min_run_time must be > 0 seconds, got {t.min_run_time}")
    if not t.max_run_time >= t.min_run_time:
        raise ConfigError(f"timing.max_run_time must be >= timing.min_run_time "
                          f"({t.min_run_time} s), got {t.max_run_time}")
    if t.num_threads is not None and t.num_threads < 1:
        raise ConfigError(f"timing.num_threads must be >= 1 (or null: 1 below 32768 points, "
                          f"else torch's default), got {t.num_threads}")
    if t.processes < 1:
        raise ConfigError(f"timing.processes must be >= 1 (1: measure in this process), "
                          f"got {t.processes}")
    return t


def _hunt(hunt: DictConfig) -> HuntConf:
    h = HuntConf(**OmegaConf.to_container(hunt))
    for key, least in (("rounds", 0), ("seeds", 1), ("probes", 0)):
        if getattr(h, key) < least:
            raise ConfigError(f"hunt.{key} must be >= {least}, got {getattr(h, key)}")
    return h


def _reference(reference: DictConfig) -> ReferenceConf:
    r = ReferenceConf(**OmegaConf.to_container(reference, resolve=True))
    if r.max_points < 2:
        raise ConfigError(f"reference.max_points must be >= 2, got {r.max_points}")
    if r.dps < 40:
        raise ConfigError(f"reference.dps must be >= 40 digits (the reference is checked at dps-20), got {r.dps}")
    return r


def time_limit(cfg: DictConfig) -> float:
    """time_limit_s, checked: seconds a run may take (the reference included)."""
    seconds = cfg.get("time_limit_s", Config.time_limit_s)
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"time_limit_s must be a number of seconds > 0, got {seconds}")
    return float(seconds)
