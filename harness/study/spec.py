"""What one study is (`Study`, validated plain values), and what its steps hand each other.

A study runs one pipeline (harness.study.flow): support -> evaluate -> reference ->
exclusions -> metrics -> timing -> record. What differs between an elementwise function
and a network is a *spec* that plugs into it (harness.study.elementwise,
harness.study.network); both speak the `Spec` protocol below.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, Union

import numpy as np
import pandas as pd
import torch

from harness.functions.catalog import Function
from harness.methods.base import Method
from harness.networks.presets import NetworkPreset
from harness.study.reference import Reference
from harness.study.settings import GridConf, HuntConf, ReferenceConf, TimingConf


@dataclass(frozen=True)
class NetworkSubject:
    """A network preset as the thing differentiated: vᵀJ with respect to its input."""

    preset: NetworkPreset
    # The cotangent v: ones | random (seeded).
    v_kind: str = "ones"
    # Stochastic layers (dropout) in train mode, drawn from the run's seed.
    train: bool = False
    # Input elements the per-point methods check (None: the preset's default).
    max_points: Optional[int] = None

    @property
    def name(self) -> str:
        return self.preset.name


@dataclass(frozen=True)
class Study:
    """Validated plain values for one run."""

    subject: Union[Function, NetworkSubject]
    method: Method
    params: dict
    order: int
    dtype: torch.dtype
    device: torch.device
    timing: TimingConf
    reference: ReferenceConf
    grid: Optional[GridConf] = None  # elementwise functions only
    seed: int = 0
    hunt: HuntConf = field(default_factory=HuntConf)  # elementwise functions only


@dataclass(frozen=True)
class Raw:
    """What the method call returned, on the points it was evaluated at."""

    values: torch.Tensor
    estimate: Optional[torch.Tensor] = None
    # Per value: its stencil was seen to cross a kink (networks watch their layers).
    crossed: Optional[np.ndarray] = None


@dataclass(frozen=True)
class Checked:
    """The method's results at the checked points, in float64 NumPy."""

    index: np.ndarray  # positions in the grid (or flat input) of the checked points
    x: np.ndarray
    df: np.ndarray
    estimate: Optional[np.ndarray] = None
    crossed: Optional[np.ndarray] = None
    f: Optional[np.ndarray] = None  # f(x), where f maps x to one value per point


class Spec(Protocol):
    """One kind of study subject, as the pipeline's steps."""

    def identity(self, run_dir) -> dict: ...
    def unsupported(self) -> Optional[str]: ...
    def prepare(self) -> None: ...
    def call(self, log: Callable[[str], None]) -> Raw: ...
    def checked(self, raw: Raw) -> Checked: ...
    def reference(self, checked: Checked) -> Reference: ...
    def exclusions(self, checked: Checked, ref: Reference) -> np.ndarray: ...
    def timed(self) -> tuple[Callable[[], object], Callable[[], object]]: ...
    def n_timed(self) -> int: ...
    def extra(self, checked: Checked, ref: Reference, points: pd.DataFrame) -> dict: ...
