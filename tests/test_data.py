
import numpy as np
import pytest
import torch

from conftest import SHARED_MEDMNIST, make_npz
from neurocomp.core.config import DatasetConfig
from neurocomp.data.datasets import load_dataset
from neurocomp.core.errors import UsageError


def test_npz_path_loads_into_tensors_with_squeezed_labels(npz_2d):
    dataset = load_dataset(DatasetConfig(name=str(npz_2d)))
    train = dataset.splits["train"]
    assert train.images.dtype == torch.uint8 and train.images.shape == (64, 1, 28, 28)
    assert train.labels.dtype == torch.int64 and train.labels.shape == (64,)
    assert dataset.num_classes == 2 and dataset.positive == 1
    assert dataset.sample_shape == (1, 28, 28)


def test_rgb_images_become_channels_first(npz_rgb):
    dataset = load_dataset(DatasetConfig(name=str(npz_rgb)))
    assert dataset.sample_shape == (3, 28, 28)
    assert dataset.num_classes == 4 and dataset.positive is None
    raw = np.load(npz_rgb)["train_images"]
    assert torch.equal(dataset.splits["train"].images[5, 2], torch.from_numpy(raw[5, :, :, 2]))


def test_volumes_get_a_channel_axis(npz_3d):
    assert load_dataset(DatasetConfig(name=str(npz_3d))).sample_shape == (1, 16, 16, 16)


def test_named_dataset_from_data_dir_with_its_clinical_positive(tmp_path):
    make_npz(tmp_path / "breastmnist.npz")
    with pytest.warns(UserWarning, match="not the published"):
        dataset = load_dataset(DatasetConfig(name="breast", data_dir=str(tmp_path)))
    assert dataset.positive == 0 and dataset.class_names[0] == "malignant"
    override = load_dataset(DatasetConfig(name="breast", data_dir=str(tmp_path), positive=1, verify=False))
    assert override.positive == 1


def test_data_dir_comes_from_the_environment(tmp_path, monkeypatch):
    make_npz(tmp_path / "pneumoniamnist_64.npz", image_shape=(64, 64))
    monkeypatch.setenv("NEUROCOMP_DATA_DIR", str(tmp_path))
    dataset = load_dataset(DatasetConfig(name="pneumonia", size=64, verify=False))
    assert dataset.sample_shape == (1, 64, 64)


def test_missing_file_says_which_file_and_where(tmp_path):
    with pytest.raises(UsageError, match=rf"pneumoniamnist.npz is not in {tmp_path}.*put it in {tmp_path}"):
        load_dataset(DatasetConfig(name="pneumonia", data_dir=str(tmp_path), download=False))
    with pytest.raises(UsageError, match="pneumoniamnist_balanced.npz is not in .* cannot be downloaded"):
        load_dataset(DatasetConfig(name="pneumonia-balanced", data_dir=str(tmp_path)))


@pytest.mark.parametrize(
    "config, message",
    [
        (DatasetConfig(name="lungs"), "unknown dataset 'lungs'; choose one of: adrenal3d"),
        (DatasetConfig(name="chest", size=32), "published at sizes 28, 64, 128, 224, not 32"),
        (DatasetConfig(name="breast", size=32), "published at sizes 28, 64, 128, 224, not 32"),
        (DatasetConfig(name="adrenal3d", size=128), "published at sizes 28, 64, not 128"),
        (DatasetConfig(name="/no/such/file.npz"), "does not exist"),
    ],
)
def test_bad_dataset_requests(config, message):
    with pytest.raises(UsageError, match=message):
        load_dataset(config)


def test_corrupt_npz(tmp_path):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(UsageError, match="not a readable .npz"):
        load_dataset(DatasetConfig(name=str(path)))


def test_npz_missing_keys(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(UsageError, match="lacks train_labels, val_images"):
        load_dataset(DatasetConfig(name=str(path)))


@pytest.mark.parametrize(
    "override, message",
    [
        ({"val_images": np.zeros((16, 28), np.uint8)}, r"val_images has shape \(16, 28\)"),
        ({"test_labels": np.zeros((3, 1), np.uint8)}, "test has 16 images but 3 labels"),
        ({"train_images": np.zeros((64, 28, 28), np.float32)}, "dtype float32"),
        ({"train_labels": np.zeros((64, 14), np.uint8)}, "labels of different shapes"),
        ({"train_labels": np.full((64, 14), 2, np.uint8), "val_labels": np.zeros((16, 14), np.uint8),
          "test_labels": np.zeros((16, 14), np.uint8)}, "each column is 0 or 1"),
        ({"val_images": np.zeros((16, 32, 32), np.uint8)}, "different shapes"),
    ],
)
def test_wrongly_shaped_npz(tmp_path, override, message):
    path = make_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(UsageError, match=message):
        load_dataset(DatasetConfig(name=str(path)))


@pytest.mark.slow
def test_real_balanced_pneumonia_file():
    source = SHARED_MEDMNIST / "pneumoniamnist_balanced.npz"
    if not source.exists():
        pytest.skip(f"{source} is absent")
    dataset = load_dataset(DatasetConfig(name="pneumonia-balanced", data_dir=str(SHARED_MEDMNIST)))
    sizes = {name: len(split) for name, split in dataset.splits.items()}
    assert sizes == {"train": 2428, "val": 270, "test": 468}
    assert dataset.splits["test"].labels.float().mean().item() == 0.5


def test_resize_averages_when_shrinking_and_keeps_uint8():
    from neurocomp.data.datasets import resize

    volume = torch.arange(8, dtype=torch.uint8).reshape(1, 1, 2, 2, 2) * 10
    shrunk = resize(volume, 1)
    assert shrunk.dtype == torch.uint8 and shrunk.shape == (1, 1, 1, 1, 1)
    assert shrunk.item() == 35  # mean of 0, 10, ..., 70
    assert resize(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), 8).shape == (2, 1, 8, 8)


def test_dataset_resize_option(npz_3d):
    dataset = load_dataset(DatasetConfig(name=str(npz_3d), resize=8))
    assert dataset.sample_shape == (1, 8, 8, 8)
    with pytest.raises(UsageError, match="resize must be a positive"):
        load_dataset(DatasetConfig(name=str(npz_3d), resize=0))
