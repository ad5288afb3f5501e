"""ncps' LTC on the GPU, in Triton: every ODE unfold of every step of a sequence in one launch each
way, where ncps launches a dozen small kernels per unfold.

The sensory synapses depend on the input alone, so all steps' sensory sums are computed at once
with torch (a few large operations; autograd differentiates them). The recurrent unfolds (the
equations of ``csrc/ltc_unfold.cpp``) run in :func:`_unfold_forward`: one program per sample keeps
the state in registers and walks the T x K unfolds over the dense (U, U) synapse matrices. Dropped
synapses have weight exactly zero (ncps multiplies by the 0/1 mask), so their terms vanish as they
do in ncps; on a GPU the dense tile costs nothing next to gathering the kept ones. The backward
pass recomputes the gates from the saved states and leaves per-sample parameter sums, added in
sample order by torch (deterministic, no atomics). Its tests run under ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_math import sigmoid, square_tile

KERNEL = "triton_ltc"
# Warps per program (one sample each): small tiles want few; benchmarks/triton_warps.py measures it.
NUM_WARPS = 4


@triton.jit
def _unfold_forward(snum, sden, h0, w, mu, sigma, erev, cm_t, gleak, vleak, states, batch, units, eps,
                    steps: tl.constexpr, unfolds: tl.constexpr, UP: tl.constexpr):
    b = tl.program_id(0)
    w_, mu_, sigma_ = square_tile(w, units, UP), square_tile(mu, units, UP), square_tile(sigma, units, UP)
    w_erev = w_ * square_tile(erev, units, UP)
    j = tl.arange(0, UP)
    keep = j < units
    cm = tl.load(cm_t + j, mask=keep, other=0.0)
    gl = tl.load(gleak + j, mask=keep, other=0.0)
    leak = gl * tl.load(vleak + j, mask=keep, other=0.0)
    v = tl.load(h0 + b * units + j, mask=keep, other=0.0)
    tl.store(states + b * units + j, v, mask=keep)
    for t in range(steps):
        s_num = tl.load(snum + (t * batch + b) * units + j, mask=keep, other=0.0)
        s_den = tl.load(sden + (t * batch + b) * units + j, mask=keep, other=0.0)
        for k in range(unfolds):
            gate = sigmoid(sigma_ * (v[:, None] - mu_))
            num = cm * v + leak + tl.sum(w_erev * gate, axis=0) + s_num
            den = cm + gl + tl.sum(w_ * gate, axis=0) + s_den
            v = num / (den + eps)  # padded neurons: 0 / eps
            tl.store(states + ((t * unfolds + k + 1) * batch + b) * units + j, v, mask=keep)


@triton.jit
def _unfold_backward(grad_outputs, states, sden, w, mu, sigma, erev, cm_t, gleak, vleak, grad_snum, grad_sden, grad_h0,
                     partial, batch, units, eps, steps: tl.constexpr, unfolds: tl.constexpr, UP: tl.constexpr):
    b = tl.program_id(0)
    w_, mu_, sigma_ = square_tile(w, units, UP), square_tile(mu, units, UP), square_tile(sigma, units, UP)
    erev_ = square_tile(erev, units, UP)
    j = tl.arange(0, UP)
    keep = j < units
    cm = tl.load(cm_t + j, mask=keep, other=0.0)
    gl = tl.load(gleak + j, mask=keep, other=0.0)
    vl = tl.load(vleak + j, mask=keep, other=0.0)
    acc_w = tl.zeros([UP, UP], dtype=w_.dtype)
    acc_mu = tl.zeros([UP, UP], dtype=w_.dtype)
    acc_sigma = tl.zeros([UP, UP], dtype=w_.dtype)
    acc_erev = tl.zeros([UP, UP], dtype=w_.dtype)
    acc_cm = tl.zeros([UP], dtype=w_.dtype)
    acc_gl = tl.zeros([UP], dtype=w_.dtype)
    acc_vl = tl.zeros([UP], dtype=w_.dtype)
    gv = tl.zeros([UP], dtype=w_.dtype)  # the gradient of the state after the current unfold
    for tt in range(steps):
        t = steps - 1 - tt
        gv += tl.load(grad_outputs + (t * batch + b) * units + j, mask=keep, other=0.0)
        s_den = tl.load(sden + (t * batch + b) * units + j, mask=keep, other=0.0)
        g_num = tl.zeros([UP], dtype=w_.dtype)
        g_den = tl.zeros([UP], dtype=w_.dtype)
        for kk in range(unfolds):
            step = t * unfolds + unfolds - 1 - kk
            v = tl.load(states + (step * batch + b) * units + j, mask=keep, other=0.0)
            after = tl.load(states + ((step + 1) * batch + b) * units + j, mask=keep, other=0.0)
            gate = sigmoid(sigma_ * (v[:, None] - mu_))
            den = cm + gl + tl.sum(w_ * gate, axis=0) + s_den + eps
            d_num = gv / den
            d_den = -gv * after / den  # after = num / den
            acc_cm += d_num * v + d_den
            acc_gl += d_num * vl + d_den
            acc_vl += d_num * gl
            g_num += d_num
            g_den += d_den
            d_act = d_num[None, :] * erev_ + d_den[None, :]
            d_z = d_act * w_ * gate * (1.0 - gate)
            acc_erev += d_num[None, :] * w_ * gate
            acc_w += d_act * gate
            acc_sigma += d_z * (v[:, None] - mu_)
            acc_mu -= d_z * sigma_
            gv = d_num * cm + tl.sum(d_z * sigma_, axis=1)
        tl.store(grad_snum + (t * batch + b) * units + j, g_num, mask=keep)
        tl.store(grad_sden + (t * batch + b) * units + j, g_den, mask=keep)
    tl.store(grad_h0 + b * units + j, gv, mask=keep)
    row = partial + b * (4 * units * units + 3 * units)
    square = units * units
    src, dst = tl.arange(0, UP)[:, None], tl.arange(0, UP)[None, :]
    pair, paired = src * units + dst, (src < units) & (dst < units)
    tl.store(row + pair, acc_w, mask=paired)
    tl.store(row + square + pair, acc_mu, mask=paired)
    tl.store(row + 2 * square + pair, acc_sigma, mask=paired)
    tl.store(row + 3 * square + pair, acc_erev, mask=paired)
    tl.store(row + 4 * square + j, acc_cm, mask=keep)
    tl.store(row + 4 * square + units + j, acc_gl, mask=keep)
    tl.store(row + 4 * square + 2 * units + j, acc_vl, mask=keep)


class _Unfolds(torch.autograd.Function):
    @staticmethod
    def forward(ctx, snum, sden, h0, w, mu, sigma, erev, cm_t, gleak, vleak, unfolds, eps):
        steps, batch, units = snum.shape
        states = torch.empty(steps * unfolds + 1, batch, units, dtype=snum.dtype, device=snum.device)
        parameters = [p.contiguous() for p in (w, mu, sigma, erev, cm_t, gleak, vleak)]
        _unfold_forward[(batch,)](snum, sden, h0, *parameters, states, batch, units, eps, steps=steps, unfolds=unfolds,
                                  UP=triton.next_power_of_2(units), num_warps=NUM_WARPS)
        ctx.save_for_backward(sden, states, *parameters)
        ctx.unfolds, ctx.eps = unfolds, eps
        return states[unfolds::unfolds].clone()  # the state after each step's last unfold

    @staticmethod
    def backward(ctx, grad_outputs):
        sden, states, *parameters = ctx.saved_tensors
        steps, batch, units = sden.shape
        grad_snum, grad_sden = torch.empty_like(sden), torch.empty_like(sden)
        grad_h0 = sden.new_empty(batch, units)
        partial = sden.new_empty(batch, 4 * units * units + 3 * units)
        _unfold_backward[(batch,)](grad_outputs.contiguous(), states, sden, *parameters, grad_snum, grad_sden, grad_h0,
                                   partial, batch, units, ctx.eps, steps=steps, unfolds=ctx.unfolds,
                                   UP=triton.next_power_of_2(units), num_warps=NUM_WARPS)
        sums = partial.sum(0)
        square = units * units
        matrices = [sums[i * square:(i + 1) * square].view(units, units) for i in range(4)]
        vectors = sums[4 * square:].view(3, units)
        return (grad_snum, grad_sden, grad_h0, *matrices, *vectors, None, None)


def sensory(x: torch.Tensor, w: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, erev: torch.Tensor):
    """The sensory synapses' numerator and denominator sums ``(T, B, U)`` for inputs ``(T, B, I)``
    and (I, U) parameters (``w`` positive and masked), every step at once, as ncps writes them."""
    activation = w * torch.sigmoid(sigma * (x.unsqueeze(-1) - mu))
    return (activation * erev).sum(-2), activation.sum(-2)


def unfolds(snum: torch.Tensor, sden: torch.Tensor, h0: torch.Tensor, w, mu, sigma, erev, cm_t, gleak, vleak,
            count: int, eps: float) -> torch.Tensor:
    """The LTC state ``(T, B, U)`` after each step: ``count`` unfolds per step from ``h0`` ``(B, U)``,
    driven by the sensory sums ``(T, B, U)``; (U, U) recurrent parameters, (U,) cm_t, gleak, vleak."""
    return _Unfolds.apply(snum.contiguous(), sden.contiguous(), h0.contiguous(), w, mu, sigma, erev, cm_t, gleak, vleak,
                          count, eps)
