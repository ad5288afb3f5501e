"""The native LIF path equals snnTorch: spikes exactly, membranes to rounding, gradients against an
fp64 evaluation of the same recurrence (snnTorch's own spikes are float32 even in fp64)."""

import pytest
import torch

from neurocomp import native
from neurocomp.encoders import rate
from neurocomp.models import build_model
from neurocomp.models.snn import LeakyLayer

pytestmark = pytest.mark.skipif(native.load("lif") is None, reason="no C++ toolchain for the native LIF kernel")


def layer(reset="subtract"):
    return LeakyLayer(beta=0.6, threshold=1.0, slope=25.0, reset=reset, learn_beta=False, learn_threshold=False)


def snntorch_path(neurons, current):
    neurons.learnable = True  # the library path: snnTorch steps the neuron
    try:
        return neurons(current)
    finally:
        neurons.learnable = False


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_spikes_equal_and_membranes_match_snntorch(reset):
    torch.manual_seed(0)
    neurons = layer(reset)
    current = torch.randn(20, 16, 12, 6, 6) * 1.5
    spikes, membranes = neurons(current)
    reference_spikes, reference_membranes = snntorch_path(neurons, current)
    assert torch.equal(spikes, reference_spikes)
    assert torch.allclose(membranes, reference_membranes, rtol=1e-5, atol=1e-6)


def fp64_reference(current, beta, threshold, slope, reset):
    class FastSigmoid(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad / (slope * x.abs() + 1) ** 2

    membrane, spikes, membranes = torch.zeros_like(current[0]), [], []
    for step in current:
        fired = (membrane - threshold > 0).to(current.dtype)
        if reset == "subtract":
            membrane = beta * membrane + step - fired * threshold
        elif reset == "zero":
            membrane = beta * (1 - fired) * membrane + step
        else:
            membrane = beta * membrane + step
        membranes.append(membrane)
        spikes.append(FastSigmoid.apply(membrane - threshold))
    return torch.stack(spikes), torch.stack(membranes)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_gradients_match_an_fp64_reference(reset):
    torch.manual_seed(1)
    current = (torch.randn(20, 8, 40) * 1.5).requires_grad_()
    spikes, membranes = layer(reset)(current)
    weights = torch.randn(2, 20, 8, 40)
    ours = torch.autograd.grad((spikes * weights[0] + membranes * weights[1]).sum(), current)[0]
    exact_input = current.detach().double().requires_grad_()
    beta = float(torch.tensor(0.6))  # the float32 beta snnTorch stores
    s, m = fp64_reference(exact_input, beta, 1.0, 25.0, reset)
    exact = torch.autograd.grad((s * weights[0].double() + m * weights[1].double()).sum(), exact_input)[0]
    assert (ours.double() - exact).abs().max() <= 1e-5 * exact.abs().max()


def test_channels_last_currents_keep_their_layout_and_values():
    neurons = layer()
    current = torch.randn(4 * 3, 5, 7, 7).contiguous(memory_format=torch.channels_last).view(4, 3, 5, 7, 7)
    spikes, membranes = neurons(current)
    reference_spikes, _ = snntorch_path(neurons, current.contiguous())
    assert torch.equal(spikes, reference_spikes)


def test_the_snn_records_which_path_ran(monkeypatch):
    encoder = rate(sample_shape=(1, 28, 28), steps=4)
    assert build_model("snn", encoder=encoder, num_outputs=2).describe()["backend"] == ["native"]
    assert build_model("snn", encoder=encoder, num_outputs=2, learn_beta=True).describe()["backend"] == ["snntorch"]
    monkeypatch.setattr(native, "load", lambda kernel: None)
    model = build_model("snn", encoder=encoder, num_outputs=2)
    assert model.describe()["backend"] == ["snntorch"]
    assert model(encoder(torch.rand(2, 1, 28, 28))).shape == (2, 2)
