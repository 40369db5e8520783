"""The grid of x values, and which of its points are checked against the reference.

Four kinds (GridConf.kind): the tutorial's `arange` and `linspace` over [start, stop], and
two that reach a dtype's tails, where derivative bugs live and arange(-10, 10) never goes:
`binades` (N points per binade [2^e, 2^(e+1)), evenly spaced in log2|x|, both signs, ±0,
optionally the subnormals, across the whole finite range) and `random` (seeded uniform
draws over the dtype's bit patterns, which spread over binades the same way). Their
values are built exactly in the dtype, so rounding them to it changes nothing.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from harness.dtypes import facts
from harness.study.settings import GridConf

GRID_KINDS = ("arange", "linspace", "binades", "random")
# Draws of kind=random when grid.n is not set.
RANDOM_DRAWS = 2000
# Kinds built over the dtype's whole range, kept to the function's domain.
TAIL_KINDS = ("binades", "random")
# Unsigned integers as wide as each dtype, for drawing bit patterns.
_BITS = {16: np.uint16, 32: np.uint32, 64: np.uint64}


def grid_kind(grid: GridConf) -> str:
    """The kind a config asks for: null means arange, or linspace when n is set."""
    kind = getattr(grid, "kind", None)
    return kind or ("linspace" if grid.n is not None else "arange")


def grid_values(grid: GridConf, dtype: torch.dtype = torch.float64, seed: int = 0) -> np.ndarray:
    """The grid as float64 values (exactly representable in `dtype` for the tail kinds)."""
    kind = grid_kind(grid)
    if kind == "binades":
        return binade_values(dtype, grid.per_binade, grid.subnormals)
    if kind == "random":
        return random_values(dtype, grid.n or RANDOM_DRAWS, seed if grid.seed is None else grid.seed)
    if kind == "linspace":
        return np.linspace(grid.start, grid.stop, grid.n)
    return np.arange(grid.start, grid.stop, grid.step)


def _in_dtype(values: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    return torch.tensor(values, dtype=torch.float64).to(dtype).double().numpy()


def binade_exponents(dtype: torch.dtype, subnormals: bool) -> tuple[int, int]:
    """(lowest, highest) e with [2^e, 2^(e+1)) holding finite numbers of the dtype."""
    info = torch.finfo(dtype)
    # frexp gives x = m 2^k with m in [0.5, 1): exact, where log2(max) rounds up to 1024.
    lowest = math.frexp(info.tiny)[1] - 1 - (facts(dtype).nmant if subnormals else 0)
    return lowest, math.frexp(info.max)[1] - 1


def binade_values(dtype: torch.dtype, per_binade: int, subnormals: bool = False) -> np.ndarray:
    """2^(e + k/per_binade) for every binade e of the dtype and k < per_binade, rounded to
    the dtype (duplicates, where a binade holds fewer numbers, dropped), on both signs,
    with -0 and +0 between; ascending."""
    lowest, highest = binade_exponents(dtype, subnormals)
    exponents = np.arange(lowest, highest + 1)[:, None] + np.arange(per_binade)[None, :] / per_binade
    magnitudes = np.unique(_in_dtype(np.exp2(exponents.ravel()), dtype))
    magnitudes = magnitudes[np.isfinite(magnitudes) & (magnitudes > 0)]
    return np.concatenate([-magnitudes[::-1], [-0.0, 0.0], magnitudes])


def random_values(dtype: torch.dtype, draws: int, seed: int) -> np.ndarray:
    """`draws` seeded uniform draws over the dtype's bit patterns; non-finite patterns
    (NaN, ±inf) and repeats dropped; ascending."""
    width = torch.finfo(dtype).bits
    raw = np.random.default_rng(seed).integers(0, 2**width, size=draws, dtype=_BITS[width],
                                               endpoint=False)
    # torch views signed integers as floats of the same width (bfloat16 included).
    values = torch.from_numpy(raw.view(f"int{width}")).view(dtype).double().numpy()
    return np.unique(values[np.isfinite(values)])


def make_grid(grid: GridConf, dtype: torch.dtype, device: torch.device, seed: int = 0) -> torch.Tensor:
    """The grid in float64, rounded once to the run's dtype, on the run's device."""
    values = grid_values(grid, dtype, seed)
    return torch.tensor(values, dtype=torch.float64).to(dtype).to(device)


def grid_size(grid) -> float:
    """Points on a grid config (NaN when the config cannot say: a tail grid whose size
    depends on the dtype and the function's domain)."""
    try:
        kind = grid_kind(grid)
        if kind in TAIL_KINDS:
            return int(grid.n or RANDOM_DRAWS) if kind == "random" else math.nan
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
