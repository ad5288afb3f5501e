"""One small registry class for encoders and models (torchvision's ``register_model`` pattern).

Builders take keyword-only options; those options, with their annotations and defaults, are what
the config validates against. Outside packages add entries through an entry-point group, loaded on
first lookup; one that fails to import is reported by name and the rest stay usable.
"""

from __future__ import annotations

import ast
import inspect
import warnings
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import UsageError
from .sizing import FLOOR

# Paradigm families that tables and plots group by; a plug-in may name a new one.
FAMILIES = ("spiking", "liquid", "recurrent", "convolutional", "fully connected")


@dataclass(frozen=True)
class ModelInfo:
    """What a model's registration declares; a misspelt key fails at registration."""

    default_encoder: str = "static"  # fed to the model when a run names no encoder
    volume_encoder: str = "slices"  # the same, on a 3D set: one 2D slice per step, which every 2D model reads
    width: Optional[str] = None  # the option ``--params`` scales (a tuple's first entry; the rest keep their ratio)
    # The narrowest any layer that ``--params`` scales may get (units, neurons, channels): a budget that
    # would go under it is refused, naming the smallest budget the model reaches.
    floor: int = FLOOR
    family: str = "other"  # paradigm, one of FAMILIES or a new one: tables and plots group by it
    lr: Optional[float] = None  # the model's own default learning rate, where train.lr is not set
    # What `neurocomp tune` searches besides the tune file's shared keys: option -> a range
    # {low, high[, log][, step]} or a list of choices (neurocomp.runs.space). The width option is the
    # parameter budget's, so it is not searched here.
    space: dict = field(default_factory=dict, hash=False, compare=False)
    # Options whose behaviour-preserving value (what the model did before the option existed) is not
    # their default, e.g. after a default changed: the run id leaves an option out only at this value.
    neutral: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class EncoderInfo:
    """What an encoder's registration declares."""

    # As ModelInfo.neutral: options whose behaviour-preserving value is not their default.
    neutral: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Entry:
    """A registered builder, its name and what its registration declared."""

    name: str
    builder: Callable[..., Any]
    meta: Any  # the registry's info type (ModelInfo, EncoderInfo)

    @property
    def summary(self) -> str:
        """First line of the builder's docstring."""
        doc = inspect.getdoc(self.builder) or ""
        return doc.splitlines()[0] if doc else ""


class Registry:
    """Name -> builder; duplicates raise, unknown names list the valid ones."""

    def __init__(self, kind: str, entry_point_group: str, info: type, builtins: str):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.info = info
        self.builtins = builtins  # the module whose import registers the built-ins
        self._entries: dict[str, Entry] = {}
        self.broken: dict[str, str] = {}  # plug-in name -> why it failed to load
        self._plugins_loaded = False

    def register(self, name: str, **meta: Any) -> Callable:
        """Decorator: ``@MODELS.register("snn", default_encoder="rate", family="spiking")``; the
        keywords are the registry's info type's fields (a TypeError names an unknown one)."""
        info = self.info(**meta)

        def decorate(builder: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, builder, info)
            return builder

        return decorate

    def _load_plugins(self) -> None:
        # Flag first: a plug-in that looks up the registry while importing must not recurse.
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        # The built-ins are imported on first lookup, not with the package, so that a command
        # which needs no model (``neurocomp --help``) does not pay for torch.
        import_module(self.builtins)
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
        if name in self._entries:  # a broken plug-in named like a built-in does not hide it
            return self._entries[name]
        if name in self.broken:
            raise UsageError(self.broken[name])
        raise UsageError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")

    def summaries(self) -> dict[str, str]:
        """Name -> first docstring line of every registered builder, the built-ins read from their
        source without importing them (so ``neurocomp list`` starts without torch), the plug-ins
        imported only when some are installed."""
        found = dict(_registered_in_source(self.builtins))
        if entry_points(group=self.entry_point_group):
            found.update({name: self.get(name).summary for name in self.names()})
        return dict(sorted(found.items()))

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries


def _registered_in_source(module: str) -> dict[str, str]:
    """Name -> docstring summary of every ``@register_model("name")`` / ``@register_encoder("name")``
    builder in the source of ``module`` (a package: each of its files), read with ``ast``."""
    path = Path(__file__).resolve().parents[1].joinpath(*module.split(".")[1:])
    files = sorted(path.glob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    found = {}
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Name)
                        and decorator.func.id in ("register_model", "register_encoder") and decorator.args
                        and isinstance(decorator.args[0], ast.Constant)):
                    doc = inspect.cleandoc(ast.get_docstring(node) or "")
                    found[decorator.args[0].value] = doc.splitlines()[0] if doc else ""
    return found


ENCODERS = Registry("encoder", "neurocomp.encoders", EncoderInfo, "neurocomp.data.encoders")
MODELS = Registry("model", "neurocomp.models", ModelInfo, "neurocomp.models")
register_encoder = ENCODERS.register
register_model = MODELS.register
