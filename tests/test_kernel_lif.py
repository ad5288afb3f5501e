"""The native LIF kernel computes snnTorch's Leaky: spikes exactly, membranes to rounding, and
gradients equal to snnTorch's own autograd run in fp64. Where a neuron's maths differs (another
surrogate, a reset rule the kernel lacks, a learnable parameter), the kernel steps aside."""

import pytest
import snntorch
import torch
from snntorch import surrogate

from neurocomp import kernels
from neurocomp.data.encoders import rate
from neurocomp.core.errors import UsageError
from neurocomp.models import build_model
from neurocomp.models.snn import LeakyLayer

pytestmark = pytest.mark.skipif(kernels.build.load("lif") is None, reason="no C++ toolchain for the native LIF kernel")
CPU = torch.device("cpu")


def layer(reset="subtract", slope=25.0):
    return LeakyLayer(beta=0.6, threshold=1.0, slope=slope, reset=reset, learn_beta=False, learn_threshold=False)


def library(neurons, current):
    """snnTorch stepping the neuron, with its own autograd."""
    with kernels.backend("library"):
        return neurons(current)


def gradient(neurons, current, weights, path):
    leaf = current.detach().clone().requires_grad_()
    spikes, membranes = path(neurons, leaf)
    return torch.autograd.grad((spikes * weights[0] + membranes * weights[1]).sum(), leaf)[0]


def native(neurons, current):
    assert kernels.lif.plan(neurons.neuron, current.device, current.dtype).native
    return neurons(current)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_spikes_equal_and_membranes_match_snntorch(reset):
    torch.manual_seed(0)
    neurons = layer(reset)
    current = torch.randn(20, 16, 12, 6, 6) * 1.5
    spikes, membranes = native(neurons, current)
    reference_spikes, reference_membranes = library(neurons, current)
    assert torch.equal(spikes, reference_spikes)
    assert torch.allclose(membranes, reference_membranes, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("slope", [25.0, 3.0])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_fp64_gradients_equal_snntorchs_own_autograd(reset, slope):
    torch.manual_seed(1)
    neurons = layer(reset, slope).double()
    current = torch.randn(20, 8, 40, dtype=torch.float64) * 1.5
    # fp32-representable weights: snnTorch's spikes are float32 even in fp64, so their gradient is too.
    weights = torch.randn(2, 20, 8, 40).double()
    ours = gradient(neurons, current, weights, native)
    theirs = gradient(neurons, current, weights, library)
    assert theirs.abs().max() > 0
    assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_channels_last_currents_keep_their_layout_and_values():
    neurons = layer()
    current = torch.randn(4 * 3, 5, 7, 7).contiguous(memory_format=torch.channels_last).view(4, 3, 5, 7, 7)
    spikes, _ = native(neurons, current)
    reference_spikes, _ = library(neurons, current.contiguous())
    assert torch.equal(spikes, reference_spikes)


class _FastSigmoidAgain(torch.autograd.Function):
    """The fast sigmoid written anew (slope 7): the kernels recognise the maths, not the object."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (7.0 * x.abs() + 1) ** 2


class _SoftReset(snntorch.Leaky):
    """An extender's Leaky with its own reset rule: the kernel must not compute it."""

    def _base_sub(self, input_):
        return self._base_state_function(input_) - 0.5 * self.reset * self.threshold


@pytest.mark.parametrize("change, reason", [
    (lambda n: setattr(n, "spike_grad", surrogate.atan()), "surrogate"),
    (lambda n: setattr(n, "spike_grad", surrogate.sigmoid()), "surrogate"),
    (lambda n: setattr(n, "reset_delay", False), "undelayed reset"),
    (lambda n: setattr(n, "graded_spikes_factor", torch.tensor(2.0)), "graded"),
])
def test_a_changed_neuron_takes_the_library_path(change, reason):
    torch.manual_seed(2)
    neurons = layer().double()
    current = torch.randn(12, 4, 30, dtype=torch.float64) * 1.5
    weights = torch.randn(2, 12, 4, 30).double()
    before = gradient(neurons, current, weights, lambda n, c: n(c))
    change(neurons.neuron)
    decision = kernels.lif.plan(neurons.neuron, CPU, torch.float64)
    assert not decision.native and reason in decision.reason
    after = gradient(neurons, current, weights, lambda n, c: n(c))
    assert torch.equal(after, gradient(neurons, current, weights, library))  # what snnTorch computes
    assert not torch.allclose(after, before)  # and not what the kernel would have


def test_a_learnable_beta_takes_the_library_path_and_gets_its_gradient():
    neurons = layer()
    neurons.neuron.beta.requires_grad_()
    assert kernels.lif.plan(neurons.neuron, CPU, torch.float32).reason == "beta is learnable"
    spikes, membranes = neurons(torch.randn(10, 3, 20) * 2)
    (grad,) = torch.autograd.grad(membranes.sum(), neurons.neuron.beta)
    assert grad != 0


def test_a_reset_rule_of_a_subclass_takes_the_library_path():
    neurons = layer()
    neurons.neuron = _SoftReset(beta=0.6, spike_grad=surrogate.fast_sigmoid(slope=25))
    assert "not snnTorch's Leaky" in kernels.lif.plan(neurons.neuron, CPU, torch.float32).reason
    current = torch.randn(10, 3, 20) * 2
    assert torch.equal(neurons(current)[1], library(neurons, current)[1])


def test_the_fast_sigmoid_is_recognised_by_its_maths():
    neurons = layer()
    neurons.neuron.spike_grad = _FastSigmoidAgain.apply
    assert kernels.lif.plan(neurons.neuron, CPU, torch.float32).native
    assert kernels.lif.options(neurons.neuron)[2] == pytest.approx(7.0, rel=1e-12)
    current = torch.randn(10, 3, 20, dtype=torch.float64) * 2
    weights = torch.randn(2, 10, 3, 20).double()
    neurons.double()
    assert torch.allclose(gradient(neurons, current, weights, native), gradient(neurons, current, weights, library),
                          rtol=1e-10, atol=1e-12)


def test_the_snn_records_which_path_ran_and_why():
    encoder = rate(sample_shape=(1, 28, 28), steps=4)
    paths = build_model("snn", encoder=encoder, num_outputs=2).describe()["kernels"]
    assert [p["path"] for p in paths] == ["native conv_pool_lif", "native conv_pool_lif", "native lif"]
    paths = build_model("snn", encoder=encoder, num_outputs=2, learn_beta=True).describe()["kernels"]
    assert {(p["path"], p["reason"]) for p in paths} == {("library", "beta is learnable")}
    model = build_model("snn", encoder=encoder, num_outputs=2)
    with kernels.backend("library"):
        assert {p["reason"] for p in model.describe()["kernels"]} == {"model.backend is library"}
        assert model(encoder(torch.rand(2, 1, 28, 28))).shape == (2, 2)


def test_backend_native_refuses_where_no_kernel_applies():
    model = build_model("snn", encoder=rate(sample_shape=(1, 28, 28), steps=4), num_outputs=2, learn_beta=True)
    with kernels.backend("native"), pytest.raises(UsageError, match="beta is learnable"):
        model.describe()
