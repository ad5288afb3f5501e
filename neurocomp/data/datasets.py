"""MedMNIST datasets: uint8 image tensors (held in memory, or read from disk a batch at a time when
they are large: neurocomp.data.storage), and int64 labels squeezed to (N,) (one class per image) or kept
(N, L) as 0/1 (multi-label: ChestMNIST's 14 findings, any subset per image).

A dataset is named (``pneumonia``, ``breast``, ``adrenal3d``, ``pneumonia-balanced``, ...) or given
as a path to any ``.npz`` in MedMNIST layout (``{train,val,test}_{images,labels}``). Named sets are
read from the data dir (``--data-dir``, ``$NEUROCOMP_DATA_DIR``, ``~/.medmnist``) and downloaded
through ``medmnist`` when absent.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..core.catalogue import DatasetInfo, check_dataset, data_dir
from ..core.config import DatasetConfig
from ..core.errors import UsageError
from .storage import DiskImages, uncompressed_copy

SPLITS = ("train", "val", "test")
# Sets whose images take more than this uncompressed are read from disk a batch at a time
# (neurocomp.data.storage): PathMNIST-64 (1.3 GB) stays in memory, PathMNIST-128 (5.3 GB) does not.
MEMORY_LIMIT_BYTES = 2 << 30


@dataclass
class Split:
    """images: uint8 ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (a tensor, or a DiskImages indexed like one);
    labels: int64 ``(N,)`` class indices, or ``(N, L)`` of 0/1 for a multi-label set."""

    images: torch.Tensor | DiskImages
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Dataset:
    """The three splits of one dataset and what the metrics need to know about it."""

    name: str
    path: Path
    md5: str
    class_names: tuple[str, ...]  # of a multi-label set: its labels (findings)
    positive: Optional[int]  # None for multi-class and multi-label tasks
    splits: dict[str, Split]
    storage: Optional[Path] = None  # the uncompressed copy images are read from; None: held in memory

    @property
    def num_classes(self) -> int:
        """Classes, or labels of a multi-label set: the model's outputs either way."""
        return len(self.class_names)

    @property
    def multi_label(self) -> bool:
        return self.splits["train"].labels.ndim == 2

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"].images.shape[1:])


def load_dataset(config: DatasetConfig) -> Dataset:
    """Read (and if needed download) the dataset named in ``config``, resized if asked; UsageError on bad input."""
    dataset = _load(config)
    if config.resize is not None:
        if config.resize < 1:
            raise UsageError(f"dataset.resize must be a positive side length, got {config.resize}")
        if dataset.storage is not None:
            raise UsageError(f"dataset.resize needs every image in memory, and {dataset.name} is read from disk "
                             f"({dataset.storage}); train at a published size (--size) instead")
        for split in dataset.splits.values():
            split.images = resize(split.images, config.resize)
    return dataset


def resize(images: torch.Tensor, side: int, chunk: int = 256) -> torch.Tensor:
    """uint8 ``(N, C, *spatial)`` -> uint8 ``(N, C, side, ..., side)``.

    Shrinking averages the covered voxels (area), enlarging interpolates (bi/trilinear); chunks
    keep the float copy small (AdrenalMNIST3D at 64^3 is 1.2 GB as float32).
    """
    spatial = images.shape[2:]
    if all(s == side for s in spatial):
        return images
    mode = "area" if all(s >= side for s in spatial) else ("bilinear" if len(spatial) == 2 else "trilinear")
    resized = [
        F.interpolate(part.float(), size=(side,) * len(spatial), mode=mode).round_().clamp_(0, 255).to(torch.uint8)
        for part in images.split(chunk)
    ]
    return torch.cat(resized)


def _load(config: DatasetConfig) -> Dataset:
    info = check_dataset(config)
    if info is None:
        return _from_npz(Path(config.name).expanduser(), config.name, None, config.positive, None)
    folder = data_dir(config.data_dir)
    path = folder / info.filename(config.size)
    if not path.exists():
        _download(info, config.size, folder, config.download)
    expected_md5 = info.md5[config.size] if config.verify else None
    return _from_npz(path, config.name, info, config.positive, expected_md5)


