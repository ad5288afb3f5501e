"""The Triton kernels (for CUDA) compute what the libraries compute, run on the CPU by Triton's
interpreter (TRITON_INTERPRET=1, in a fresh process: the variable must be set before Triton is
imported). LIF: spikes and membranes equal and gradients equal snnTorch's own autograd in fp64,
within 1e-5 in fp32, for every reset rule and a neuron count that leaves a partial block. LTC and
CfC (both gated modes): outputs and the gradients of every parameter and of the input equal ncps'
in fp64 to 1e-12 and within 1e-5 in fp32, on an NCP wiring and a dense one."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

CHECK = """
import torch
from snntorch import surrogate
from neurocomp import kernels
from neurocomp.kernels import triton_lif
from neurocomp.models.snn import LeakyLayer

for reset in ("subtract", "zero", "none"):
    for dtype, tolerance in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        torch.manual_seed(0)
        neurons = LeakyLayer(beta=0.6, threshold=1.0, slope=25.0, reset=reset, learn_beta=False,
                             learn_threshold=False).to(dtype)
        current = (torch.randn(12, 300, dtype=dtype) * 1.5).requires_grad_()
        weights = torch.randn(2, 12, 300).to(dtype)
        spikes, membranes = kernels.lif.over_time(triton_lif, neurons.neuron, current)
        ours = torch.autograd.grad((spikes * weights[0] + membranes * weights[1]).sum(), current)[0]
        with kernels.backend("library"):
            ref_spikes, ref_membranes = neurons(current)
        theirs = torch.autograd.grad((ref_spikes * weights[0] + ref_membranes * weights[1]).sum(), current)[0]
        assert spikes.sum() > 0 and torch.equal(spikes, ref_spikes), (reset, dtype)
        assert torch.allclose(membranes, ref_membranes, rtol=tolerance, atol=tolerance), (reset, dtype)
        assert (ours - theirs).abs().max() <= tolerance * theirs.abs().max(), (reset, dtype)
decision = kernels.lif.plan(neurons.neuron, torch.device("cuda"), torch.float32)
assert decision.kernel == "triton_lif" and decision.native, decision
print("triton LIF equals snnTorch")
"""


LIQUID = """
import torch
from ncps.torch import CfC, LTC
from ncps.wirings import AutoNCP, FullyConnected
from neurocomp import kernels
from neurocomp.kernels import cfc, ltc

cells = {"ltc": (lambda w: LTC(5, w, batch_first=False), ltc.ltc_sequence),
         "cfc": (lambda w: CfC(5, w, batch_first=False), cfc.cfc_sequence),
         "cfc-no_gate": (lambda w: CfC(5, w, batch_first=False, mode="no_gate"), cfc.cfc_sequence)}
for name, (make, sequence) in cells.items():
    for wiring in (lambda: AutoNCP(8, 2, seed=3), lambda: FullyConnected(6, 2)):
        for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
            torch.manual_seed(0)
            module = make(wiring()).to(dtype)
            x = torch.randn(4, 3, 5, dtype=dtype, requires_grad=True)
            with kernels.backend("library"):
                reference = module(x)[0]
            ours = sequence(module.rnn_cell, x, triton=True)
            assert (ours - reference).abs().max() <= tolerance * reference.abs().max(), (name, dtype)
            weights = torch.randn_like(reference)
            wrt = [p for p in module.parameters() if p.requires_grad] + [x]
            for mine, theirs in zip(torch.autograd.grad((ours * weights).sum(), wrt),
                                    torch.autograd.grad((reference * weights).sum(), wrt)):
                assert (mine - theirs).abs().max() <= tolerance * theirs.abs().max(), (name, dtype)
    decision = kernels.plan_liquid(module, torch.device("cuda"), torch.float32)
    assert decision.native and decision.kernel == "triton_" + name.split("-")[0], decision
print("triton LTC and CfC equal ncps")
"""


@pytest.mark.parametrize("check, says", [(CHECK, "triton LIF equals snnTorch"), (LIQUID, "triton LTC and CfC equal ncps")],
                         ids=["lif", "ltc-cfc"])
def test_the_triton_kernels_equal_the_libraries_under_the_interpreter(check, says):
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert says in done.stdout


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_the_snn_on_cuda_runs_the_triton_lif_and_equals_snntorch():
    import torch

    from neurocomp import kernels
    from neurocomp.data.encoders import rate
    from neurocomp.models import build_model

    encoder = rate(sample_shape=(1, 28, 28), steps=6)
    model = build_model("snn", encoder=encoder, num_outputs=2).cuda()
    paths = [entry["path"] for entry in model.describe()["kernels"]]
    assert paths[-1] == "native triton_lif"  # the conv blocks run torch's conv with the Triton LIF
    x = encoder(torch.rand(16, 1, 28, 28, device="cuda"), torch.Generator(device="cuda").manual_seed(0))
    logits, spikes = model.forward_with_spikes(x)
    with kernels.backend("library"):
        ref_logits, ref_spikes = model.forward_with_spikes(x)
    assert torch.equal(spikes, ref_spikes) and torch.allclose(logits, ref_logits, atol=1e-5)
