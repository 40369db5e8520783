"""Every fact about a floating-point dtype, in one table: name, mantissa bits, tolerances,
complex partner. Everything else (parsing, ULPs, steps, plots) reads it from here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass(frozen=True)
class DtypeFacts:
    name: str
    torch: torch.dtype
    # Explicit mantissa bits: the spacing of [1, 2) is 2^-nmant.
    nmant: int
    # torch.testing.assert_close's defaults, the bar a PyTorch user already knows. rtol is
    # also the headline verdict: a point passes when |err| <= rtol * |f'| (relative, so a
    # 0 where f' = 1e-18 fails); atol only enters assert_close_rate, which reports what
    # torch.testing would say (|err| <= atol + rtol * |ref|).
    rtol: float
    atol: float
    # The complex dtype with these parts (for the complex step), if torch has one.
    complex: Optional[torch.dtype] = None

    @property
    def eps(self) -> float:
        return float(torch.finfo(self.torch).eps)

    @property
    def half(self) -> bool:
        """16-bit: NumPy-based peers and some kernels do not support it."""
        return self.nmant < 23


TABLE = (
    DtypeFacts("float64", torch.float64, 52, 1e-7, 1e-7, torch.complex128),
    DtypeFacts("float32", torch.float32, 23, 1.3e-6, 1e-5, torch.complex64),
    DtypeFacts("float16", torch.float16, 10, 1e-3, 1e-5),
    DtypeFacts("bfloat16", torch.bfloat16, 7, 1.6e-2, 1e-5),
)
BY_NAME = {facts.name: facts for facts in TABLE}
BY_TORCH = {facts.torch: facts for facts in TABLE}
# name -> torch dtype, in the table's order (CLI choices, docs).
DTYPES = {facts.name: facts.torch for facts in TABLE}


def facts(dtype: torch.dtype | str) -> DtypeFacts:
    """The table row of a torch dtype or a dtype name."""
    return BY_NAME[dtype] if isinstance(dtype, str) else BY_TORCH[dtype]


def name_of(dtype: torch.dtype) -> str:
    return BY_TORCH[dtype].name
