"""Fused CPU paths for the conv blocks of a spiking network: [conv ->] max-pool -> LIF.

A plain block's convolution runs in ``csrc/conv_pool_lif.cpp`` on its input spikes: the K inputs
under a kernel row form one of 2^K bit patterns, so each conv output is the bias plus Cin * K
looked-up weight sums (non-binary inputs run on their events instead). Each step's conv output stays
in the cache and is pooled and fed to the LIF neurons at once, which keeps the conv output and its
gradient out of memory (~70 MB per batch in the PneumoniaMNIST study). The backward pass sends the
LIF gradient to the argmax of each pooling window only (a quarter of the conv outputs for 2x2
pooling) and computes the weight gradient, and the input's where the input needs one (not the
first block's, fed by the encoder), from those positions, on the channels-last input. Blocks with
batch norm, padding or strides keep torch for everything before the pool, then max-pool and LIF run
fused. All compute what ``Conv2d -> MaxPool2d -> Leaky`` computes (spikes equal, see the tests). An
FC layer right after a fused block reads its channels-last spikes in place (``flatten_linear``).

Covered: neurons the LIF kernels compute (:func:`.lif.mismatch`), CPU float32/64, and a block that
is either a plain ``Conv2d`` (stride 1, no padding, dilation or groups, with bias) with an optional
``MaxPool2d`` whose stride equals its kernel, or any layers ending in such a ``MaxPool2d``. Anything
else runs the separate layers.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from . import build, lif
from .policy import Decision, decide

KERNEL = "conv_pool_lif"


def _steps_channels_last(output: torch.Tensor, steps: int, batch: int) -> torch.Tensor:
    """A conv output ``(T*B, C, H, W)`` as ``(T, B, H, W, C)`` contiguous (no copy when it is
    channels-last already, as oneDNN returns it for channels-last inputs and weights)."""
    return output.permute(0, 2, 3, 1).contiguous().view(steps, batch, *output.shape[2:], output.shape[1])


class _FusedPoolLeaky(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, pool, beta, threshold, slope, mode):
        spikes, membranes, argmax = build.load(KERNEL).pool_forward(current, pool, beta, threshold, mode)
        ctx.save_for_backward(membranes, argmax)
        ctx.set_materialize_grads(False)  # no zero-filled gradient for the membranes
        ctx.constants = pool, beta, threshold, slope, mode
        ctx.size = current.shape[2:4]
        ctx.mark_non_differentiable(membranes)
        return spikes, membranes

    @staticmethod
    def backward(ctx, grad_spikes, _grad_membranes):
        membranes, argmax = ctx.saved_tensors
        (grad,) = build.load(KERNEL).pool_backward(grad_spikes.contiguous(), membranes, argmax, *ctx.size,
                                                    *ctx.constants)
        return grad, None, None, None, None, None


class _ConvPoolLeaky(torch.autograd.Function):
    """conv -> max-pool -> LIF of a plain block (``conv_forward``). The backward
    (``sparse_conv_backward``) uses that only each pooling window's argmax has a conv output gradient,
    and computes the input's gradient only where the input needs one (not the first block's, fed by
    the encoder)."""

    @staticmethod
    def forward(ctx, x, weight, bias, pool, beta, threshold, slope, mode):
        spikes, membranes, argmax = build.load(KERNEL).conv_forward(x, weight, bias, pool, beta, threshold, mode)
        ctx.save_for_backward(x, weight, membranes, argmax)
        ctx.set_materialize_grads(False)  # no zero-filled gradient for the membranes
        ctx.constants = pool, beta, threshold, slope, mode
        ctx.mark_non_differentiable(membranes)  # a conv block is never the readout layer
        return spikes, membranes

    @staticmethod
    def backward(ctx, grad_spikes, _grad_membranes):
        x, weight, membranes, argmax = ctx.saved_tensors
        input_grad = ctx.needs_input_grad[0]
        # channels last: no copy for the spikes of a block before, nor for a one-channel image
        x_channels_last = x.permute(0, 1, 3, 4, 2).contiguous()
        g_x, g_weight, g_bias = build.load(KERNEL).sparse_conv_backward(
            grad_spikes.contiguous(), x_channels_last, weight, membranes, argmax, *ctx.constants, input_grad)
        return (g_x.permute(0, 1, 4, 2, 3) if input_grad else None), g_weight, g_bias, None, None, None, None, None


def _pool_size(module: nn.Module) -> Optional[int]:
    """The window of a max-pool the kernel covers (kernel = stride, no padding), else None."""
    if not isinstance(module, nn.MaxPool2d) or module.padding != 0 or module.dilation != 1 or module.ceil_mode:
        return None
    if not isinstance(module.kernel_size, int) or module.stride != module.kernel_size or module.kernel_size > 15:
        return None
    return module.kernel_size


def _plain_conv(block: nn.Module) -> Optional[tuple[nn.Conv2d, int]]:
    """The conv and pool size of a plain ``Conv2d [-> MaxPool2d]`` block the conv kernels cover."""
    modules = list(block) if isinstance(block, nn.Sequential) else [block]
    conv = modules[0]
    if not isinstance(conv, nn.Conv2d) or conv.bias is None or conv.padding_mode != "zeros" or len(modules) > 2:
        return None
    if conv.stride != (1, 1) or conv.padding != (0, 0) or conv.dilation != (1, 1) or conv.groups != 1:
        return None
    if conv.kernel_size[0] != conv.kernel_size[1]:
        return None
    pool = _pool_size(modules[1]) if len(modules) == 2 else 1
    return None if pool is None else (conv, pool)


def _before_pool(block: nn.Module) -> Optional[tuple[nn.Module, int]]:
    """The layers before a block's final max-pool and the pool size, if the pool is covered."""
    if not isinstance(block, nn.Sequential) or len(block) < 2:
        return None
    pool = _pool_size(block[-1])
    return None if pool is None else (block[:-1], pool)


