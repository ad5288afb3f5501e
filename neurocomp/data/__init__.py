"""Stage 2, data and encoders: MedMNIST sets read into uint8 tensors (``datasets``, ``storage``) and the
encoders that turn an image batch into a time-major sequence (``encoders``).

``neurocomp.data`` was one module before the stage folders: its names still resolve here for one
release, with a DeprecationWarning naming their new module.
"""

from __future__ import annotations

import importlib

from ..core.moved import deprecated

_OLD_NAMES = {"DATASETS": "neurocomp.core.catalogue", "DatasetInfo": "neurocomp.core.catalogue",
              "check_dataset": "neurocomp.core.catalogue", "data_dir": "neurocomp.core.catalogue",
              **{name: "neurocomp.data.datasets" for name in ("Dataset", "Split", "load_dataset", "resize", "SPLITS")}}


def __getattr__(name: str):
    if name not in _OLD_NAMES:
        raise AttributeError(f"module 'neurocomp.data' has no attribute {name!r}")
    deprecated(f"neurocomp.data.{name}", f"{_OLD_NAMES[name]}.{name}")
    return getattr(importlib.import_module(_OLD_NAMES[name]), name)
