"""The MedMNIST catalogue: what the suite knows about every named dataset before reading it (task,
classes, clinical positive class, published sizes and MD5s), the data folder, and the check that a
configured name and size exist. Reading the data is neurocomp.data.datasets' job.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from .errors import UsageError

if TYPE_CHECKING:
    from .config import DatasetConfig

@dataclass(frozen=True)
class DatasetInfo:
    """What the suite knows about a named dataset before reading it."""

    name: str
    flag: str  # MedMNIST's name, e.g. pneumoniamnist
    task: str  # binary-class, multi-class, ordinal-regression, multi-label
    volumetric: bool
    class_names: tuple[str, ...]
    positive: Optional[int]  # clinical positive class of a binary task
    description: str
    md5: dict  # size -> published MD5
    downloadable: bool = True

    def filename(self, size: int) -> str:
        return f"{self.flag}.npz" if size == 28 else f"{self.flag}_{size}.npz"

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(sorted(self.md5))


# Binary sets whose positive class is not 1 (BreastMNIST: 0 = malignant is what a clinician looks for).
_POSITIVE_OVERRIDES = {"breast": 0}


def _medmnist_info() -> dict:
    """MedMNIST's INFO table. Importing the medmnist package also imports its datasets and its
    evaluator (scikit-learn, PIL: ~0.7 s for ``neurocomp list``), so its plain ``info`` module is
    loaded on its own unless medmnist is imported already."""
    if "medmnist" in sys.modules:
        return sys.modules["medmnist"].INFO
    location = Path(importlib.util.find_spec("medmnist").origin).parent / "info.py"
    spec = importlib.util.spec_from_file_location("neurocomp._medmnist_info", location)
    info = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(info)
    return info.INFO


def _medmnist_infos() -> dict[str, DatasetInfo]:
    INFO = _medmnist_info()  # noqa: N806  (medmnist's name for it)

    infos = {}
    for flag, info in INFO.items():
        name = flag.replace("mnist", "")
        md5 = {28: info["MD5"], **{int(k[4:]): v for k, v in info.items() if k.startswith("MD5_")}}
        binary = info["task"] == "binary-class"
        infos[name] = DatasetInfo(
            name=name,
            flag=flag,
            task=info["task"],
            volumetric=flag.endswith("3d"),
            class_names=tuple(info["label"][str(i)] for i in range(len(info["label"]))),
            positive=_POSITIVE_OVERRIDES.get(name, 1) if binary else None,
            description=f"{info['python_class']}, {len(info['label'])} classes, {sum(info['n_samples'].values()):,} samples",
            md5=md5,
        )
    # The balanced subset committed with the snnTorch PneumoniaMNIST study (its test split is balanced too).
    base = infos["pneumonia"]
    infos["pneumonia-balanced"] = DatasetInfo(
        name="pneumonia-balanced",
        flag="pneumoniamnist_balanced",
        task=base.task,
        volumetric=False,
        class_names=base.class_names,
        positive=1,
        description="Balanced PneumoniaMNIST subset of the snnTorch study (2428/270/468, 50% pneumonia)",
        md5={28: "3062d8c693378b506564f35a50301b11"},
        downloadable=False,
    )
    return infos


DATASETS: dict[str, DatasetInfo] = _medmnist_infos()


def data_dir(configured: Optional[str]) -> Path:
    """The folder named by ``--data-dir``, else ``$NEUROCOMP_DATA_DIR``, else ``~/.medmnist``. A
    folder that was named must exist (a typo must not silently become a new, empty folder); the
    default is made when a download needs it."""
    named = configured or os.environ.get("NEUROCOMP_DATA_DIR")
    folder = Path(named or "~/.medmnist").expanduser()
    if named and not folder.is_dir():
        source = "--data-dir" if configured else "NEUROCOMP_DATA_DIR"
        raise UsageError(f"{source} {folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    return folder


@dataclass(frozen=True)
class Layout:
    """What a config's defaults need to know of a set before it is read."""

    volumetric: bool  # samples are 3D volumes (D, H, W)
    multi_label: bool  # labels (N, L) of 0/1, L > 1


def layout(config: "DatasetConfig") -> Layout:
    """A named set's layout from MedMNIST's table; a .npz's from the shapes of its training arrays
    (the images' header only, the labels in full: they are small). A file that cannot be read yet
    counts as 2D single-label: its loader reports what is wrong with it."""
    info = check_dataset(config)
    if info is not None:
        return Layout(info.volumetric, "multi-label" in info.task)
    try:
        with zipfile.ZipFile(Path(config.name).expanduser()) as archive, archive.open("train_images.npy") as stream:
            version = np.lib.format.read_magic(stream)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            images = reader(stream)[0]
        with np.load(Path(config.name).expanduser(), allow_pickle=False) as arrays:
            labels = arrays["train_labels"].shape
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return Layout(False, False)
    # (N, D, H, W) is a volume; (N, H, W, 3) is an RGB image, as the loader reads them
    return Layout(len(images) == 4 and images[-1] != 3, len(labels) == 2 and labels[1] > 1)


def check_dataset(config: DatasetConfig) -> Optional[DatasetInfo]:
    """The info of the named dataset (None for a path to a .npz, read and checked when loaded);
    UsageError for a name the suite does not know or a size it is not published in."""
    if config.name.endswith(".npz") or os.sep in config.name:
        return None
    info = DATASETS.get(config.name)
    if info is None:
        raise UsageError(f"unknown dataset {config.name!r}; choose one of: {', '.join(sorted(DATASETS))}, or a path to a .npz")
    if config.size not in info.sizes:
        raise UsageError(f"{config.name} is published at sizes {', '.join(map(str, info.sizes))}, not {config.size}")
    return info
