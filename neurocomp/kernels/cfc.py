"""Fused paths for ncps' wired CfC: the same mathematics in one C++ call each way on the CPU, and
one Triton launch per layer each way on CUDA (``triton_cfc.py``).

ncps runs every layer of every step as a dozen small tensor operations (four masked linear maps,
tanh, sigmoid, the gate). Here the four weight matrices of each layer are stacked once per call and
``csrc/cfc.cpp`` runs the whole sequence forward and backward with the batch innermost, so the
arithmetic vectorises. Modes ``default`` and ``no_gate`` are covered; ``pure`` runs in ncps.
"""

from __future__ import annotations

from typing import Optional

import torch
from ncps.torch import CfC
from ncps.torch.wired_cfc_cell import WiredCfCCell

from . import ncps_internals as ncps
from . import build
from .policy import Decision, decide

KERNEL = "cfc"


class _FusedCfc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, gated, *parameters):
        weights, biases = list(parameters[0::2]), list(parameters[1::2])
        outputs, states, acts = build.load(KERNEL).forward(x, h0, weights, biases, gated)
        ctx.save_for_backward(x, states, acts, *weights)
        ctx.gated = gated
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs):
        x, states, acts, *weights = ctx.saved_tensors
        g_x, g_h0, *g_parameters = build.load(KERNEL).backward(grad_outputs.contiguous(), x, states, acts, weights,
                                                               ctx.gated)
        return (g_x, g_h0, None, *g_parameters)


def mismatch(cfc: torch.nn.Module) -> Optional[str]:
    """How ``cfc`` differs from what the kernel computes (ncps ``CfC`` on a wiring, no mixed memory,
    no projection, mode ``default`` or ``no_gate``), or None."""
    if type(cfc) is not CfC or type(cfc.rnn_cell) is not WiredCfCCell:
        return f"{type(cfc).__name__} is not ncps' wired CfC"
    if cfc.use_mixed or not isinstance(cfc.fc, torch.nn.Identity):
        return "mixed memory or an output projection is on"
    if ncps.cfc_layers(cfc.rnn_cell)[0].mode == "pure":
        return "mode 'pure' is not covered"
    return None


def plan(cfc: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> Decision:
    """Whether a kernel computes the ncps ``CfC`` module ``cfc`` on tensors of ``device`` and ``dtype``:
    the C++ one on the CPU, the Triton one on CUDA."""
    return decide("triton_cfc" if device.type == "cuda" else KERNEL, device, dtype, lambda: mismatch(cfc))


def cfc_sequence(cell: WiredCfCCell, x: torch.Tensor, *, triton: Optional[bool] = None) -> torch.Tensor:
    """ncps ``WiredCfCCell`` over a time-major sequence ``(T, B, inputs) -> (T, B, motor outputs)``,
    from a zero state with elapsed time 1 (ncps' default); equal to ncps up to float rounding order.
    ``triton``: run the Triton kernel (default: where ``x`` is on CUDA; the tests run it on the CPU
    under Triton's interpreter)."""
    parameters = []
    layers = ncps.cfc_layers(cell)
    for layer in layers:
        mask = layer.sparsity_mask
        parameters.append(torch.cat([layer.ff1.weight * mask, layer.ff2.weight * mask,
                                     layer.time_a.weight, layer.time_b.weight]))
        parameters.append(torch.cat([layer.ff1.bias, layer.ff2.bias, layer.time_a.bias, layer.time_b.bias]))
    gated = layers[0].mode == "default"
    if x.is_cuda if triton is None else triton:
        from .triton_cfc import layer_sequence  # CUDA: imported only there

        for weights, biases in zip(parameters[0::2], parameters[1::2]):  # layer l reads layer l - 1's states
            x = layer_sequence(x, weights, biases, gated)
        return x
    h0 = x.new_zeros(x.shape[1], cell.state_size)
    return _FusedCfc.apply(x.contiguous(), h0, gated, *parameters)
