"""Imbalance-aware training (class-weighted losses, a class-balanced sampler) and the bf16 switch,
each against a hand computation or torch's own definition."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurocomp.cli import main
from neurocomp.kernels import lif
from neurocomp.training.losses import class_weights, loss_function
from neurocomp.runs.record import load_runs
from neurocomp.training.trainer import _balanced_draw_weights, _epoch_order

from conftest import make_npz


def test_balanced_weights_are_n_over_k_times_class_count():
    weights = class_weights("balanced", torch.tensor([0, 0, 0, 1]), 2)
    assert weights.tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1)])
    assert class_weights("none", torch.tensor([0, 1]), 2) is None


class _Fixed(torch.nn.Module):
    """A 'model' that returns the logits it was given (inputs are the logits)."""

    def forward(self, inputs):
        return inputs


def test_the_weighted_one_logit_loss_is_the_weighted_two_logit_cross_entropy():
    # sigmoid(z) = softmax([0, z])[1]: BCE on z and cross-entropy on [0, z] are the same loss per case,
    # so their class-weighted means must agree (both divide by the summed weights).
    torch.manual_seed(0)
    z, labels = torch.randn(9, 1, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 0, 0, 0, 1, 0])
    weights = class_weights("balanced", labels, 2).double()
    bce, _ = loss_function("bce", weights)(_Fixed(), z, labels)
    ce, _ = loss_function("cross_entropy", weights)(_Fixed(), torch.cat([torch.zeros_like(z), z], 1), labels)
    assert bce.item() == pytest.approx(ce.item(), rel=1e-12)
    unweighted, _ = loss_function("bce")(_Fixed(), z, labels)
    assert unweighted.item() == pytest.approx(F.binary_cross_entropy_with_logits(z[:, 0], labels.double()).item())
    assert bce.item() != pytest.approx(unweighted.item())


def test_the_balanced_sampler_draws_each_class_equally_often():
    labels = torch.tensor([0] * 900 + [1] * 100)
    generator = torch.Generator().manual_seed(0)
    drawn = labels[_epoch_order(len(labels), _balanced_draw_weights(labels), generator)]
    assert len(drawn) == 1000 and 0.45 < drawn.float().mean().item() < 0.55
    again = _epoch_order(len(labels), _balanced_draw_weights(labels), torch.Generator().manual_seed(0))
    assert torch.equal(labels[again], drawn)  # the seed fixes the draws
    shuffled = _epoch_order(len(labels), None, torch.Generator().manual_seed(0))
    assert sorted(shuffled.tolist()) == list(range(1000))  # shuffle: a permutation


@pytest.mark.parametrize("setting", [["train.class_weight=balanced"], ["train.sampler=balanced", "train.class_weight=none"]])
def test_imbalanced_runs_record_the_setting_and_find_the_rare_class(tmp_path, setting, capsys):
    # Train 9:1; the rare class is brighter. Unweighted 2-epoch training tends to call every case common.
    labels = np.array([1] * 12 + [0] * 108)
    rng = np.random.default_rng(0)
    images = (rng.integers(0, 100, (120, 28, 28)) + labels[:, None, None] * 60).astype(np.uint8)
    npz = make_npz(tmp_path / "skewed.npz", train_images=images, train_labels=labels.reshape(-1, 1).astype(np.uint8))
    args = ["run", str(npz), "--model", "mlp", "--out", str(tmp_path / "res"), "--epochs", "3", "--quiet",
            *[part for assignment in setting for part in ("--set", assignment)]]
    assert main(args) == 0
    (run,) = load_runs(tmp_path / "res")
    key, value = setting[0].split("=")
    section, name = key.split(".")
    assert run.config[section][name] == value
    assert run.value("test.sensitivity") > 0  # the rare class is predicted at 0.5 (unweighted: never, here)


def test_bf16_without_a_cuda_device_is_one_line_and_exit_2(npz_2d, tmp_path, capsys):
    assert main(["run", str(npz_2d), "--model", "mlp", "--out", str(tmp_path), "--device", "cpu",
                 "--set", "train.precision=bf16"]) == 2
    err = capsys.readouterr().err
    assert "train.precision=bf16 needs a CUDA device" in err and err.count("\n") == 1


def test_a_bfloat16_current_is_integrated_in_float32():
    import snntorch

    neuron = snntorch.Leaky(beta=0.9, spike_grad=snntorch.surrogate.fast_sigmoid(25))
    current = (torch.rand(6, 4, 10) * 0.4).bfloat16()
    low, _ = lif.leaky_over_time(neuron, current)
    exact, _ = lif.leaky_over_time(neuron, current.float())
    assert low.dtype == torch.float32 and torch.equal(low, exact)
