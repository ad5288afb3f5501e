"""snnTorch's ``Leaky`` over all time steps in one native call each way (``csrc/lif.cpp``), and the
check that a ``Leaky`` module computes exactly what the LIF kernels compute (``csrc/lif.h``): the
same reset rule and delay, fixed scalar beta and threshold, and the fast-sigmoid surrogate."""

from __future__ import annotations

import math
import weakref
from typing import Optional

import snntorch
import torch

from . import build
from .policy import Decision, decide

KERNEL = "lif"
_RESETS = {"subtract": 0, "zero": 1, "none": 2}  # the kernels' mode numbers
# Surrogates are probed once per neuron module: (the spike_grad probed, its fast-sigmoid slope or None).
_probed: "weakref.WeakKeyDictionary[torch.nn.Module, tuple]" = weakref.WeakKeyDictionary()


def fast_sigmoid_slope(spike_grad) -> Optional[float]:
    """The slope k when ``spike_grad`` is the fast sigmoid (Heaviside forward, gradient
    1 / (k|x| + 1)^2), else None. Probed by evaluating it in fp64, so any way of writing the
    surrogate is recognised and any other surrogate (atan, a custom one) is refused."""
    x = torch.tensor([-1.5, -0.2, 0.0, 0.1, 0.7, 3.0], dtype=torch.float64, requires_grad=True)
    try:
        with torch.enable_grad():
            spikes = spike_grad(x)
            (grad,) = torch.autograd.grad(spikes.sum(), x)
    except Exception:  # a surrogate that cannot take fp64 or has no gradient: not the kernels' maths
        return None
    if not torch.equal(spikes.detach().double(), (x > 0).double()) or not grad[-1] > 0:
        return None
    slope = (1 / math.sqrt(float(grad[-1])) - 1) / 3.0  # from 1 / (3k + 1)^2 at x = 3
    expected = 1 / (slope * x.detach().abs() + 1) ** 2
    return slope if torch.allclose(grad, expected, rtol=1e-9, atol=0) else None


def _slope(neuron: torch.nn.Module) -> Optional[float]:
    probed = _probed.get(neuron)
    if probed is None or probed[0] is not neuron.spike_grad:
        probed = _probed[neuron] = (neuron.spike_grad, fast_sigmoid_slope(neuron.spike_grad))
    return probed[1]


def mismatch(neuron: Optional[torch.nn.Module]) -> Optional[str]:
    """How ``neuron`` differs from the LIF the kernels compute, or None when it does not."""
    if type(neuron) is not snntorch.Leaky:  # a subclass may change any step
        return f"the spiking layer is {type(neuron).__name__}, not snnTorch's Leaky"
    for name in ("beta", "threshold"):
        value = getattr(neuron, name)
        if value.requires_grad:
            return f"{name} is learnable"
        if value.numel() != 1:
            return f"{name} is per neuron"
    if neuron.inhibition or neuron.state_quant or not neuron.reset_delay:
        return "inhibition, state quantisation or an undelayed reset is on"
    factor = neuron.graded_spikes_factor
    if getattr(factor, "requires_grad", False) or float(factor) != 1.0:
        return "spikes are graded"
    if neuron.reset_mechanism not in _RESETS:
        return f"reset {neuron.reset_mechanism!r} is not one of {', '.join(_RESETS)}"
    if _slope(neuron) is None:
        return f"the surrogate gradient {getattr(neuron.spike_grad, '__qualname__', neuron.spike_grad)!r} is not the fast sigmoid"
    return None


def options(neuron: torch.nn.Module) -> tuple[float, float, float, int]:
    """(beta, threshold, slope, reset mode) of a neuron :func:`mismatch` accepted, as the kernels take them."""
    beta = float(neuron.beta.clamp(0, 1))  # snnTorch clamps beta in every step
    return beta, float(neuron.threshold), _slope(neuron), _RESETS[neuron.reset_mechanism]


def plan(neuron: Optional[torch.nn.Module], device: torch.device, dtype: torch.dtype) -> Decision:
    """Whether a LIF kernel computes ``neuron`` on tensors of ``device`` and ``dtype``: the C++ one on
    the CPU, the Triton one (``triton_lif.py``) on CUDA."""
    kernel = "triton_lif" if device.type == "cuda" else KERNEL
    return decide(kernel, device, dtype, lambda: mismatch(neuron))


class _FusedLeaky(torch.autograd.Function):
    """The LIF recurrence by ``kernel``: the C++ module on the CPU, ``triton_lif`` on CUDA (one interface)."""

    @staticmethod
    def forward(ctx, current, kernel, beta, threshold, slope, mode):
        spikes, membranes = kernel.forward(current, beta, threshold, mode)
        ctx.save_for_backward(membranes)
        ctx.kernel, ctx.constants = kernel, (beta, threshold, slope, mode)
        return spikes, membranes

    @staticmethod
    def backward(ctx, grad_spikes, grad_membranes):
        (membranes,) = ctx.saved_tensors
        grad = ctx.kernel.backward(grad_spikes.contiguous(), grad_membranes.contiguous(), membranes, *ctx.constants)
        return grad, None, None, None, None, None


def leaky_over_time(neuron: Optional[torch.nn.Module], current: torch.Tensor) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """Spikes and membranes ``(T, B, ...)`` of ``neuron`` (snnTorch ``Leaky``, zero initial state)
    driven by ``current`` ``(T, B, ...)``; None where no kernel applies (then step it). A bfloat16
    or float16 current (autocast) is integrated in float32: the membrane sums many small currents,
    which an 8-bit mantissa would round away."""
    if current.dtype in (torch.bfloat16, torch.float16):
        current = current.float()
    decision = plan(neuron, current.device, current.dtype)
    if not decision.native:
        return None
    if decision.kernel == KERNEL:
        return over_time(build.load(KERNEL), neuron, current)
    from . import triton_lif  # CUDA: imported only there

    return over_time(triton_lif, neuron, current)


def over_time(kernel, neuron: torch.nn.Module, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and membranes ``(T, B, ...)`` of ``neuron`` by ``kernel`` (the C++ ``lif`` module or
    :mod:`.triton_lif`: one interface), for a neuron :func:`mismatch` accepted."""
    # Elementwise over time: walk the memory in its own order (channels-last conv output included)
    # instead of copying it into the logical order and back.
    order = sorted(range(current.dim()), key=lambda d: -current.stride(d))
    dense = current.permute(order).contiguous()
    spikes, membranes = _FusedLeaky.apply(dense.view(len(current), -1), kernel, *options(neuron))
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return spikes.view(dense.shape).permute(inverse), membranes.view(dense.shape).permute(inverse)
