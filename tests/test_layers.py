"""The house's layers, read from the source: imports run one way down, with no cycle.

Layer order (bottom to top), the same as README.md's "How the code is laid out":
registries, dtype facts, errors, atomic writes, time limits, lazy modules -> folder claims, functions,
methods -> networks -> the study flow -> config, results on disk -> analysis -> report ->
sweep mechanics -> the app behind run.py, the Python API (api) and the comparison of
stored results (compare), which know nothing of each other (the harness package itself
joins them lazily).
A module may import its own package and any lower layer, never a higher one, and never a
package of its own rank (functions and methods know nothing of each other).
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "harness"

LAYERS = {
    "registry": 0, "dtypes": 0, "atomic": 0, "errors": 0, "timelimit": 0, "lazy": 0,
    "claims": 1, "functions": 1, "methods": 1,
    "networks": 2,
    "study": 3,
    "config": 4, "results": 4,
    "analysis": 5,
    "report": 6,
    "multirun": 7,
    "app": 8, "docs": 8, "api": 8, "compare": 8,
}
# Only these may import Hydra (plots, tables and the study must be usable without it).
HYDRA_PACKAGES = {"config", "multirun", "app"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(HARNESS.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=1)
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(HARNESS.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """Every harness module a file imports, anywhere in it (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name in known}


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


@functools.lru_cache(maxsize=1)
def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods)) - {name} for name, path in mods.items()}


def external(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_harness_package_has_a_layer():
    assert {package(m) for m in modules() if m != "harness"} <= set(LAYERS)


@pytest.mark.parametrize("module", sorted(m for m in modules() if m != "harness"))
def test_module_imports_only_its_package_and_lower_layers(module):
    rank = LAYERS[package(module)]
    upward = sorted(dep for dep in graph()[module] if dep != "harness"
                    and package(dep) != package(module) and LAYERS[package(dep)] >= rank)
    assert upward == [], f"{module} (layer {rank}) imports {upward}"


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """A cycle in the import graph as a list of modules, or [] (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = 2
        stack.pop()
        return []

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_find_cycle_finds_a_planted_cycle_and_none_in_a_chain():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_harness_import_graph_has_no_cycle():
    assert find_cycle(graph()) == []


@pytest.mark.parametrize("module", sorted(m for m in modules()
                                          if package(m) not in HYDRA_PACKAGES))
def test_only_config_multirun_and_app_import_hydra(module):
    assert "hydra" not in external(modules()[module])
