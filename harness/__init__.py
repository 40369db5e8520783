"""dydx: measure how accurate and how fast each way of computing a derivative is.

From Python (a notebook, a script, another project's tests), see harness.api:

    import harness as dydx
    r = dydx.study("tanh", method="autograd", dtype="float32")    # one study
    s = dydx.sweep(fn=["sin", "tanh"], method=["autograd", "finite"])
    dydx.load("results/sweeps/<folder>")                         # a stored run or sweep
    dydx.comparison("old/summary.parquet", "new/summary.parquet", fail_if=["max_ulp>1.5x"])

Importing this package stays cheap (run.py imports it too): the API, which loads torch,
Hydra and pandas, is imported on first use (PEP 562 module __getattr__).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what static tools and IDEs see
    from harness.api import (ConfigError, DydxError, Record, RunResult, SweepResult, load,
                             study, sweep)
    from harness.compare import Comparison, comparison

__all__ = ["study", "sweep", "load", "comparison", "Record", "RunResult", "SweepResult",
           "Comparison", "DydxError", "ConfigError"]

# Lazy attributes: name -> the module that defines it.
_LAZY = {
    "sweep": "harness.api", "load": "harness.api", "Record": "harness.api",
    "RunResult": "harness.api", "SweepResult": "harness.api", "ConfigError": "harness.api",
    "DydxError": "harness.api",
    "comparison": "harness.compare", "Comparison": "harness.compare",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Study:
    # `harness.study` names two things: the function that runs one study (harness.api.study)
    # and the package of the study flow (harness/study/). Calling this runs a study; any
    # attribute is the package's, so harness.study.flow.run_study still resolves.

    def __call__(self, *args: Any, **kwargs: Any):
        return _api().study(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("harness.study"), name)

    @property
    def __doc__(self) -> str:  # what help() and IPython's `?` show: the API's own
        return _api().study.__doc__

    @property
    def __signature__(self):
        import inspect  # only when asked: help(), IPython, an IDE

        return inspect.signature(_api().study)

    def __repr__(self) -> str:
        return "<harness.study: run one study (harness.api.study)>"


def _api():
    return importlib.import_module("harness.api")


# Load the study package (its __init__ is a docstring) before binding the name, so the import
# system, which binds a package to its parent when it first loads it, never rebinds it later.
importlib.import_module("harness.study")
study = _Study()
