"""3D sets as first-class inputs: with no encoder flag every built-in model trains on volumes (fed
one 2D slice per step); a 2D conv given whole volumes is one line naming the encoder that works."""

from __future__ import annotations

import pytest

from neurocomp.cli import main
from neurocomp.core.catalogue import layout
from neurocomp.core.config import DatasetConfig, resolve
from neurocomp.runs.record import load_runs

BUILT_IN = ["cnn", "snn", "alif", "mlp", "ltc", "cfc", "lstm", "gru", "rnn", "resnet18"]


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
