// The leaky integrate-and-fire neuron of snnTorch's Leaky (reset_delay=True) and its fast-sigmoid
// surrogate gradient: the one place the C++ kernels write these equations (lif.cpp and
// conv_pool_lif.cpp include it; kernels/lif.py checks a module computes exactly this before
// either kernel may run it).
//   reset[t] = H(mem[t-1] - thr)                                   (no gradient, as in snnTorch)
//   mem[t]   = beta * mem[t-1] + I[t] - reset[t] * thr              subtract
//              beta * (1 - reset[t]) * mem[t-1] + I[t]              zero
//              beta * mem[t-1] + I[t]                               none
//   spk[t]   = H(mem[t] - thr),  d spk / d mem = 1 / (slope * |mem - thr| + 1)^2   (fast sigmoid)
#pragma once
#include <cstdint>

namespace lif {

template <typename scalar_t>
struct Neurons {
  scalar_t beta, thr, slope;
  int64_t mode;  // 0 subtract, 1 zero, 2 none

  scalar_t spike(scalar_t mem) const { return mem - thr > 0 ? scalar_t(1) : scalar_t(0); }

  // mem[t] from mem[t-1] and I[t]. Branch-free over the modes, so loops over it vectorise:
  // (a, r) = (beta, 1) subtract, (beta * (1 - reset), 0) zero, (beta, 0) none.
  scalar_t step(scalar_t before, scalar_t current) const {
    const scalar_t reset = spike(before);
    const scalar_t subtract = mode == 0 ? scalar_t(1) : scalar_t(0), zero = mode == 1 ? scalar_t(1) : scalar_t(0);
    return beta * (scalar_t(1) - zero * reset) * before + current - subtract * reset * thr;
  }

  // The surrogate's denominator (slope * |mem - thr| + 1)^2: d spk / d mem = 1 / this.
  scalar_t surrogate_denominator(scalar_t mem) const {
    const scalar_t d = mem - thr;
    const scalar_t sd = slope * (d < 0 ? -d : d) + scalar_t(1);
    return sd * sd;
  }

  // d mem[t] / d mem[t-1] along the gradient path: beta, or 0 through a zero reset that fired.
  scalar_t decay(scalar_t before) const { return mode == 1 && before - thr > 0 ? scalar_t(0) : beta; }
};

}  // namespace lif
