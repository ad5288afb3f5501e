"""MedMNIST v2's reference models and recipe: the ResNet stems by image size, the multistep schedule,
and the reference config training end to end on a synthetic file."""

import pytest
import torch
from torch import nn

from neurocomp.cli import main
from neurocomp.core.registry import ENCODERS
from neurocomp.models import build_model
from neurocomp.runs.record import load_runs

from conftest import make_npz


@pytest.mark.parametrize("model", ["resnet18", "resnet50"])
def test_28_px_gets_the_cifar_stem_and_larger_images_the_imagenet_one(model):
    small = build_model(model, encoder=ENCODERS.get("static").builder(sample_shape=(1, 28, 28)), num_outputs=2)
    conv = small.features.conv1
    assert (conv.in_channels, conv.kernel_size, conv.stride) == (1, (3, 3), (1, 1))
    assert isinstance(small.features.maxpool, nn.Identity)
    large = build_model(model, encoder=ENCODERS.get("static").builder(sample_shape=(3, 64, 64)), num_outputs=5)
    conv = large.features.conv1
    assert (conv.in_channels, conv.kernel_size, conv.stride) == (3, (7, 7), (2, 2))
    assert isinstance(large.features.maxpool, nn.MaxPool2d)
    assert large(torch.rand(1, 2, 3, 64, 64)).shape == (2, 5)


def test_the_reference_recipe_trains_with_lr_decays_at_half_and_three_quarters(tmp_path):
    data = make_npz(tmp_path / "set.npz", sizes=(32, 16, 16))
    out = tmp_path / "res"
    assert main(["run", str(data), "--config", "configs/reference/medmnist-v2.yaml", "--epochs", "4",
                 "--batch-size", "16", "--out", str(out), "--quiet"]) == 0
    (run,) = load_runs(out)
    assert run.config["model"]["name"] == "resnet18" and run.monitor["quantity"] == "val.auc"
    rates = [row["lr"] for row in run.history()]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5])  # milestones: epochs 2 and 3 of 4
