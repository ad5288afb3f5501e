"""train.clip_grad: the global gradient norm each optimizer step sees is at most the bound."""

import pytest
import torch

from neurocomp.cli import main

from conftest import make_npz


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_every_step_sees_gradients_clipped_to_the_bound(clip, tmp_path, monkeypatch):
    norms = []
    step = torch.optim.SGD.step

    def recording_step(optimizer, *args, **kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        return step(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    npz = make_npz(tmp_path / "toy.npz")
    options = ["--set", "train.optimizer=sgd"] + (["--set", f"train.clip_grad={clip}"] if clip else [])
    assert main(["run", str(npz), "--model", "mlp", "--epochs", "1", "--out", str(tmp_path), "--quiet", *options]) == 0
    assert norms
    if clip:
        assert max(norms) <= clip * (1 + 1e-5)
    else:
        assert max(norms) > 1e-3  # without the bound these gradients exceed it: the test can fail


def test_a_bound_that_is_not_positive_is_one_line(tmp_path, capsys):
    npz = make_npz(tmp_path / "toy.npz")
    assert main(["run", str(npz), "--model", "mlp", "--out", str(tmp_path), "--set", "train.clip_grad=0"]) == 2
    assert "clip_grad" in capsys.readouterr().err