def _block_mismatch(block: nn.Module) -> Optional[str]:
    if _plain_conv(block) is None and _before_pool(block) is None:
        return ("the block is neither a plain Conv2d (stride 1, no padding, with bias) [-> MaxPool2d] nor "
                "layers ending in a MaxPool2d whose stride is its kernel")
    return None


def plan(block: nn.Module, neuron: Optional[nn.Module], device: torch.device, dtype: torch.dtype) -> Decision:
    """Whether the fused kernel computes ``neuron(block(x))`` (``neuron``: snnTorch ``Leaky``) on
    tensors of ``device`` and ``dtype``."""
    return decide(KERNEL, device, dtype, lambda: lif.mismatch(neuron) or _block_mismatch(block))


def conv_block_leaky(block: nn.Module, neuron: Optional[nn.Module],
                     x: torch.Tensor) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """Spikes and membranes ``(T, B, C, H', W')`` of ``neuron(block(x))`` for ``x`` ``(T, B, C, H, W)``
    (``neuron``: snnTorch ``Leaky``), by a fused kernel; None where none applies (then run them apart)."""
    if x.dim() != 5 or not plan(block, neuron, x.device, x.dtype).native:
        return None
    options = lif.options(neuron)
    plain_conv = _plain_conv(block)
    if plain_conv is not None and x.dtype == plain_conv[0].weight.dtype:
        spikes, membranes = _ConvPoolLeaky.apply(x, plain_conv[0].weight, plain_conv[0].bias, plain_conv[1], *options)
    elif _before_pool(block) is not None:
        layers, pool = _before_pool(block)
        steps, batch = x.shape[:2]
        current = _steps_channels_last(layers(x.reshape(steps * batch, *x.shape[2:])), steps, batch)
        spikes, membranes = _FusedPoolLeaky.apply(current, pool, *options)
    else:
        return None
    # (T, B, H', W', C) -> (T, B, C, H', W'), channels-last in memory, as the next conv wants it.
    return spikes.permute(0, 1, 4, 2, 3), membranes.permute(0, 1, 4, 2, 3)


def flatten_linear(layer: nn.Module, x: torch.Tensor) -> Optional[torch.Tensor]:
    """The current ``(T*B, out)`` of a ``Flatten -> Linear`` layer on channels-last maps ``x``
    ``(T, B, C, H, W)`` (a fused block's spikes), with the weight's columns put in (H, W, C) order
    instead of the maps copied into (C, H, W) order, and their gradient back; None where the layer
    is not that or ``x`` is not channels last (then run the layer)."""
    if not (isinstance(layer, nn.Sequential) and len(layer) == 2 and isinstance(layer[1], nn.Linear)
            and isinstance(layer[0], nn.Flatten) and (layer[0].start_dim, layer[0].end_dim) == (1, -1)):
        return None
    if x.dim() != 5 or x.is_contiguous() or not x.permute(0, 1, 3, 4, 2).is_contiguous():
        return None
    linear, (channels, height, width) = layer[1], x.shape[2:]
    weight = linear.weight.view(-1, channels, height, width).permute(0, 2, 3, 1).reshape(linear.out_features, -1)
    return F.linear(x.permute(0, 1, 3, 4, 2).reshape(-1, height * width * channels), weight, linear.bias)
