"""A fused CPU path for ncps' LTC: the same mathematics, without thousands of tiny operations.

ncps runs every ODE unfold of every step as a dozen small tensor operations over dense
``(B, units, units)`` matrices multiplied by a 0/1 wiring mask. Here the sensory synapses (which do
not depend on the state) are computed for the whole sequence at once over the kept synapses only,
and the recurrent unfolds run in one C++ call forward and one backward (``csrc/ltc_unfold.cpp``),
visiting only the kept synapses; masked terms are exact zeros in ncps, so nothing is dropped.

The kernel is built by :mod:`neurocomp.native`; where it cannot be, or on CUDA, ncps runs as
before. The path taken is recorded in the run record.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from . import native


def native_module():
    """The compiled LTC kernel, or None (then ncps runs)."""
    return native.load("ltc_unfold")


class _FusedUnfolds(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sensory_num, sensory_den, h0, cm_t, gleak, vleak, w, mu, sigma, erev, src, dst, unfolds, eps):
        native = native_module()
        states, gates = native.forward(sensory_num, sensory_den, h0, cm_t, gleak, vleak, src, dst, w, mu, sigma, erev,
                                       unfolds, eps)
        ctx.save_for_backward(states, gates, sensory_num, sensory_den, cm_t, gleak, vleak, w, mu, sigma, erev, src, dst)
        ctx.unfolds, ctx.eps = unfolds, eps
        steps = sensory_num.shape[0]
        return states[unfolds::unfolds].reshape(steps, *h0.shape)  # the state after each step

    @staticmethod
    def backward(ctx, grad_states):
        states, gates, sensory_num, sensory_den, cm_t, gleak, vleak, w, mu, sigma, erev, src, dst = ctx.saved_tensors
        grads = native_module().backward(
            grad_states.contiguous(), states, gates, sensory_num, sensory_den, cm_t, gleak, vleak, src, dst, w, mu, sigma,
            erev, ctx.unfolds, ctx.eps,
        )
        return (*grads, None, None, None, None)


def available(x: torch.Tensor) -> bool:
    """Whether the fused path can run on ``x`` (CPU, float32/64, kernel compiled)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and native_module() is not None


def ltc_sequence(cell, x: torch.Tensor, h0: Optional[torch.Tensor] = None) -> torch.Tensor:
    """ncps ``LTCCell`` over a time-major sequence ``(T, B, inputs) -> (T, B, motor outputs)``.

    Equal to calling ``cell`` step by step with elapsed time 1 (ncps' default), up to float
    rounding order.
    """
    p = cell._params
    positive = cell.make_positive_fn
    steps, batch, _ = x.shape
    units = cell.state_size
    x = cell._map_inputs(x)
    # Sensory synapses: all steps at once, kept synapses only.
    s_src, s_dst = p["sensory_sparsity_mask"].nonzero(as_tuple=True)
    s_mask = p["sensory_sparsity_mask"][s_src, s_dst]
    activation = positive(p["sensory_w"])[s_src, s_dst] * torch.sigmoid(
        p["sensory_sigma"][s_src, s_dst] * (x[..., s_src] - p["sensory_mu"][s_src, s_dst])
    ) * s_mask
    incidence = F.one_hot(s_dst, units).to(x.dtype)  # (synapses, units): sums into the targets
    sensory_den = activation @ incidence
    sensory_num = (activation * p["sensory_erev"][s_src, s_dst]) @ incidence
    # Recurrent synapses: gathered once, unfolded in C++.
    r_src, r_dst = p["sparsity_mask"].nonzero(as_tuple=True)
    w = positive(p["w"])[r_src, r_dst] * p["sparsity_mask"][r_src, r_dst]
    cm_t = positive(p["cm"]) * cell._ode_unfolds  # cm / (elapsed_time / unfolds), elapsed_time = 1
    h0 = x.new_zeros(batch, units) if h0 is None else h0
    states = _FusedUnfolds.apply(
        sensory_num.contiguous(), sensory_den.contiguous(), h0, cm_t, positive(p["gleak"]), p["vleak"], w,
        p["mu"][r_src, r_dst], p["sigma"][r_src, r_dst], p["erev"][r_src, r_dst], r_src, r_dst,
        cell._ode_unfolds, float(cell._epsilon),
    )
    outputs = states[..., : cell.motor_size]
    if cell._output_mapping in ("affine", "linear"):
        outputs = outputs * p["output_w"]
    if cell._output_mapping == "affine":
        outputs = outputs + p["output_b"]
    return outputs
