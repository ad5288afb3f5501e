"""Large sets read from disk a batch at a time (neurocomp.data.storage): the same images, the same run, the
uncompressed copy made once, and what cannot work on disk refused in one line."""

import json

import numpy as np
import pytest
import torch

from neurocomp.data import datasets, storage
from neurocomp.cli import main
from neurocomp.core.config import DatasetConfig
from neurocomp.data.datasets import load_dataset
from neurocomp.core.errors import UsageError
from neurocomp.core.files import _umask
from neurocomp.runs.record import load_runs

from conftest import make_npz


@pytest.fixture
def from_disk(monkeypatch):
    monkeypatch.setattr(datasets, "MEMORY_LIMIT_BYTES", 0)  # every set counts as large


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 3), (8, 12, 10)])
def test_disk_images_read_the_same_pixels_as_the_tensor_in_memory(tmp_path, monkeypatch, shape):
    path = make_npz(tmp_path / "set.npz", image_shape=shape)
    in_memory = load_dataset(DatasetConfig(name=str(path)))
    monkeypatch.setattr(datasets, "MEMORY_LIMIT_BYTES", 0)
    on_disk = load_dataset(DatasetConfig(name=str(path)))
    assert on_disk.storage is not None and in_memory.storage is None
    for split in ("train", "val", "test"):
        disk, memory = on_disk.splits[split].images, in_memory.splits[split].images
        assert disk.shape == memory.shape
        assert torch.equal(on_disk.splits[split].labels, in_memory.splits[split].labels)
        index = torch.tensor([5, 3, 4, 3, 0, len(memory) - 1])  # unsorted, repeated, consecutive runs
        assert torch.equal(disk[index], memory[index])
        assert torch.equal(disk[2:9], memory[2:9])


def test_a_run_from_disk_equals_the_run_in_memory(npz_rgb, tmp_path, monkeypatch):
    args = ["run", str(npz_rgb), "--model", "cnn", "--epochs", "2", "--quiet", "--set", "train.sampler=balanced"]
    assert main([*args, "--out", str(tmp_path / "memory")]) == 0
    monkeypatch.setattr(datasets, "MEMORY_LIMIT_BYTES", 0)
    assert main([*args, "--out", str(tmp_path / "disk")]) == 0
    (memory,), (disk,) = load_runs(tmp_path / "memory"), load_runs(tmp_path / "disk")
    assert memory.dataset["storage"] == "memory" and disk.dataset["storage"].startswith("disk: ")
    assert disk.metrics["test"]["auc"] == memory.metrics["test"]["auc"]
    assert np.array_equal(disk.predictions("test")[1], memory.predictions("test")[1])


def test_the_uncompressed_copy_is_made_once_and_again_when_the_file_changes(npz_2d, from_disk):
    first = load_dataset(DatasetConfig(name=str(npz_2d))).storage
    marker = first / "source.json"
    made = marker.stat().st_mtime_ns
    assert load_dataset(DatasetConfig(name=str(npz_2d))).storage == first and marker.stat().st_mtime_ns == made
    make_npz(npz_2d, seed=7)  # same name, other images
    again = load_dataset(DatasetConfig(name=str(npz_2d)))
    assert json.loads((again.storage / "source.json").read_text())["md5"] == again.md5
    assert not [p for p in again.storage.parent.iterdir() if p.name.startswith(".")]  # no half-built copy left
    assert again.storage.stat().st_mode & 0o777 == 0o777 & ~_umask()  # as mkdir makes it, not mkdtemp's 0700


def test_a_read_only_data_folder_puts_the_copy_in_the_user_cache(npz_2d, tmp_path, monkeypatch, from_disk):
    # The check is os.access (root may write into a read-only folder, so chmod would prove nothing here).
    monkeypatch.setattr(storage.os, "access", lambda path, mode: path != npz_2d.parent)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    copy = load_dataset(DatasetConfig(name=str(npz_2d))).storage
    assert copy.parent == tmp_path / "cache" / "neurocomp" and (copy / "train_images.npy").exists()


def test_resizing_a_set_read_from_disk_is_refused(npz_2d, from_disk):
    with pytest.raises(UsageError, match="needs every image in memory"):
        load_dataset(DatasetConfig(name=str(npz_2d), resize=14))


def test_a_copy_published_first_by_another_process_is_kept(npz_2d, tmp_path, from_disk):
    folder = load_dataset(DatasetConfig(name=str(npz_2d))).storage
    md5 = json.loads((folder / "source.json").read_text())["md5"]
    theirs = (folder / "train_images.npy").stat().st_ino
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "source.json").write_text(json.dumps({"md5": md5}))
    storage._publish(ours, folder, md5)  # as if this process had built the same copy a moment later
    assert (folder / "train_images.npy").stat().st_ino == theirs  # readers of the first copy are not disturbed
