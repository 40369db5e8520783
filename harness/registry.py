"""One small registry type, used for every kind of plugin (functions, methods, networks).

The registry is the single list of choices: CLI validation, error messages, the
ConfigStore entries, docs tables and parametrized tests are all derived from it.
Registrations read as a list: `Registry("method", [Method(...), Method(...)])`.
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")


class UnknownChoice(ValueError):
    """A user named a choice that is not registered; the message lists the valid ones."""


def near_miss(name: object, choices: Iterable[str], cutoff: float = 0.75) -> Optional[str]:
    """The registered choice closest to a misspelt one ('sinn' -> 'sin'), if any is close
    (difflib's similarity >= cutoff; short config keys need a lower one: 'nn' -> 'n')."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    if str(name).lower() in lowered:  # 'Gelu' for 'GELU'
        return lowered[str(name).lower()]
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=cutoff)
    return close[0] if close else None


def choice_error(kind: str, name: object, choices: list[str]) -> str:
    """The one-line message used for every unknown choice, so all read the same."""
    guess = near_miss(name, choices)
    hint = f" (did you mean {guess!r}?)" if guess is not None else ""
    return f"unknown {kind} {name!r}{hint}; choose one of: {', '.join(choices)}"


class Registry(Generic[T]):
    """Name -> item, filled at import time, read-only afterwards."""

    def __init__(self, kind: str, items: Iterable[T] = (),
                 key: Callable[[T], str] = lambda item: item.name) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        for item in items:
            self.add(key(item), item)

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

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
