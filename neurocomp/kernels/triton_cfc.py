"""ncps' wired CfC on the GPU, in Triton: each layer's recurrence over a whole sequence in one launch
each way, where ncps launches a dozen small kernels per layer and step.

A wired CfC is a stack of CfC layers; layer l at step t reads the new state of layer l - 1 and its
own previous state (the equations of ``csrc/cfc.cpp``). Layer l - 1 never reads layer l, so the
layers run one after another over the whole sequence: the input half of each layer's affine map is
one large matrix product for all steps (torch, autograd), and only the recurrence runs here, in
:func:`_scan_forward`: one program per sample keeps the state in registers and walks the T steps.
The backward pass recomputes the activations from the saved states and returns the pre-activation
gradients, from which torch forms the recurrent weights' gradient in one product. Its tests run
under ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_math import sigmoid, square_tile, tanh

KERNEL = "triton_cfc"
# Warps per program (one sample each): small tiles want few; benchmarks/triton_warps.py measures it.
NUM_WARPS = 4


@triton.jit
def _activations(zx, h, w1, w2, w3, w4, offset, hidden, j, keep):
    """(ff1, ff2, gate) of one step from its input pre-activations ``zx[offset:]`` (4 H) and state ``h``."""
    z1 = tl.load(zx + offset + j, mask=keep, other=0.0) + tl.sum(w1 * h[None, :], axis=1)
    z2 = tl.load(zx + offset + hidden + j, mask=keep, other=0.0) + tl.sum(w2 * h[None, :], axis=1)
    z3 = (tl.load(zx + offset + 2 * hidden + j, mask=keep, other=0.0) + tl.load(zx + offset + 3 * hidden + j, mask=keep, other=0.0)
          + tl.sum((w3 + w4) * h[None, :], axis=1))
    return tanh(z1), tanh(z2), sigmoid(z3)


@triton.jit
def _load_weights(wh, hidden, HP: tl.constexpr):
    square = hidden * hidden  # the four (H, H) recurrent blocks of ff1, ff2, time_a, time_b
    return (square_tile(wh, hidden, HP), square_tile(wh + square, hidden, HP), square_tile(wh + 2 * square, hidden, HP),
            square_tile(wh + 3 * square, hidden, HP))


@triton.jit
def _scan_forward(zx, h0, wh, outputs, batch, hidden, gated: tl.constexpr, steps: tl.constexpr, HP: tl.constexpr):
    b = tl.program_id(0)
    w1, w2, w3, w4 = _load_weights(wh, hidden, HP)
    j = tl.arange(0, HP)
    keep = j < hidden
    h = tl.load(h0 + b * hidden + j, mask=keep, other=0.0)
    for t in range(steps):
        ff1, ff2, gate = _activations(zx, h, w1, w2, w3, w4, (t * batch + b) * 4 * hidden, hidden, j, keep)
        if gated:
            h = ff1 * (1.0 - gate) + gate * ff2
        else:
            h = ff1 + gate * ff2
        h = tl.where(keep, h, 0.0)
        tl.store(outputs + (t * batch + b) * hidden + j, h, mask=keep)


@triton.jit
def _scan_backward(grad_outputs, zx, h0, wh, outputs, grad_z, grad_h0, batch, hidden, gated: tl.constexpr,
                   steps: tl.constexpr, HP: tl.constexpr):
    b = tl.program_id(0)
    w1, w2, w3, w4 = _load_weights(wh, hidden, HP)
    j = tl.arange(0, HP)
    keep = j < hidden
    carry = tl.zeros([HP], dtype=w1.dtype)  # the gradient reaching the state from the step after
    for tt in range(steps):
        t = steps - 1 - tt
        before = (tl.load(outputs + ((t - 1) * batch + b) * hidden + j, mask=keep & (t > 0), other=0.0)
                  + tl.load(h0 + b * hidden + j, mask=keep & (t == 0), other=0.0))
        offset = (t * batch + b) * 4 * hidden
        ff1, ff2, gate = _activations(zx, before, w1, w2, w3, w4, offset, hidden, j, keep)
        g = tl.load(grad_outputs + (t * batch + b) * hidden + j, mask=keep, other=0.0) + carry
        if gated:
            d_ff1 = g * (1.0 - gate)
            d_gate = g * (ff2 - ff1)
        else:
            d_ff1 = g
            d_gate = g * ff2
        d_z1 = d_ff1 * (1.0 - ff1 * ff1)
        d_z2 = g * gate * (1.0 - ff2 * ff2)
        d_z3 = tl.where(keep, d_gate * gate * (1.0 - gate), 0.0)
        tl.store(grad_z + offset + j, d_z1, mask=keep)
        tl.store(grad_z + offset + hidden + j, d_z2, mask=keep)
        tl.store(grad_z + offset + 2 * hidden + j, d_z3, mask=keep)
        tl.store(grad_z + offset + 3 * hidden + j, d_z3, mask=keep)
        carry = (tl.sum(w1 * d_z1[:, None], axis=0) + tl.sum(w2 * d_z2[:, None], axis=0)
                 + tl.sum((w3 + w4) * d_z3[:, None], axis=0))
    tl.store(grad_h0 + b * hidden + j, carry, mask=keep)


class _Scan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, zx, h0, wh, gated):
        steps, batch, four_hidden = zx.shape
        hidden = four_hidden // 4
        outputs = zx.new_empty(steps, batch, hidden)
        _scan_forward[(batch,)](zx, h0, wh, outputs, batch, hidden, gated=gated, steps=steps,
                                HP=triton.next_power_of_2(hidden), num_warps=NUM_WARPS)
        ctx.save_for_backward(zx, h0, wh, outputs)
        ctx.gated = gated
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs):
        zx, h0, wh, outputs = ctx.saved_tensors
        steps, batch, hidden = outputs.shape
        grad_z, grad_h0 = torch.empty_like(zx), torch.empty_like(h0)
        _scan_backward[(batch,)](grad_outputs.contiguous(), zx, h0, wh, outputs, grad_z, grad_h0, batch, hidden,
                                 gated=ctx.gated, steps=steps, HP=triton.next_power_of_2(hidden), num_warps=NUM_WARPS)
        before = torch.cat([h0.unsqueeze(0), outputs[:-1]])
        grad_wh = torch.einsum("tbo,tbi->oi", grad_z, before)  # (4 H, H): the recurrent weights' gradient
        return grad_z, grad_h0, grad_wh, None


def layer_sequence(x: torch.Tensor, weights: torch.Tensor, biases: torch.Tensor, gated: bool) -> torch.Tensor:
    """One CfC layer's states ``(T, B, H)`` over its inputs ``(T, B, I)`` from a zero state; ``weights``
    ``(4 H, I + H)`` are ``[ff1 * mask; ff2 * mask; time_a; time_b]`` over ``[input, state]``, ``biases`` (4 H)."""
    hidden = weights.shape[0] // 4
    inputs = x.shape[-1]
    zx = torch.nn.functional.linear(x, weights[:, :inputs], biases)  # every step's input half at once
    h0 = x.new_zeros(x.shape[1], hidden)
    return _Scan.apply(zx.contiguous(), h0, weights[:, inputs:].contiguous(), gated)
