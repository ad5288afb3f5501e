"""A fused CPU path for ncps' LTC: the same mathematics, without thousands of tiny operations.

ncps runs every ODE unfold of every step as a dozen small tensor operations over dense
``(B, units, units)`` matrices multiplied by a 0/1 wiring mask. Here the whole sequence, sensory
synapses and unfolds, runs in one C++ call forward and one backward (``csrc/ltc_unfold.cpp``),
visiting only the kept synapses (masked terms are exact zeros in ncps, so nothing is dropped), with
the batch innermost so the exponentials vectorise.

The kernel is built by :mod:`neurocomp.native`; where it cannot be, or on CUDA, ncps runs as
before. The path taken is recorded in the run record.
"""

from __future__ import annotations

from typing import Optional

import torch

from . import native


KERNEL = "ltc_unfold"


class _FusedLtc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, s_w, s_mu, s_sigma, s_erev, w, mu, sigma, erev, cm_t, gleak, vleak, synapses, unfolds, eps):
        outputs, *saved = native.load(KERNEL).forward(x, h0, s_w, s_mu, s_sigma, s_erev, w, mu, sigma, erev, cm_t, gleak,
                                                  vleak, *synapses, unfolds, eps)
        ctx.save_for_backward(x, *saved, s_w, s_mu, s_sigma, s_erev, w, mu, sigma, erev, cm_t, gleak, vleak, *synapses)
        ctx.unfolds, ctx.eps = unfolds, eps
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs):
        grads = native.load(KERNEL).backward(grad_outputs.contiguous(), *ctx.saved_tensors, ctx.unfolds, ctx.eps)
        return (*grads, None, None, None)


def ltc_sequence(cell, x: torch.Tensor, h0: Optional[torch.Tensor] = None) -> torch.Tensor:
    """ncps ``LTCCell`` over a time-major sequence ``(T, B, inputs) -> (T, B, motor outputs)``.

    Equal to calling ``cell`` step by step with elapsed time 1 (ncps' default), up to float
    rounding order.
    """
    p = cell._params
    positive = cell.make_positive_fn
    units = cell.state_size
    x = cell._map_inputs(x)
    # Masks are 0/1: the kernel visits the kept synapses; multiplying keeps ncps' gradient path.
    sensory_mask, mask = p["sensory_sparsity_mask"], p["sparsity_mask"]
    synapses = (*sensory_mask.nonzero(as_tuple=True), *mask.nonzero(as_tuple=True))
    h0 = x.new_zeros(x.shape[1], units) if h0 is None else h0
    states = _FusedLtc.apply(
        x.contiguous(), h0,
        positive(p["sensory_w"]) * sensory_mask, p["sensory_mu"], p["sensory_sigma"], p["sensory_erev"],
        positive(p["w"]) * mask, p["mu"], p["sigma"], p["erev"],
        positive(p["cm"]) * cell._ode_unfolds,  # cm / (elapsed_time / unfolds), elapsed_time = 1
        positive(p["gleak"]), p["vleak"], synapses, cell._ode_unfolds, float(cell._epsilon),
    )
    outputs = states[..., : cell.motor_size]
    if cell._output_mapping in ("affine", "linear"):
        outputs = outputs * p["output_w"]
    if cell._output_mapping == "affine":
        outputs = outputs + p["output_b"]
    return outputs
