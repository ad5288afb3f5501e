"""A fused CPU path for ncps' wired CfC: the same mathematics in one C++ call each way.

ncps runs every layer of every step as a dozen small tensor operations (four masked linear maps,
tanh, sigmoid, the gate). Here the four weight matrices of each layer are stacked once per call and
``csrc/cfc.cpp`` runs the whole sequence forward and backward with the batch innermost, so the
arithmetic vectorises. Modes ``default`` and ``no_gate`` are covered; ``pure`` runs in ncps.

The kernel is built by :mod:`neurocomp.native`; where it cannot be, or on CUDA, ncps runs as
before. The path taken is recorded in the run record.
"""

from __future__ import annotations

import torch
from ncps.torch import CfC
from ncps.torch.wired_cfc_cell import WiredCfCCell

from . import native

KERNEL = "cfc"


class _FusedCfc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, gated, *parameters):
        weights, biases = list(parameters[0::2]), list(parameters[1::2])
        outputs, states, acts = native.load(KERNEL).forward(x, h0, weights, biases, gated)
        ctx.save_for_backward(x, states, acts, *weights)
        ctx.gated = gated
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs):
        x, states, acts, *weights = ctx.saved_tensors
        g_x, g_h0, *g_parameters = native.load(KERNEL).backward(grad_outputs.contiguous(), x, states, acts, weights,
                                                                ctx.gated)
        return (g_x, g_h0, None, *g_parameters)


def covers(cfc: torch.nn.Module) -> bool:
    """Whether the fused kernel computes this ncps CfC: wired, no mixed memory, no projection, mode not pure."""
    cell = getattr(cfc, "rnn_cell", None)
    return (isinstance(cfc, CfC) and isinstance(cell, WiredCfCCell) and not cfc.use_mixed
            and isinstance(cfc.fc, torch.nn.Identity) and cell._layers[0].mode != "pure")


def cfc_sequence(cell: WiredCfCCell, x: torch.Tensor) -> torch.Tensor:
    """ncps ``WiredCfCCell`` over a time-major sequence ``(T, B, inputs) -> (T, B, motor outputs)``,
    from a zero state with elapsed time 1 (ncps' default); equal to ncps up to float rounding order."""
    parameters = []
    for layer in cell._layers:
        mask = layer.sparsity_mask
        parameters.append(torch.cat([layer.ff1.weight * mask, layer.ff2.weight * mask,
                                     layer.time_a.weight, layer.time_b.weight]))
        parameters.append(torch.cat([layer.ff1.bias, layer.ff2.bias, layer.time_a.bias, layer.time_b.bias]))
    h0 = x.new_zeros(x.shape[1], cell.state_size)
    return _FusedCfc.apply(x.contiguous(), h0, cell._layers[0].mode == "default", *parameters)
