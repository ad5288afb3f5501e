"""The fused LTC and CfC paths compute what ncps computes: outputs and gradients (parameters and
input), fp64 to rounding and fp32 within 1e-5, for dense and NCP wirings, both gated CfC modes and
partial sample blocks; CfC mode "pure", mixed memory and the library backend run ncps."""

import pytest
import torch
from ncps.torch import CfC, LTC
from ncps.wirings import AutoNCP, FullyConnected

from neurocomp import kernels
from neurocomp.data.encoders import rows
from neurocomp.models import build_model

CELLS = {"ltc": (LTC, {}, "native ltc_unfold"), "cfc-default": (CfC, {"mode": "default"}, "native cfc"),
         "cfc-no_gate": (CfC, {"mode": "no_gate"}, "native cfc")}
pytestmark = pytest.mark.skipif(kernels.build.load("ltc_unfold") is None or kernels.build.load("cfc") is None,
                                reason="no C++ toolchain for the fused LTC and CfC kernels")


def reference_and_fused(cell, wiring, dtype, batch=5):
    """The ncps module, its input (T, B, inputs), ncps' outputs and the kernel's."""
    torch.manual_seed(0)
    module_class, options, _ = CELLS[cell]
    module = module_class(12, wiring, batch_first=False, **options).to(dtype)
    x = torch.randn(9, batch, 12, dtype=dtype, requires_grad=True)
    assert kernels.plan_liquid(module, x.device, dtype).native
    return module, x, module(x)[0], kernels.liquid_sequence(module, x)


def gradients(module, x, output, weights):
    """Gradients of every trainable parameter and of the input."""
    return torch.autograd.grad((output * weights).sum(), [p for p in module.parameters() if p.requires_grad] + [x])


@pytest.mark.parametrize("batch", [5, 37])  # the kernels work in blocks of 16 samples: a partial one, several
@pytest.mark.parametrize("wiring", [lambda: AutoNCP(10, 2, seed=3), lambda: FullyConnected(6, 2)], ids=["autoncp", "dense"])
@pytest.mark.parametrize("cell", CELLS)
def test_fp64_outputs_and_gradients_equal_ncps(cell, wiring, batch):
    module, x, reference, fused = reference_and_fused(cell, wiring(), torch.float64, batch)
    assert torch.allclose(fused, reference, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(reference)
    for ours, theirs in zip(gradients(module, x, fused, weights), gradients(module, x, reference, weights)):
        assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_fp32_matches_within_1e5_and_gradients_match_an_fp64_reference(cell):
    # fp32 uses the vectorised polynomial exp and tanh (fastmath.h), fp64 the C library's.
    module, x, reference, fused = reference_and_fused(cell, AutoNCP(10, 2, seed=3), torch.float32, batch=37)
    assert ((fused - reference).abs().max() / reference.abs().max()) < 1e-5
    weights = torch.randn_like(reference)
    ours = gradients(module, x, fused, weights)
    module64, x64 = module.double(), x.detach().double().requires_grad_()
    exact = gradients(module64, x64, module64(x64)[0], weights.double())
    for mine, truth in zip(ours, exact):
        assert (mine.double() - truth).abs().max() <= 1e-4 * truth.abs().max() + 1e-7


@pytest.mark.parametrize("cell", CELLS)
def test_models_use_the_fused_path_record_it_and_step_aside_for_the_library(cell):
    encoder = rows(sample_shape=(1, 28, 28))
    name, options = cell.split("-")[0], CELLS[cell][1]
    model = build_model(name, encoder=encoder, num_outputs=2, **options)
    assert model.describe()["kernels"][0]["path"] == CELLS[cell][2]
    with kernels.backend("library"):
        assert model.describe()["kernels"][0] == {"where": CELLS[cell][0].__name__, "path": "library",
                                                  "reason": "model.backend is library"}
        logits = model(encoder(torch.rand(3, 1, 28, 28)))
        logits.sum().backward()
    assert logits.shape == (3, 2)


@pytest.mark.parametrize("module, reason", [
    (lambda: LTC(12, AutoNCP(10, 2, seed=3), batch_first=False, mixed_memory=True), "mixed memory"),
    (lambda: CfC(12, AutoNCP(10, 2, seed=3), batch_first=False, mode="pure"), "mode 'pure'"),
    (lambda: CfC(12, 10, batch_first=False), "not ncps' wired CfC"),
])
def test_what_the_kernels_do_not_compute_takes_the_ncps_path(module, reason):
    # The kernels would silently drop ncps' LSTM beside the cell, or compute another CfC: they step aside.
    torch.manual_seed(0)
    module = module()
    decision = kernels.plan_liquid(module, torch.device("cpu"), torch.float32)
    assert not decision.native and reason in decision.reason
    assert kernels.liquid_sequence(module, torch.randn(9, 5, 12)) is None
