"""3D sets as first-class inputs: with no encoder flag every built-in model trains on volumes (2D
models fed one slice per step, 3D models the whole volume); a 2D conv given whole volumes, or a 3D
model given 2D images, is one line naming what works."""

from __future__ import annotations

import pytest
import torch

from neurocomp.cli import main
from neurocomp.data.encoders import static
from neurocomp.models import build_model
from neurocomp.core.catalogue import layout
from neurocomp.core.config import DatasetConfig, resolve
from neurocomp.runs.record import load_runs

BUILT_IN = ["cnn", "snn", "alif", "mlp", "ltc", "cfc", "lstm", "gru", "rnn", "resnet18"]
VOLUMETRIC = {"cnn3d": "static", "snn3d": "rate", "resnet18-3d": "static"}


@pytest.mark.parametrize("model", BUILT_IN)
def test_every_built_in_model_trains_on_volumes_with_no_encoder_flag(model, npz_3d, tmp_path):
    assert main(["run", str(npz_3d), "--model", model, "--epochs", "1", "--batch-size", "8",
                 "--out", str(tmp_path), "--quiet"]) == 0
    (run,) = load_runs(tmp_path)
    assert run.config["encoder"]["name"] == "slices" and run.encoder["steps"] == 16


def test_the_layout_of_a_file_is_read_from_its_array_shapes(npz_3d, npz_rgb, npz_2d, npz_multi_label):
    assert layout(DatasetConfig(name=str(npz_3d))).volumetric
    assert not layout(DatasetConfig(name=str(npz_rgb))).volumetric  # (N, H, W, 3) is RGB
    assert not layout(DatasetConfig(name=str(npz_2d))).volumetric
    assert layout(DatasetConfig(name=str(npz_multi_label))).multi_label
    assert resolve({"dataset": {"name": "adrenal3d"}, "model": "snn"}).encoder.name == "slices"
    assert resolve({"dataset": {"name": "breast"}, "model": "snn"}).encoder.name == "rate"


def test_a_2d_conv_given_whole_volumes_names_the_slices_encoder(npz_3d, tmp_path, capsys):
    assert main(["run", str(npz_3d), "--model", "cnn", "--encoder", "static", "--epochs", "1",
                 "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--encoder slices" in err


@pytest.mark.parametrize("model, encoder", VOLUMETRIC.items())
def test_every_3d_model_trains_on_whole_volumes_with_no_encoder_flag(model, encoder, npz_3d, tmp_path):
    assert main(["run", str(npz_3d), "--model", model, "--epochs", "1", "--batch-size", "8", "--set", "eval.draws=1",
                 "--out", str(tmp_path), "--quiet"]) == 0
    (run,) = load_runs(tmp_path)
    assert run.config["encoder"]["name"] == encoder and run.encoder["step_shape"] == [1, 16, 16, 16]


@pytest.mark.parametrize("model", VOLUMETRIC)
def test_a_3d_model_on_2d_images_is_one_line_naming_its_2d_sibling(model, npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--model", model, "--epochs", "1", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "convolves 3D volumes" in err and repr(model.split("3d")[0].rstrip("-")) in err


def test_cnn3d_convolves_in_three_dimensions():
    model = build_model("cnn3d", encoder=static(sample_shape=(1, 8, 8, 8)), num_outputs=2, channels=(2,), pools=(1,))
    conv = model.features[0][0]
    assert isinstance(conv, torch.nn.Conv3d) and conv.weight.shape == (2, 1, 3, 3, 3)


@pytest.mark.parametrize("conv, layer", [("3d", "Conv3d"), ("acs", "ACSConv"), ("2.5d", "Conv2_5d")])
def test_the_3d_resnet_swaps_every_2d_layer(conv, layer):
    if conv != "3d":
        pytest.importorskip("acsconv")
    model = build_model("resnet18-3d", encoder=static(sample_shape=(1, 8, 8, 8)), num_outputs=3, conv=conv)
    kinds = {type(module).__name__ for module in model.modules()}
    assert layer in kinds and not kinds & {"Conv2d", "BatchNorm2d", "MaxPool2d", "AdaptiveAvgPool2d"}
    assert model(torch.rand(1, 2, 1, 8, 8, 8)).shape == (2, 3)
