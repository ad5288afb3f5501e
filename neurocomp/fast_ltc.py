"""A fused CPU path for ncps' LTC: the same mathematics, without thousands of tiny operations.

ncps runs every ODE unfold of every step as a dozen small tensor operations over dense
``(B, units, units)`` matrices multiplied by a 0/1 wiring mask. Here the sensory synapses (which do
not depend on the state) are computed for the whole sequence at once over the kept synapses only,
and the recurrent unfolds run in one C++ call forward and one backward (``csrc/ltc_unfold.cpp``),
visiting only the kept synapses; masked terms are exact zeros in ncps, so nothing is dropped.

The extension is compiled on first use with ``torch.utils.cpp_extension`` for this CPU and cached.
Where it cannot be built (no compiler) or on CUDA, ncps runs as before; ``NEUROCOMP_NATIVE=0``
turns the fused path off. The path taken is recorded in the run record.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

SOURCE = Path(__file__).parent / "csrc" / "ltc_unfold.cpp"
BUILD_SECONDS: dict = {}


@functools.lru_cache(maxsize=None)
def native_module():
    """The compiled extension, or None (disabled, or no compiler: a warning says why, once)."""
    if os.environ.get("NEUROCOMP_NATIVE", "1") == "0":
        return None
    from torch.utils import cpp_extension

    started = time.perf_counter()
    try:
        module = cpp_extension.load(
            name="neurocomp_ltc_unfold",
            sources=[str(SOURCE)],
            extra_cflags=["-O3", "-march=native"],
            verbose=False,
        )
    except Exception as error:  # no compiler, no headers, an unsupported CPU: fall back, say so
        warnings.warn(f"fused LTC kernel unavailable, using ncps ({type(error).__name__}: {str(error)[:200]})", stacklevel=2)
        return None
    BUILD_SECONDS["ltc_unfold"] = time.perf_counter() - started
    return module


class _FusedUnfolds(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sensory_num, sensory_den, h0, cm_t, gleak, vleak, w, mu, sigma, erev, src, dst, unfolds, eps):
        native = native_module()
        states = native.forward(sensory_num, sensory_den, h0, cm_t, gleak, vleak, src, dst, w, mu, sigma, erev, unfolds, eps)
        ctx.save_for_backward(states, sensory_num, sensory_den, cm_t, gleak, vleak, w, mu, sigma, erev, src, dst)
        ctx.unfolds, ctx.eps = unfolds, eps
        steps = sensory_num.shape[0]
        return states[unfolds::unfolds].reshape(steps, *h0.shape)  # the state after each step

    @staticmethod
    def backward(ctx, grad_states):
        states, sensory_num, sensory_den, cm_t, gleak, vleak, w, mu, sigma, erev, src, dst = ctx.saved_tensors
        grads = native_module().backward(
            grad_states.contiguous(), states, sensory_num, sensory_den, cm_t, gleak, vleak, src, dst, w, mu, sigma,
            erev, ctx.unfolds, ctx.eps,
        )
        return (*grads, None, None, None, None)


def available(cell, x: torch.Tensor) -> bool:
    """Whether the fused path can run this ncps LTCCell on ``x`` (CPU, float, compiled)."""
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
