"""The fused conv blocks (plain conv -> max-pool -> LIF on bit-pattern sums of their input spikes, or
on the events of other inputs, with an argmax-sparse backward; blocks with batch norm: torch up to the
pool) compute what torch's conv and pool and snnTorch's Leaky compute with their own autograd:
spikes exactly, logits and gradients to rounding in fp64; where they do not apply they step aside."""

import pytest
import torch

from neurocomp import kernels
from neurocomp.data.encoders import rate
from neurocomp.models import build_model

pytestmark = pytest.mark.skipif(kernels.build.load(kernels.conv_pool_lif.KERNEL) is None,
                                reason="no C++ toolchain for the fused kernel")


def spikes_logits_grads(model, x, weights, fused):
    """Output spikes, logits and parameter gradients, by the kernels or by torch and snnTorch alone."""
    with kernels.backend("auto" if fused else "library"):
        if fused:
            assert model.describe()["kernels"][0]["path"] == "native conv_pool_lif"
        logits, spikes = model.forward_with_spikes(x)
        grads = torch.autograd.grad((logits * weights).sum(), list(model.parameters()))
    return spikes, logits, grads


def assert_equal_to_snntorchs_fp64_gradient(ours, theirs):
    # snnTorch's surrogate returns float32 spikes even in fp64, so autograd rounds the gradient that
    # reaches each spike to float32: its gradients are fp64 but for that rounding (~6e-8 relative).
    # (+ 1e-12: the gradient of a conv bias before batch norm is 0 but for rounding.)
    assert (ours - theirs).abs().max() <= 1e-6 * theirs.abs().max() + 1e-12


