"""The fused LTC path computes what ncps computes: outputs and gradients, fp64 and fp32; the ncps
path stays the fallback. CI builds the native extension (the first call compiles it)."""

import pytest
import torch
from ncps.torch import LTC
from ncps.wirings import AutoNCP, FullyConnected

from neurocomp import kernels
from neurocomp.encoders import rows
from neurocomp.models import build_model

pytestmark = pytest.mark.skipif(kernels.build.load(kernels.ltc.KERNEL) is None, reason="no C++ toolchain for the fused LTC kernel")


def reference_and_fused(wiring, dtype, seed=0, batch=5):
    torch.manual_seed(seed)
    ltc = LTC(12, wiring, batch_first=False).to(dtype)
    x = torch.randn(9, batch, 12, dtype=dtype)  # (T, B, inputs)
    return ltc, x, ltc(x)[0], kernels.ltc.ltc_sequence(ltc.rnn_cell, x)


def trainable_grads(ltc, output, weights):
    params = [p for p in ltc.parameters() if p.requires_grad]
    return torch.autograd.grad((output * weights).sum(), params)


@pytest.mark.parametrize("batch", [5, 37])  # the kernel works in blocks of 16 samples: a partial one, several
@pytest.mark.parametrize("wiring", [lambda: AutoNCP(10, 2, seed=3), lambda: FullyConnected(6, 2)], ids=["autoncp", "dense"])
def test_fp64_outputs_and_gradients_equal_ncps(wiring, batch):
    ltc, _, reference, fused = reference_and_fused(wiring(), torch.float64, batch=batch)
    assert torch.allclose(fused, reference, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(reference)
    for ours, theirs in zip(trainable_grads(ltc, fused, weights), trainable_grads(ltc, reference, weights)):
        assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_fp32_matches_within_1e5_and_gradients_match_an_fp64_reference():
    # fp32 uses the vectorised polynomial exponential (fastmath.h), fp64 the C library's.
    ltc, x, reference, fused = reference_and_fused(AutoNCP(10, 2, seed=3), torch.float32, batch=37)
    assert ((fused - reference).abs().max() / reference.abs().max()) < 1e-5
    weights = torch.randn_like(reference)
    ours = trainable_grads(ltc, fused, weights)
    ltc64 = ltc.double()
    exact = trainable_grads(ltc64, ltc64(x.double())[0], weights.double())
    for mine, truth in zip(ours, exact):
        assert (mine.double() - truth).abs().max() <= 1e-4 * truth.abs().max() + 1e-7


def test_models_use_the_fused_path_and_record_it():
    model = build_model("ltc", encoder=rows(sample_shape=(1, 28, 28)), num_outputs=2)
    assert model.describe()["kernels"][0]["path"] == "native ltc_unfold"


def test_without_the_native_kernel_ncps_runs():
    encoder = rows(sample_shape=(1, 28, 28))
    model = build_model("ltc", encoder=encoder, num_outputs=2)
    with kernels.backend("library"):
        assert model.describe()["kernels"][0]["path"] == "library"
        logits = model(encoder(torch.rand(3, 1, 28, 28)))
        logits.sum().backward()
    assert logits.shape == (3, 2)


def test_mixed_memory_takes_the_ncps_path():
    # ncps adds an LSTM beside the cell; the kernel does not compute it, so it must step aside.
    torch.manual_seed(0)
    ltc = LTC(12, AutoNCP(10, 2, seed=3), batch_first=False, mixed_memory=True)
    decision = kernels.plan_liquid(ltc, torch.device("cpu"), torch.float32)
    assert not decision.native and "mixed memory" in decision.reason
    assert kernels.liquid_sequence(ltc, torch.randn(9, 5, 12)) is None
