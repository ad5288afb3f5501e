"""Import paths from before the stage folders (``neurocomp.record``, ``neurocomp.run``, ...) keep
working for one release, each with a DeprecationWarning naming the new path: plug-ins and scripts
written against them get time to move. ``neurocomp.data``'s old names are forwarded by its package.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "neurocomp.abilities": "neurocomp.core.abilities",
    "neurocomp.allocator": "neurocomp.training.allocator",
    "neurocomp.assemble": "neurocomp.training.assemble",
    "neurocomp.bench": "neurocomp.analysis.bench",
    "neurocomp.claims": "neurocomp.runs.claims",
    "neurocomp.config": "neurocomp.core.config",
    "neurocomp.cost": "neurocomp.training.cost",
    "neurocomp.devices": "neurocomp.core.devices",
    "neurocomp.encoders": "neurocomp.data.encoders",
    "neurocomp.errors": "neurocomp.core.errors",
    "neurocomp.export": "neurocomp.analysis.export",
    "neurocomp.files": "neurocomp.core.files",
    "neurocomp.losses": "neurocomp.training.losses",
    "neurocomp.metrics": "neurocomp.training.metrics",
    "neurocomp.ncps_internals": "neurocomp.kernels.ncps_internals",
    "neurocomp.operating_points": "neurocomp.training.operating_points",
    "neurocomp.plots": "neurocomp.analysis.plots",
    "neurocomp.processes": "neurocomp.runs.processes",
    "neurocomp.ranking": "neurocomp.analysis.ranking",
    "neurocomp.record": "neurocomp.runs.record",
    "neurocomp.recount": "neurocomp.runs.recount",
    "neurocomp.registry": "neurocomp.core.registry",
    "neurocomp.report": "neurocomp.analysis.report",
    "neurocomp.run": "neurocomp.runs.pipeline",
    "neurocomp.sizing": "neurocomp.core.sizing",
    "neurocomp.space": "neurocomp.runs.space",
    "neurocomp.storage": "neurocomp.data.storage",
    "neurocomp.sweep": "neurocomp.runs.sweep",
    "neurocomp.table": "neurocomp.analysis.table",
    "neurocomp.trainer": "neurocomp.training.trainer",
    "neurocomp.tune": "neurocomp.runs.tune",
}


def deprecated(old: str, new: str) -> None:
    """Warn that ``old`` is now ``new`` (at the caller's caller: the import that named it)."""
    warnings.warn(f"{old} moved to {new}; the old path is removed in the next release", DeprecationWarning, stacklevel=3)


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and loads it as the module at its new path (the same object)."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        return None  # a throwaway module, replaced in sys.modules by exec_module

    def exec_module(self, module) -> None:
        deprecated(module.__name__, MOVED[module.__name__])
        # The import system returns what sys.modules holds after exec_module: the module itself.
        sys.modules[module.__name__] = importlib.import_module(MOVED[module.__name__])


def install() -> None:
    """Put the old-path finder on sys.meta_path, once."""
    if not any(isinstance(finder, _OldPaths) for finder in sys.meta_path):
        sys.meta_path.insert(0, _OldPaths())  # first: an editable install of an older checkout must not answer
