"""Train-time augmentation: named policies, each sample its own draw, the right shapes, never on
validation or test, seeded with the run, and a policy that does not fit the samples refused in one line."""

import json

import pytest
import torch

from neurocomp.cli import main
from neurocomp.core.errors import UsageError
from neurocomp.data.augment import augmenter
from neurocomp.runs.record import load_runs


@pytest.mark.parametrize("policy, shape", [("flip", (1, 28, 28)), ("affine", (3, 28, 28)), ("volume", (1, 8, 12, 12))])
def test_each_policy_keeps_the_shape_and_range_and_draws_per_sample(policy, shape):
    torch.manual_seed(0)
    images = torch.rand(64, *shape)
    augmented = augmenter(policy, shape)(images)
    assert augmented.shape == images.shape and augmented.min() >= 0 and augmented.max() <= 1
    changed = [not torch.equal(a, b) for a, b in zip(augmented, images)]
    assert 0 < sum(changed) < len(changed) or policy != "flip"  # each image draws its own flip
    assert any(changed)


def test_a_flip_mirrors_the_image_or_leaves_it():
    torch.manual_seed(1)
    images = torch.rand(32, 1, 5, 5)
    for before, after in zip(images, augmenter("flip", (1, 5, 5))(images)):
        assert torch.equal(after, before) or torch.equal(after, before.flip(-1))


def test_none_is_no_function_and_unknown_or_misfitting_policies_are_refused():
    assert augmenter("none", (1, 28, 28)) is None
    with pytest.raises(UsageError, match="choose one of: none, flip, affine, volume"):
        augmenter("mixup", (1, 28, 28))
    with pytest.raises(UsageError, match="for 3D volumes use 'volume'"):
        augmenter("flip", (1, 8, 8, 8))
    with pytest.raises(UsageError, match="for 2D images use 'flip' or 'affine'"):
        augmenter("volume", (1, 28, 28))


def test_a_run_records_its_policy_is_reproducible_and_differs_from_none(npz_2d, tmp_path):
    def run(out, *extra):
        assert main(["run", str(npz_2d), "--model", "mlp", "--epochs", "2", "--out", str(out), "--quiet", *extra]) == 0
        (record,) = load_runs(out)
        return record

    plain = run(tmp_path / "plain")
    first = run(tmp_path / "a", "--set", "train.augment=affine")
    again = run(tmp_path / "b", "--set", "train.augment=affine")
    assert first.config["train"]["augment"] == "affine" and first.run_id != plain.run_id
    assert first.metrics == again.metrics  # the same seed, the same augmented batches
    assert first.metrics["val"]["loss"] != plain.metrics["val"]["loss"]


def test_a_2d_policy_on_volumes_is_one_line_before_training(npz_3d, tmp_path, capsys):
    assert main(["run", str(npz_3d), "--model", "cnn3d", "--set", "train.augment=flip", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use 'volume'" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