def _download(info: DatasetInfo, size: int, folder: Path, allowed: bool) -> None:
    where = f"put it in {folder} (or point --data-dir / NEUROCOMP_DATA_DIR at the folder that holds it)"
    if not info.downloadable:
        raise UsageError(f"{info.filename(size)} is not in {folder} and cannot be downloaded; {where}")
    if not allowed:
        raise UsageError(f"{info.filename(size)} is not in {folder} and downloads are off; {where}")
    import medmnist

    folder.mkdir(parents=True, exist_ok=True)
    try:
        getattr(medmnist, medmnist.INFO[info.flag]["python_class"])(
            split="train", root=str(folder), size=size, download=True
        )
    except Exception as error:  # network errors come in many types; all mean the same to the user
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"could not download {info.filename(size)} ({reason}); {where}") from None


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _from_npz(
    path: Path, name: str, info: Optional[DatasetInfo], positive: Optional[int], expected_md5: Optional[str]
) -> Dataset:
    if not path.exists():
        raise UsageError(f"dataset file {path} does not exist")
    if not path.is_file():
        raise UsageError(f"dataset {path} is a folder, not a MedMNIST .npz file")
    md5 = _md5(path)
    if expected_md5 and md5 != expected_md5:
        # Repacked copies (recompressed, same arrays) differ in MD5 too, so warn rather than refuse.
        warnings.warn(
            f"{path} has MD5 {md5}, not the published {expected_md5}; "
            "the file may be a repack or corrupt (dataset.verify=false silences this)",
            stacklevel=2,
        )
    try:
        with zipfile.ZipFile(path) as archive:
            image_bytes = sum(member.file_size for member in archive.infolist() if member.filename.endswith("_images.npy"))
        if image_bytes > MEMORY_LIMIT_BYTES:
            storage = uncompressed_copy(path, md5)
            arrays = {member.stem: np.load(member, mmap_mode="r", allow_pickle=False) for member in storage.glob("*.npy")}
            arrays.update({key: np.array(value) for key, value in arrays.items() if key.endswith("_labels")})
        else:
            storage = None
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise UsageError(f"{path} is not a readable .npz file ({str(error).splitlines()[0]})") from None
    missing = [f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels") if f"{split}_{kind}" not in arrays]
    if missing:
        raise UsageError(f"{path} lacks {', '.join(missing)}; a MedMNIST .npz holds {{train,val,test}}_{{images,labels}}")
    volumetric = info.volumetric if info else arrays["train_images"].ndim == 4 and arrays["train_images"].shape[-1] not in (3,)
    splits = {split: _split(path, split, arrays, volumetric) for split in SPLITS}
    shapes = {tuple(s.images.shape[1:]) for s in splits.values()}
    if len(shapes) != 1:
        raise UsageError(f"{path}: the splits hold images of different shapes {sorted(shapes)}")
    if len({s.labels.ndim for s in splits.values()}) != 1 or len({s.labels.shape[1:] for s in splits.values()}) != 1:
        raise UsageError(f"{path}: the splits hold labels of different shapes")
    if splits["train"].labels.ndim == 2:
        return _multi_label(path, name, info, positive, md5, splits, storage)
    num_labels = int(max(int(s.labels.max()) for s in splits.values())) + 1
    class_names = info.class_names if info else tuple(str(i) for i in range(max(num_labels, 2)))
    if num_labels > len(class_names):
        raise UsageError(f"{path}: labels reach {num_labels - 1} but {name} has {len(class_names)} classes")
    # A file's classes are 0..K-1, each one learnable: a stray label 1000 would make a 1001-class model.
    trained = set(splits["train"].labels.unique().tolist())
    if len(trained) < 2 or (info is None and trained != set(range(num_labels))):
        raise UsageError(f"{path}: the training split holds classes {sorted(trained)[:10]}; it needs every class "
                         f"0..{max(num_labels, 2) - 1} (at least two)")
    binary = len(class_names) == 2
    if positive is None:
        positive = (info.positive if info else 1) if binary else None
    elif not binary or positive not in (0, 1):
        raise UsageError(f"--positive {positive}: {name} has {len(class_names)} classes; a positive class is for binary tasks (0 or 1)")
    return Dataset(name, path, md5, class_names, positive, splits, storage)


def _multi_label(path: Path, name: str, info: Optional[DatasetInfo], positive: Optional[int], md5: str,
                 splits: dict[str, Split], storage: Optional[Path]) -> Dataset:
    """A multi-label dataset: labels ``(N, L)`` of 0/1, each label seen both ways in training."""
    num_labels = splits["train"].labels.shape[1]
    class_names = info.class_names if info else tuple(str(i) for i in range(num_labels))
    if num_labels != len(class_names):
        raise UsageError(f"{path}: labels have {num_labels} columns but {name} has {len(class_names)} labels")
    if positive is not None:
        raise UsageError(f"--positive {positive}: {name} is multi-label (each of its {num_labels} labels is its own "
                         "yes/no); a positive class is for binary tasks")
    positives = splits["train"].labels.sum(dim=0)
    unlearnable = [class_names[i] for i in range(num_labels) if positives[i] in (0, len(splits["train"]))]
    if unlearnable:
        raise UsageError(f"{path}: label {unlearnable[0]!r} is the same for every training image; each label needs "
                         "positive and negative training images")
    return Dataset(name, path, md5, class_names, None, splits, storage)


def _split(path: Path, split: str, arrays: dict, volumetric: bool) -> Split:
    images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    if images.dtype != np.uint8:
        raise UsageError(f"{path}: {split}_images has dtype {images.dtype}; MedMNIST images are uint8")
    multi_label = labels.ndim == 2 and labels.shape[1] > 1
    if not multi_label:
        labels = labels.reshape(-1)  # (N, 1) -> (N,) here, once, so no metric can broadcast to N x N
    if labels.dtype.kind not in "iub" and not (labels.dtype.kind == "f" and np.isfinite(labels).all()
                                              and (labels == np.round(labels)).all()):
        raise UsageError(f"{path}: {split}_labels hold {labels.dtype} values that are not whole numbers; labels are class indices")
    if len(labels) != len(images):
        raise UsageError(f"{path}: {split} has {len(images)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise UsageError(f"{path}: the {split} split is empty")
    if labels.min() < 0:
        raise UsageError(f"{path}: {split}_labels holds negative labels")
    if multi_label and labels.max() > 1:
        raise UsageError(f"{path}: {split}_labels has {labels.shape[1]} columns (multi-label) but holds {labels.max()}; "
                         "each column is 0 or 1")
    # (N, D, H, W) and (N, H, W) gain a channel axis; RGB (N, H, W, 3) becomes (N, 3, H, W).
    rgb = not volumetric and images.ndim == 4 and images.shape[-1] == 3
    if not (rgb or images.ndim == (4 if volumetric else 3)):
        kind = "3D volumes (N, D, H, W)" if volumetric else "2D images (N, H, W) or (N, H, W, 3)"
        raise UsageError(f"{path}: {split}_images has shape {images.shape}; expected {kind}")
    if isinstance(images, np.memmap):
        tensor = DiskImages(Path(images.filename), channels_last=rgb)
    else:
        tensor = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous() if rgb else torch.from_numpy(images).unsqueeze(1)
    return Split(tensor, torch.from_numpy(labels.astype(np.int64)))
