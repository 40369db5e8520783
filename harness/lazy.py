"""Modules imported on first use.

sympy (and mpmath beneath it) cost about a second of every command's start on a small
machine, while a study of a function with a ball (Arb) form, the common case, never
touches them: they serve user expressions, the mpmath fallback, error models and docs.
Code that needs them reads `sp.<name>` inside a function; nothing reads them at import.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module `name`, imported at the first attribute read."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r}, {state}>"


# The lazy modules dydx uses (`from harness.lazy import sympy as sp`).
sympy = LazyModule("sympy")
mpmath = LazyModule("mpmath")
