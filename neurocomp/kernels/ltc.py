"""Fused paths for ncps' LTC: the same mathematics, without thousands of tiny operations; the C++
kernel on the CPU, the Triton one (``triton_ltc.py``) on CUDA.

ncps runs every ODE unfold of every step as a dozen small tensor operations over dense
``(B, units, units)`` matrices multiplied by a 0/1 wiring mask. Here the whole sequence, sensory
synapses and unfolds, runs in one C++ call forward and one backward (``csrc/ltc_unfold.cpp``),
visiting only the kept synapses (masked terms are exact zeros in ncps, so nothing is dropped), with
the batch innermost so the exponentials vectorise.
"""

from __future__ import annotations

from typing import Optional

import torch
from ncps.torch import LTC
from ncps.torch.ltc_cell import LTCCell

from . import ncps_internals as ncps
from . import build
from .policy import Decision, decide

KERNEL = "ltc_unfold"


class _FusedLtc(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, s_w, s_mu, s_sigma, s_erev, w, mu, sigma, erev, cm_t, gleak, vleak, synapses, unfolds, eps):
        outputs, *saved = build.load(KERNEL).forward([x, h0, s_w, s_mu, s_sigma, s_erev, w, mu, sigma, erev, cm_t, gleak,
                                                      vleak, *synapses], unfolds, eps)
        ctx.save_for_backward(x, *saved, s_w, s_mu, s_sigma, s_erev, w, mu, sigma, erev, cm_t, gleak, vleak, *synapses)
        ctx.unfolds, ctx.eps = unfolds, eps
        return outputs

    @staticmethod
    def backward(ctx, grad_outputs):
        grads = build.load(KERNEL).backward([grad_outputs.contiguous(), *ctx.saved_tensors], ctx.unfolds, ctx.eps)
        return (*grads, None, None, None)


def mismatch(ltc: torch.nn.Module) -> Optional[str]:
    """How ``ltc`` differs from what the kernel computes (ncps ``LTC``, no mixed memory), or None."""
    if type(ltc) is not LTC or type(ltc.rnn_cell) is not LTCCell:
        return f"{type(ltc).__name__} is not ncps' LTC"
    if ltc.use_mixed:
        return "mixed memory (an LSTM beside the cell) is on"
    return None


def plan(ltc: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> Decision:
    """Whether a kernel computes the ncps ``LTC`` module ``ltc`` on tensors of ``device`` and ``dtype``:
    the C++ one on the CPU, the Triton one on CUDA."""
    return decide("triton_ltc" if device.type == "cuda" else KERNEL, device, dtype, lambda: mismatch(ltc))


def ltc_sequence(cell: LTCCell, x: torch.Tensor, *, triton: Optional[bool] = None) -> torch.Tensor:
    """ncps ``LTCCell`` over a time-major sequence ``(T, B, inputs) -> (T, B, motor outputs)``, from
    a zero state with elapsed time 1 (ncps' default); equal to ncps up to float rounding order.
    ``triton``: run the Triton kernel (default: where ``x`` is on CUDA; the tests run it on the CPU
    under Triton's interpreter)."""
    p = ncps.ltc_parameters(cell)
    positive = cell.make_positive_fn
    unfolds = ncps.ltc_unfolds(cell)
    x = ncps.ltc_map_inputs(cell, x)
    # Masks are 0/1: the kernel visits the kept synapses; multiplying keeps ncps' gradient path.
    sensory_mask, mask = p["sensory_sparsity_mask"], p["sparsity_mask"]
    h0 = x.new_zeros(x.shape[1], cell.state_size)
    sensory = (positive(p["sensory_w"]) * sensory_mask, p["sensory_mu"], p["sensory_sigma"], p["sensory_erev"])
    recurrent = (positive(p["w"]) * mask, p["mu"], p["sigma"], p["erev"],
                 positive(p["cm"]) * unfolds,  # cm / (elapsed_time / unfolds), elapsed_time = 1
                 positive(p["gleak"]), p["vleak"])
    if x.is_cuda if triton is None else triton:
        from . import triton_ltc  # CUDA: imported only there

        states = triton_ltc.unfolds(*triton_ltc.sensory(x, *sensory), h0, *recurrent, unfolds, ncps.ltc_epsilon(cell))
    else:
        synapses = (*sensory_mask.nonzero(as_tuple=True), *mask.nonzero(as_tuple=True))
        states = _FusedLtc.apply(x.contiguous(), h0, *sensory, *recurrent, synapses, unfolds, ncps.ltc_epsilon(cell))
    outputs = states[..., : cell.motor_size]
    if ncps.ltc_output_mapping(cell) in ("affine", "linear"):
        outputs = outputs * p["output_w"]
    if ncps.ltc_output_mapping(cell) == "affine":
        outputs = outputs + p["output_b"]
    return outputs
