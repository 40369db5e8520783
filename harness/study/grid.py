"""The grid of x values, and which of its points are checked against the reference."""
from __future__ import annotations

import math

import numpy as np
import torch

from harness.study.settings import GridConf


def grid_values(grid: GridConf) -> np.ndarray:
    """The grid in float64: np.linspace(start, stop, n) when n is set, else np.arange."""
    if grid.n:
        return np.linspace(grid.start, grid.stop, grid.n)
    return np.arange(grid.start, grid.stop, grid.step)


def make_grid(grid: GridConf, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The grid in float64, rounded once to the run's dtype, on the run's device."""
    return torch.tensor(grid_values(grid), dtype=torch.float64).to(dtype).to(device)


def grid_size(grid) -> float:
    """Points on a grid config (NaN when the config cannot say)."""
    try:
        if grid.n is not None:
            return int(grid.n)
        return max(0, math.ceil((grid.stop - grid.start) / grid.step))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return math.nan


def check_indices(n: int, max_points: int) -> np.ndarray:
    """All indices, or an evenly strided deterministic subsample including both ends."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
