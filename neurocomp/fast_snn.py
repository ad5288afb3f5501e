"""A fused CPU path for the first block of a spiking conv network: conv -> max-pool -> LIF.

The first block sees the encoder's spikes, so its convolution can run on the events: each input
spike adds its weights to the outputs it reaches, each step's conv output stays in the cache and is
pooled and fed to the LIF neurons at once, and the backward pass sends the LIF gradient to the
argmax of each pooling window (``csrc/conv_pool_lif.cpp``). This is the same computation as
``Conv2d -> MaxPool2d -> Leaky``, without the conv output and its gradient in memory (~70 MB per
batch in the PneumoniaMNIST study). Deeper blocks stay with oneDNN's convolutions: an event-driven
kernel for the second block of that study, input gradient included, measured ~1.7x slower.

Covered: a ``Conv2d`` with stride 1, no padding, no dilation or groups, with bias, then an optional
``MaxPool2d`` whose stride equals its kernel; LIF neurons with fixed beta and threshold; CPU
float32/64 input that needs no gradient. Anything else runs the general path.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from . import native

KERNEL = "conv_pool_lif"


class _FusedConvPoolLeaky(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, pool, beta, threshold, slope, mode):
        spikes, membranes, argmax = native.load(KERNEL).forward(x, weight, bias, pool, beta, threshold, mode)
        ctx.save_for_backward(x, weight, membranes, argmax)
        ctx.constants = pool, beta, threshold, slope, mode
        ctx.mark_non_differentiable(membranes)  # a conv block is never the readout layer
        return spikes, membranes

    @staticmethod
    def backward(ctx, grad_spikes, _grad_membranes):
        x, weight, membranes, argmax = ctx.saved_tensors
        g_weight, g_bias = native.load(KERNEL).backward(grad_spikes.contiguous(), x, weight, membranes, argmax,
                                                        *ctx.constants)
        return None, g_weight, g_bias, None, None, None, None, None


def _conv_and_pool(block: nn.Module) -> Optional[tuple[nn.Conv2d, int]]:
    """The conv and pool size of a ``Conv2d [-> MaxPool2d]`` block the kernel covers, else None."""
    modules = list(block) if isinstance(block, nn.Sequential) else [block]
    conv, pools = modules[0], modules[1:]
    if not isinstance(conv, nn.Conv2d) or conv.bias is None or conv.padding_mode != "zeros":
        return None
    if conv.stride != (1, 1) or conv.padding != (0, 0) or conv.dilation != (1, 1) or conv.groups != 1:
        return None
    if conv.kernel_size[0] != conv.kernel_size[1]:
        return None
    if not pools:
        return conv, 1
    pool = pools[0]
    if len(pools) > 1 or not isinstance(pool, nn.MaxPool2d) or pool.padding != 0 or pool.dilation != 1 or pool.ceil_mode:
        return None
    if not isinstance(pool.kernel_size, int) or pool.stride != pool.kernel_size or pool.kernel_size > 15:
        return None
    return conv, pool.kernel_size


def covers(block: nn.Module, neuron: nn.Module) -> bool:
    """Whether the fused kernel computes ``neuron(block(x))`` on CPU (given a CPU input)."""
    options = getattr(neuron, "fused_options", lambda: None)()
    return _conv_and_pool(block) is not None and options is not None and native.load(KERNEL) is not None


def conv_pool_leaky(block: nn.Module, neuron: nn.Module, x: torch.Tensor) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """Spikes and membranes ``(T, B, C, H', W')`` of ``neuron(block(x))`` for ``x`` ``(T, B, C, H, W)``,
    computed by the fused kernel; None where it does not cover the block, neuron or input."""
    if not covers(block, neuron) or x.dim() != 5 or x.requires_grad or not native.runs_on(KERNEL, x):
        return None
    conv, pool = _conv_and_pool(block)
    if x.dtype != conv.weight.dtype:
        return None
    spikes, membranes = _FusedConvPoolLeaky.apply(x, conv.weight, conv.bias, pool, *neuron.fused_options())
    # (T, B, H', W', C) -> (T, B, C, H', W'), channels-last in memory, as the next conv wants it.
    return spikes.permute(0, 1, 4, 2, 3), membranes.permute(0, 1, 4, 2, 3)
