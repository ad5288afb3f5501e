"""Synthetic MedMNIST-layout files, made by the tests (no real data needed for the fast suite)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

SHARED_MEDMNIST = Path(__file__).resolve().parents[1].parent / "shared" / "medmnist"

# Two outside "packages" installed the way pip leaves them (a module and its dist-info with entry
# points) are put on sys.path before neurocomp first reads its entry points, so the registry, the
# model contract test and the CLI see a working plug-in (toy-leaky) and a broken one (broken-model).
sys.path.insert(0, str(Path(__file__).parent / "plugins"))


def make_npz(path: Path, *, image_shape=(28, 28), sizes=(64, 16, 16), num_classes=2, seed=0, **overrides) -> Path:
    """A MedMNIST-layout .npz whose classes differ in brightness, so a model can learn it quickly.

    image_shape: (H, W), (H, W, 3) or (D, H, W). Labels are stored (N, 1) like the official files.
    ``overrides`` replace or add arrays by key (e.g. ``train_labels=...``).
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), sizes):
        labels = np.arange(n) % num_classes
        rng.shuffle(labels)
        base = rng.integers(0, 120, size=(n, *image_shape))
        bright = (labels * (120 // max(num_classes - 1, 1))).reshape(-1, *[1] * len(image_shape))
        arrays[f"{split}_images"] = (base + bright).clip(0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    arrays.update(overrides)
    np.savez_compressed(path, **arrays)
    return path


def make_multi_label_npz(path: Path, *, num_labels=3, sizes=(96, 32, 32), seed=0) -> Path:
    """A multi-label MedMNIST-layout .npz (labels (N, L) of 0/1, like ChestMNIST's): label l is yes
    when the l-th band of rows is bright, so every label is learnable on its own."""
    rng = np.random.default_rng(seed)
    arrays = {}
    band = 28 // num_labels
    for split, n in zip(("train", "val", "test"), sizes):
        labels = (rng.random((n, num_labels)) < 0.4).astype(np.uint8)
        images = rng.integers(0, 100, size=(n, 28, 28))
        for label in range(num_labels):
            images[:, label * band:(label + 1) * band] += 120 * labels[:, label, None, None]
        arrays[f"{split}_images"] = images.clip(0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture
def npz_multi_label(tmp_path) -> Path:
    return make_multi_label_npz(tmp_path / "synthetic_chest.npz")


@pytest.fixture
def npz_2d(tmp_path) -> Path:
    return make_npz(tmp_path / "synthetic2d.npz")


@pytest.fixture
def npz_3d(tmp_path) -> Path:
    return make_npz(tmp_path / "synthetic3d.npz", image_shape=(16, 16, 16), sizes=(32, 8, 8))


@pytest.fixture
def npz_rgb(tmp_path) -> Path:
    return make_npz(tmp_path / "synthetic_rgb.npz", image_shape=(28, 28, 3), num_classes=4)
