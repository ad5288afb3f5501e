"""One small registry class for encoders and models (torchvision's ``register_model`` pattern).

Builders take keyword-only options; those options, with their annotations and defaults, are what
the config validates against. Outside packages add entries through an entry-point group, loaded on
first lookup; one that fails to import is reported by name and the rest stay usable.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

from .errors import UsageError


@dataclass(frozen=True)
class Entry:
    """A registered builder, its name and what the registry knows about it."""

    name: str
    builder: Callable[..., Any]
    meta: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """First line of the builder's docstring."""
        doc = inspect.getdoc(self.builder) or ""
        return doc.splitlines()[0] if doc else ""


class Registry:
    """Name -> builder; duplicates raise, unknown names list the valid ones."""

    def __init__(self, kind: str, entry_point_group: str):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry] = {}
        self.broken: dict[str, str] = {}  # plug-in name -> why it failed to load
        self._plugins_loaded = False

    def register(self, name: str, **meta: Any) -> Callable:
        """Decorator: ``@MODELS.register("snn", default_encoder="rate")``."""

        def decorate(builder: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, builder, meta)
            return builder

        return decorate

    def _load_plugins(self) -> None:
        # Flag first: a plug-in that looks up the registry while importing must not recurse.
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            try:
                ep.load()  # importing the module registers its builders with the decorator
            except Exception as error:  # a broken plug-in must not take the built-ins down
                self.broken[ep.name] = f"plug-in {ep.name!r} ({ep.value}) failed to load: {type(error).__name__}: {error}"
                warnings.warn(self.broken[ep.name], stacklevel=2)

    def names(self) -> list[str]:
        """Sorted registered names, plug-ins included."""
        self._load_plugins()
        return sorted(self._entries)

    def get(self, name: str) -> Entry:
        """The entry for ``name``; a UsageError listing the valid names otherwise."""
        self._load_plugins()
        if name in self.broken:
            raise UsageError(self.broken[name])
        if name not in self._entries:
            raise UsageError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries


ENCODERS = Registry("encoder", "neurocomp.encoders")
MODELS = Registry("model", "neurocomp.models")
register_encoder = ENCODERS.register
register_model = MODELS.register
