"""One small registry type, used for every kind of plugin (functions, methods).

The registry is the single list of choices: CLI validation, error messages, the
ConfigStore entries, docs tables and parametrized tests are all derived from it.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownChoice(ValueError):
    """A user named a choice that is not registered; the message lists the valid ones."""


def choice_error(kind: str, name: object, choices: list[str]) -> str:
    """The one-line message used for every unknown choice, so all read the same."""
    return f"unknown {kind} {name!r}; choose one of: {', '.join(choices)}"


class Registry(Generic[T]):
    """Name -> item, filled at import time, read-only afterwards."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda item: self.add(name, item)

    def get(self, name: str) -> T:
        if name not in self._items:
            raise UnknownChoice(choice_error(self.kind, name, self.names()))
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
