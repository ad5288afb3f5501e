"""What the Triton kernels share: activations written with ``tl.exp`` alone (Triton's interpreter,
which runs the kernels' tests on the CPU, has no tanh) and the masked load of a square tile."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def tanh(x):
    # Never overflows, and is exact to a unit in the last place of 1.
    e = tl.exp(-2.0 * tl.abs(x))
    return tl.where(x < 0, -1.0, 1.0) * (1.0 - e) / (1.0 + e)


@triton.jit
def square_tile(pointer, size, SIZE: tl.constexpr):
    """The row-major ``(size, size)`` matrix at ``pointer`` as a ``(SIZE, SIZE)`` tile, zero outside."""
    rows, columns = tl.arange(0, SIZE)[:, None], tl.arange(0, SIZE)[None, :]
    return tl.load(pointer + rows * size + columns, mask=(rows < size) & (columns < size), other=0.0)
