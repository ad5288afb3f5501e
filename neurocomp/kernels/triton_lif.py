"""snnTorch's ``Leaky`` over all time steps on the GPU, in Triton: each program walks a block of
neurons through the T steps forward (and back), where snnTorch launches a dozen kernels per step.

The equations are those of ``csrc/lif.h`` (reset delayed, subtract / zero / none, fast-sigmoid
surrogate); :mod:`.lif` decides when a module computes exactly them. The seam selects this kernel
for CUDA tensors. Its tests run it on the CPU under ``TRITON_INTERPRET=1`` (Triton's interpreter
executes the kernels with NumPy), against snnTorch's own autograd in fp64. The step count is a
compile-time constant: a model has one T, and Triton 3.6's interpreter cannot loop over a runtime one.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

KERNEL = "triton_lif"
BLOCK = 256


@triton.jit
def _forward(current, spikes, membranes, count, beta, threshold, mode, steps: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < count
    mem = tl.zeros([BLOCK], dtype=current.dtype.element_ty)
    subtract = (mode == 0).to(mem.dtype)
    zero = (mode == 1).to(mem.dtype)
    for t in range(steps):
        drive = tl.load(current + t * count + offsets, mask=inside, other=0.0)
        reset = (mem - threshold > 0).to(mem.dtype)
        mem = beta * (1.0 - zero * reset) * mem + drive - subtract * reset * threshold
        tl.store(membranes + t * count + offsets, mem, mask=inside)
        tl.store(spikes + t * count + offsets, (mem - threshold > 0).to(mem.dtype), mask=inside)


@triton.jit
def _backward(grad_spikes, grad_membranes, membranes, grad_current, count, beta, threshold, slope, mode,
              steps: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < count
    carry = tl.zeros([BLOCK], dtype=membranes.dtype.element_ty)
    for k in range(steps):
        t = steps - 1 - k
        mem = tl.load(membranes + t * count + offsets, mask=inside, other=0.0)
        distance = tl.abs(mem - threshold) * slope + 1.0
        total = (tl.load(grad_membranes + t * count + offsets, mask=inside, other=0.0)
                 + tl.load(grad_spikes + t * count + offsets, mask=inside, other=0.0) / (distance * distance) + carry)
        tl.store(grad_current + t * count + offsets, total, mask=inside)
        # d mem[t] / d mem[t-1]: beta, or 0 through a zero reset that fired (t = 0: never read again)
        before = tl.load(membranes + (t - 1) * count + offsets, mask=inside & (t > 0), other=0.0)
        carry = total * tl.where((mode == 1) & (before - threshold > 0), 0.0, beta)


def forward(current: torch.Tensor, beta: float, threshold: float, mode: int) -> list[torch.Tensor]:
    """Spikes and membranes ``(T, N)`` of LIF neurons driven by ``current`` ``(T, N)`` (contiguous)
    from a zero state: the C++ ``lif`` kernel's interface, so :mod:`.lif` runs either."""
    steps, count = current.shape
    spikes, membranes = torch.empty_like(current), torch.empty_like(current)
    _forward[(triton.cdiv(count, BLOCK),)](current, spikes, membranes, count, beta, threshold, mode, steps=steps,
                                          BLOCK=BLOCK)
    return [spikes, membranes]


def backward(grad_spikes: torch.Tensor, grad_membranes: torch.Tensor, membranes: torch.Tensor, beta: float,
             threshold: float, slope: float, mode: int) -> torch.Tensor:
    """The gradient ``(T, N)`` w.r.t. the input current, from those of the spikes and membranes."""
    steps, count = membranes.shape
    grad = torch.empty_like(membranes)
    _backward[(triton.cdiv(count, BLOCK),)](grad_spikes, grad_membranes, membranes, grad, count, beta, threshold, slope,
                                            mode, steps=steps, BLOCK=BLOCK)
    return grad