def assert_fp64_fused_equals_the_libraries(model, x, weights):
    """Spikes equal, logits and parameter gradients equal to rounding, fused blocks vs the libraries."""
    spikes, logits, grads = spikes_logits_grads(model, x, weights, True)
    ref_spikes, ref_logits, ref_grads = spikes_logits_grads(model, x, weights, False)
    assert spikes.sum() > 0
    assert torch.equal(spikes, ref_spikes)
    assert torch.allclose(logits, ref_logits, rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(grads, ref_grads):
        assert_equal_to_snntorchs_fp64_gradient(ours, theirs)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("shape, options", [
    ((1, 28, 28), {}),                                                  # the PneumoniaMNIST study's block
    ((3, 14, 14), {"channels": (10, 16), "kernels": (3,), "pools": (1, 2)}),  # RGB, no pool in the first block
    ((1, 16, 16), {"channels": (6, 8), "kernels": (3,), "batch_norm": (False, True)}),  # torch runs conv + BN
])
def test_fp64_equals_the_libraries(reset, shape, options):
    torch.manual_seed(0)
    encoder = rate(sample_shape=shape, steps=5)
    model = build_model("snn", encoder=encoder, num_outputs=2, reset=reset, **options).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # enough spikes in every layer
    # Sparse inputs leave whole pooling windows at the bias: ties go to the first maximum, as in torch.
    x = encoder(torch.rand(37, *shape, dtype=torch.float64) * 0.6, torch.Generator().manual_seed(1))
    weights = torch.randn(37, 2, dtype=torch.float64)
    assert_fp64_fused_equals_the_libraries(model, x, weights)


@pytest.mark.parametrize("kernel", [5, 9])  # 9: wider than the 8-bit patterns, events only
def test_binary_and_other_images_in_one_batch(kernel):
    # Binary images take the pattern table, the others their events; each image its own way.
    torch.manual_seed(0)
    encoder = rate(sample_shape=(1, 16, 16), steps=4)
    model = build_model("snn", encoder=encoder, num_outputs=2, channels=(6, 8), kernels=(kernel, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)
    x = encoder(torch.rand(9, 1, 16, 16, dtype=torch.float64), torch.Generator().manual_seed(1))
    x[:, ::2] *= torch.rand_like(x[:, ::2])  # even samples: intensities at the spikes
    weights = torch.randn(9, 2, dtype=torch.float64)
    assert_fp64_fused_equals_the_libraries(model, x, weights)


def test_fp32_spikes_equal_snntorch_and_gradients_match_fp64():
    torch.manual_seed(0)
    encoder = rate(sample_shape=(1, 28, 28), steps=8)
    model = build_model("snn", encoder=encoder, num_outputs=2)
    x = encoder(torch.rand(20, 1, 28, 28), torch.Generator().manual_seed(2))
    weights = torch.randn(20, 2)
    spikes, _, grads = spikes_logits_grads(model, x, weights, True)
    with kernels.backend("library"):  # snnTorch steps every neuron, torch runs conv and pool
        reference_spikes = model.forward_with_spikes(x)[1]
    assert torch.equal(spikes, reference_spikes)
    model64 = model.double()
    _, _, exact = spikes_logits_grads(model64, x.double(), weights.double(), False)
    for ours, truth in zip(grads, exact):
        assert (ours.double() - truth).abs().max() <= 1e-4 * truth.abs().max() + 1e-7


@pytest.mark.parametrize("pools", [(1,), (2,)])
@pytest.mark.parametrize("channels", [1, 3])  # 3: an input that is not channels last
def test_input_gradients_equal_the_libraries(pools, channels):
    # An input that needs its gradient takes the argmax-sparse backward with the input's gradient.
    torch.manual_seed(0)
    encoder = rate(sample_shape=(channels, 12, 12), steps=3)
    model = build_model("snn", encoder=encoder, num_outputs=2, channels=(4, 6), kernels=(3,), pools=pools).double()
    x = encoder(torch.rand(5, channels, 12, 12, dtype=torch.float64), None)
    weights = torch.randn(5, 2, dtype=torch.float64)
    grads = []
    for fused in (True, False):
        with kernels.backend("auto" if fused else "library"):
            leaf = x.clone().requires_grad_()
            grads.append(torch.autograd.grad((model(leaf) * weights).sum(), leaf)[0])
    assert grads[1].abs().sum() > 0
    assert_equal_to_snntorchs_fp64_gradient(*grads)


def fused_blocks(model):
    return [index for index, path in enumerate(model.describe()["kernels"]) if path["path"] == "native conv_pool_lif"]


def test_recorded_and_skipped_where_it_does_not_apply():
    encoder = rate(sample_shape=(1, 28, 28), steps=3)
    assert fused_blocks(build_model("snn", encoder=encoder, num_outputs=2)) == [0, 1]
    # A second block without a pool still runs fused: the conv, the LIF, the sparse backward.
    assert fused_blocks(build_model("snn", encoder=encoder, num_outputs=2, pools=(2, 1))) == [0, 1]
    assert fused_blocks(build_model("snn", encoder=encoder, num_outputs=2, learn_beta=True)) == []
    model = build_model("snn", encoder=encoder, num_outputs=2, learn_beta=True)
    x = encoder(torch.rand(2, 1, 28, 28), None)
    assert kernels.conv_pool_lif.conv_block_leaky(model.layers[0], model.neurons[0].neuron, x) is None
    assert model(x).shape == (2, 2)


def test_channels_last_inputs_give_what_contiguous_ones_give():
    # A deeper block reads the channels-last spikes of the block before in place.
    kernel = kernels.build.load(kernels.conv_pool_lif.KERNEL)
    torch.manual_seed(0)
    x = (torch.rand(3, 5, 4, 9, 9, dtype=torch.float64) < 0.4).double()
    x[:, 0] *= torch.rand_like(x[:, 0])  # one sample of intensities: the event path
    channels_last = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    weight, bias = torch.randn(6, 4, 3, 3, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    outputs = [kernel.conv_forward(inputs, weight, bias, 2, 0.6, 1.0, 0) for inputs in (x, channels_last)]
    assert outputs[0][0].sum() > 0
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][2], outputs[1][2])
    assert torch.allclose(outputs[0][1], outputs[1][1], rtol=1e-12, atol=1e-12)


def test_flatten_linear_reads_channels_last_maps_in_place():
    # The FC layer after a fused block: the same current as Flatten -> Linear, gradients included.
    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 5, 7)).double()
    maps = torch.rand(2, 3, 3, 5, 4, dtype=torch.float64)  # (T, B, H, W, C) in memory
    x = maps.permute(0, 1, 4, 2, 3).requires_grad_()
    ours = kernels.conv_pool_lif.flatten_linear(layer, x)
    theirs = layer(x.reshape(6, 4, 3, 5))
    assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    grads = [torch.autograd.grad((out * torch.arange(7.0, dtype=torch.float64)).sum(), [x, layer[1].weight])
             for out in (ours, theirs)]
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)
    assert kernels.conv_pool_lif.flatten_linear(layer, x.detach().contiguous()) is None  # nothing to save: run the layer
    assert kernels.conv_pool_lif.flatten_linear(layer[1], x) is None
