"""Plug-in registries: one per kind, a decorator to add to it, and an entry-point group.

Built-in plug-ins register themselves when their package is imported; outside packages add theirs
through the `importlib.metadata` entry-point group named after the kind (`harness.strategies`,
...). Both paths are loaded lazily on the first lookup, so importing the harness stays cheap.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Callable, Iterator

from harness.core.errors import ConfigError


class Registry:
    """Name -> plug-in mapping for one kind; raises on a duplicate name."""

    def __init__(self, kind: str, builtin_package: str, singular: str | None = None):
        self.kind = kind
        self.singular = singular or kind[:-1].replace("_", " ")
        self.group = f"harness.{kind}"
        self._builtin_package = builtin_package
        self._items: dict[str, Any] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[Any], Any]:
        def add(obj: Any) -> Any:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.singular} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        importlib.import_module(self._builtin_package)
        for entry in metadata.entry_points(group=self.group):
            if entry.name in self._items:
                continue  # a built-in or an already-imported module registered it
            try:
                obj = entry.load()
            except Exception as err:  # a broken outside plug-in must say which one it is
                raise ConfigError(
                    f"the {self.singular} plug-in {entry.name!r} "
                    f"({entry.value}) from entry-point group {self.group} fails to import: "
                    f"{type(err).__name__}: {err}; fix or uninstall that package") from None
            self.register(entry.name)(obj)

    def get(self, name: str) -> Any:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ConfigError(
                f"unknown {self.singular} {name!r}; known: {known}"
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, Any]]:
        self._load()
        return iter(sorted(self._items.items()))

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items


STRATEGIES = Registry("strategies", "strategies", "strategy")
ORACLES = Registry("oracles", "oracles")
COST_MODELS = Registry("cost_models", "cost_models")
BACKENDS = Registry("backends", "harness.backends")
DATASETS = Registry("datasets", "harness.datasets")

ALL = {r.kind: r for r in (STRATEGIES, BACKENDS, DATASETS, ORACLES, COST_MODELS)}


def describe(obj: Any) -> str:
    """First line of a plug-in's docstring: the one-line description `list` prints."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""
