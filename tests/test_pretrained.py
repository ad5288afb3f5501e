"""Pretrained weights for the reference ResNets and linear probing, with state dicts the tests save
themselves (no network): loading, the gray-image stem, freezing, and every refusal in one line."""

import pytest
import torch
from torchvision.models import resnet18, resnet50

from neurocomp.cli import main
from neurocomp.core.errors import UsageError
from neurocomp.data.encoders import static
from neurocomp.models import build_model
from neurocomp.runs.record import load_runs

from conftest import make_npz

IMAGES_64 = static(sample_shape=(1, 64, 64))  # 64 px: torchvision's ImageNet stem, as the weights expect


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), path)
    return path


def test_a_state_dict_loads_into_all_but_the_head_and_the_stem_takes_gray_images(resnet18_file):
    saved = torch.load(resnet18_file, weights_only=True)
    model = build_model("resnet18", encoder=IMAGES_64, num_outputs=2, weights=str(resnet18_file))
    assert torch.equal(model.features.layer4[1].conv2.weight, saved["layer4.1.conv2.weight"])
    # One gray channel against RGB kernels: the RGB kernels summed (MedMNIST's as_rgb copies the channel thrice).
    assert torch.allclose(model.features.conv1.weight, saved["conv1.weight"].sum(1, keepdim=True))
    assert model.head.out_features == 2  # the head is new: ImageNet's 1000 classes are not these


def test_at_28_px_the_small_stem_keeps_its_own_initialisation(resnet18_file):
    model = build_model("resnet18", encoder=static(sample_shape=(1, 28, 28)), num_outputs=2, weights=str(resnet18_file))
    assert model.features.conv1.weight.shape == (64, 1, 3, 3)
    assert torch.equal(model.features.layer1[0].conv1.weight, torch.load(resnet18_file, weights_only=True)["layer1.0.conv1.weight"])


def test_another_architectures_file_or_a_missing_one_is_refused(resnet18_file, tmp_path):
    other = tmp_path / "resnet50.pth"
    torch.save(resnet50(weights=None).state_dict(), other)
    with pytest.raises(UsageError, match="does not fit resnet18"):
        build_model("resnet18", encoder=IMAGES_64, num_outputs=2, weights=str(other))
    with pytest.raises(UsageError, match="no such file"):
        build_model("resnet18", encoder=IMAGES_64, num_outputs=2, weights=str(tmp_path / "absent.pth"))


def test_imagenet_without_a_network_says_where_to_get_the_file(monkeypatch):
    from torchvision.models import ResNet18_Weights

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(type(ResNet18_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    with pytest.raises(UsageError, match="resnet18-f37072fd.pth"):
        build_model("resnet18", encoder=IMAGES_64, num_outputs=2, weights="imagenet")


def test_a_linear_probe_trains_the_head_alone_and_counts_the_rest_as_frozen(resnet18_file, tmp_path):
    npz = make_npz(tmp_path / "gray64.npz", image_shape=(64, 64), sizes=(16, 8, 8))
    assert main(["run", str(npz), "--model", "resnet18", "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path),
                 "--quiet", "--set", f"model.weights={resnet18_file}", "--set", "train.scheme=linear_probe"]) == 0
    (run,) = load_runs(tmp_path)
    assert run.params["trainable"] == 512 * 2 + 2 and run.params["frozen"] == run.params["total"] - 1026
    state = torch.load(run.directory / "model.pt", weights_only=True)
    assert torch.equal(state["features.layer4.1.conv2.weight"], torch.load(resnet18_file, weights_only=True)["layer4.1.conv2.weight"])


def test_a_linear_probe_of_a_model_without_pretrained_weights_is_one_line(npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--model", "cnn", "--set", "train.scheme=linear_probe", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "linear_probe" in err and "pretrained" in err
