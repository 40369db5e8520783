"""Structured configs: the types of every key `python run.py` accepts.

The groups `fn`, `method`, `dtype` and `device` get one entry per registered choice
(harness.config.store); grid, timing and reference settings are the study's own
dataclasses (harness.study.settings)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

from harness.study.settings import GridConf, HuntConf, ReferenceConf, TimingConf

ORDERS = (1, 2)
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class FnConf:
    # builtin | nn | torch | expr | py | network
    kind: str = "builtin"
    # builtin: a registered function; nn: a torch.nn activation class name; torch: a torch
    # op by its name under torch ("expm1", "special.erfcx"); network: a preset
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
    hunt: HuntConf = field(default_factory=HuntConf)
    # Derivative order: 1 (f') or 2 (f'').
    order: int = 1
    # Root folder for runs and sweeps.
    out_root: str = "results"
    seed: int = 0
    # Seconds a run (or each job of a sweep) may take, the reference included; past it
    # the run stops and is recorded with status timeout. Ten minutes: the default study
    # takes seconds, the slowest preset job (torch.compile, n = 1e7) about a minute.
    time_limit_s: float = 600.0
    # Draw each run's derivative.png and error.png. Sweeps of hundreds of runs (the atlas)
    # turn it off: drawing costs more than the study; `python -m harness.report <run>` draws them later.
    figures: bool = True
