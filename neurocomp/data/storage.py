"""Images too large to hold in memory (MedMNIST+ at 128 and 224 px: PathMNIST-224's training split
alone is 13.5 GB), read a batch at a time from an uncompressed copy of the ``.npz`` made once.

A ``.npz`` member cannot be memory-mapped while it is compressed, so each array is streamed once
into a plain ``.npy`` beside the ``.npz`` (or under ``$XDG_CACHE_HOME/neurocomp`` where that folder
is read-only), in a folder that appears whole (built under a temporary name, then renamed) and names
the MD5 of its source. Batches are read with ``pread``, not through a memory map: pages a map has
touched stay in the process's resident set until memory runs short, so an epoch over a mapped 13.5
GB file would look like 13.5 GB of RSS; read pages live in the page cache, which the kernel gives
back as it likes. Peak memory is a few batches, whatever the file's size.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..core.files import FOLDER_MODE

CACHE_MARKER = "source.json"


def cache_folder(npz: Path, md5: str) -> Path:
    """Where the uncompressed copy of ``npz`` lives: beside it when that folder is writable."""
    if os.access(npz.parent, os.W_OK):
        return npz.parent / f"{npz.stem}.uncompressed"
    root = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "neurocomp"
    return root / f"{npz.stem}-{md5[:12]}"


def uncompressed_copy(npz: Path, md5: str) -> Path:
    """The folder of ``<member>.npy`` files holding every array of ``npz`` uncompressed, made on first
    use (streamed member by member: memory stays at the copy buffer); made again when ``npz`` changed."""
    folder = cache_folder(npz, md5)
    if _holds_copy_of(folder, md5):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        building.chmod(FOLDER_MODE)
        with zipfile.ZipFile(npz) as archive:
            for member in archive.namelist():
                with archive.open(member) as source, open(building / member, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 24)
        (building / CACHE_MARKER).write_text(json.dumps({"source": str(npz), "md5": md5}))
        _publish(building, folder, md5)
    finally:
        shutil.rmtree(building, ignore_errors=True)  # gone already once published
    return folder


def _holds_copy_of(folder: Path, md5: str) -> bool:
    marker = folder / CACHE_MARKER
    return marker.exists() and json.loads(marker.read_text()).get("md5") == md5


def _publish(building: Path, folder: Path, md5: str) -> None:
    """Rename ``building`` to ``folder``. A rename onto a folder that exists fails: then another
    process published the same copy first (ours is dropped: its readers keep theirs) or the folder
    holds a copy of an older file (moved aside and deleted, then ours goes in)."""
    try:
        os.rename(building, folder)
    except OSError:
        if _holds_copy_of(folder, md5):
            return
        stale = Path(tempfile.mkdtemp(prefix=f".{folder.name}.stale.", dir=folder.parent))
        os.replace(folder, stale / "copy")
        os.rename(building, folder)
        shutil.rmtree(stale, ignore_errors=True)


class DiskImages:
    """uint8 images ``(N, C, H, W)`` or ``(N, C, D, H, W)`` in a ``.npy`` file stored ``(N, *stored)``
    (``(N, H, W)``, ``(N, H, W, 3)`` or ``(N, D, H, W)``), indexed like the tensor they stand for:
    ``images[index]`` reads those rows (a 1-D index tensor or a slice) as a tensor on ``device``."""

    def __init__(self, path: Path, channels_last: bool, device: Optional[torch.device] = None):
        mapped = np.load(path, mmap_mode="r")  # the header only: shape, dtype, where the rows start
        self.path, self.offset, self.stored = path, mapped.offset, mapped.shape
        self.row_bytes = int(np.prod(mapped.shape[1:])) * mapped.dtype.itemsize
        self.channels_last = channels_last
        self.device = device or torch.device("cpu")
        rest = mapped.shape[1:]
        logical = (rest[-1], *rest[:-1]) if channels_last else (1, *rest)
        self.shape = torch.Size((mapped.shape[0], *logical))
        del mapped

    dtype = torch.uint8

    def __len__(self) -> int:
        return self.shape[0]

    def to(self, device) -> "DiskImages":
        """The same file, with batches delivered on ``device``."""
        return DiskImages(self.path, self.channels_last, torch.device(device))

    def __getitem__(self, index) -> torch.Tensor:
        rows = np.arange(len(self))[index] if isinstance(index, slice) else index.cpu().numpy()
        batch = np.empty((len(rows), *self.stored[1:]), dtype=np.uint8)
        flat = batch.reshape(len(rows), -1)
        order = np.argsort(rows, kind="stable")
        with open(self.path, "rb", buffering=0) as handle:
            start = 0
            while start < len(order):  # one read per run of consecutive rows
                end = start + 1
                while end < len(order) and rows[order[end]] == rows[order[end - 1]] + 1:
                    end += 1
                data = os.pread(handle.fileno(), (end - start) * self.row_bytes,
                                self.offset + int(rows[order[start]]) * self.row_bytes)
                flat[order[start:end]] = np.frombuffer(data, dtype=np.uint8).reshape(end - start, -1)
                start = end
        tensor = torch.from_numpy(batch)
        tensor = tensor.permute(0, -1, *range(1, tensor.dim() - 1)) if self.channels_last else tensor.unsqueeze(1)
        return tensor.contiguous().to(self.device)
