"""The fused CfC path computes what ncps' wired CfC computes: outputs and gradients, fp64 and fp32,
both gated modes; mode "pure" and machines without the kernel run ncps."""

import pytest
import torch
from ncps.torch import CfC
from ncps.wirings import AutoNCP, FullyConnected

from neurocomp import kernels
from neurocomp.encoders import rows
from neurocomp.models import build_model

pytestmark = pytest.mark.skipif(kernels.build.load(kernels.cfc.KERNEL) is None, reason="no C++ toolchain for the fused CfC kernel")


def reference_and_fused(wiring, dtype, mode="default", batch=5):
    torch.manual_seed(0)
    cfc = CfC(12, wiring, batch_first=False, mode=mode).to(dtype)
    x = torch.randn(9, batch, 12, dtype=dtype, requires_grad=True)  # (T, B, inputs)
    return cfc, x, cfc(x)[0], kernels.cfc.cfc_sequence(cfc.rnn_cell, x)


def gradients(cfc, x, output, weights):
    """Gradients of every trainable parameter and of the input."""
    return torch.autograd.grad((output * weights).sum(), [p for p in cfc.parameters() if p.requires_grad] + [x])


@pytest.mark.parametrize("batch", [5, 37])  # the kernel works in blocks of 16 samples: a partial one, several
@pytest.mark.parametrize("mode", ["default", "no_gate"])
@pytest.mark.parametrize("wiring", [lambda: AutoNCP(10, 2, seed=3), lambda: FullyConnected(6, 2)], ids=["autoncp", "dense"])
def test_fp64_outputs_and_gradients_equal_ncps(wiring, mode, batch):
    cfc, x, reference, fused = reference_and_fused(wiring(), torch.float64, mode, batch)
    assert torch.allclose(fused, reference, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(reference)
    for ours, theirs in zip(gradients(cfc, x, fused, weights), gradients(cfc, x, reference, weights)):
        assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_fp32_matches_within_1e5_and_gradients_match_an_fp64_reference():
    # fp32 uses the vectorised polynomial tanh and exp (fastmath.h), fp64 the C library's.
    cfc, x, reference, fused = reference_and_fused(AutoNCP(10, 2, seed=3), torch.float32, batch=37)
    assert ((fused - reference).abs().max() / reference.abs().max()) < 1e-5
    weights = torch.randn_like(reference)
    ours = gradients(cfc, x, fused, weights)
    cfc64, x64 = cfc.double(), x.detach().double().requires_grad_()
    exact = gradients(cfc64, x64, cfc64(x64)[0], weights.double())
    for mine, truth in zip(ours, exact):
        assert (mine.double() - truth).abs().max() <= 1e-4 * truth.abs().max() + 1e-7


def test_models_use_the_fused_path_and_record_it():
    model = build_model("cfc", encoder=rows(sample_shape=(1, 28, 28)), num_outputs=2)
    assert model.describe()["kernels"][0]["path"] == "native cfc"


def test_pure_mode_and_a_missing_kernel_run_ncps():
    encoder = rows(sample_shape=(1, 28, 28))
    assert build_model("cfc", encoder=encoder, num_outputs=2, mode="pure").describe()["kernels"][0]["path"] == "library"
    model = build_model("cfc", encoder=encoder, num_outputs=2)
    with kernels.backend("library"):
        assert model.describe()["kernels"][0]["path"] == "library"
        logits = model(encoder(torch.rand(3, 1, 28, 28)))
        logits.sum().backward()
    assert logits.shape == (3, 2)
