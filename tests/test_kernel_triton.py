"""The Triton LIF kernel (for CUDA) computes snnTorch's Leaky: run on the CPU by Triton's interpreter
(TRITON_INTERPRET=1, in a fresh process: the variable must be set before Triton is imported), spikes
and membranes equal and gradients equal snnTorch's own autograd in fp64, within 1e-5 in fp32, for
every reset rule, and for a neuron count that leaves a partial block."""

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


def test_the_triton_lif_kernel_equals_snntorch_under_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "triton LIF equals snnTorch" in done.stdout


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_the_snn_on_cuda_runs_the_triton_lif_and_equals_snntorch():
    import torch

    from neurocomp import kernels
    from neurocomp.encoders import rate
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
