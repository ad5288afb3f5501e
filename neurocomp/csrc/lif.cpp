// Leaky integrate-and-fire over time, as snnTorch's Leaky (reset_delay=True) computes it, forward
// and backward in one pass each instead of a dozen tensor operations per step.
//   reset[t] = H(mem[t-1] - thr)                       (no gradient, as in snnTorch)
//   mem[t]   = beta * mem[t-1] + I[t] - reset[t] * thr  (subtract; zero: beta * (1 - reset) * mem[t-1] + I[t];
//                                                        none: beta * mem[t-1] + I[t])
//   spk[t]   = H(mem[t] - thr);  d spk / d mem = 1 / (slope * |mem - thr| + 1)^2  (fast sigmoid surrogate)
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <vector>

// current: (T, N). mode: 0 subtract, 1 zero, 2 none. Returns spikes and membranes, both (T, N).
std::vector<torch::Tensor> lif_forward(torch::Tensor current, double beta, double threshold, int64_t mode) {
  const int64_t T = current.size(0), N = current.size(1);
  auto spikes = torch::empty_like(current), membranes = torch::empty_like(current);
  AT_DISPATCH_FLOATING_TYPES(current.scalar_type(), "lif_forward", [&] {
    const scalar_t* in = current.data_ptr<scalar_t>();
    scalar_t *spk = spikes.data_ptr<scalar_t>(), *mem = membranes.data_ptr<scalar_t>();
    const scalar_t b = beta, thr = threshold;
    at::parallel_for(0, N, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t t = 0; t < T; ++t) {
        const scalar_t* previous = t ? mem + (t - 1) * N : nullptr;
        for (int64_t n = begin; n < end; ++n) {
          const scalar_t before = previous ? previous[n] : scalar_t(0);
          const scalar_t reset = before - thr > 0 ? scalar_t(1) : scalar_t(0);
          scalar_t value;
          if (mode == 0) value = b * before + in[t * N + n] - reset * thr;
          else if (mode == 1) value = b * (scalar_t(1) - reset) * before + in[t * N + n];
          else value = b * before + in[t * N + n];
          mem[t * N + n] = value;
          spk[t * N + n] = value - thr > 0 ? scalar_t(1) : scalar_t(0);
        }
      }
    });
  });
  return {spikes, membranes};
}

// Gradient w.r.t. the input current from the gradients of spikes and membranes.
torch::Tensor lif_backward(torch::Tensor grad_spikes, torch::Tensor grad_membranes, torch::Tensor membranes,
                           double beta, double threshold, double slope, int64_t mode) {
  const int64_t T = membranes.size(0), N = membranes.size(1);
  auto grad_current = torch::empty_like(membranes);
  AT_DISPATCH_FLOATING_TYPES(membranes.scalar_type(), "lif_backward", [&] {
    const scalar_t *gs = grad_spikes.data_ptr<scalar_t>(), *gm = grad_membranes.data_ptr<scalar_t>(),
                   *mem = membranes.data_ptr<scalar_t>();
    scalar_t* gi = grad_current.data_ptr<scalar_t>();
    const scalar_t b = beta, thr = threshold, k = slope;
    at::parallel_for(0, N, 4096, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> carry(end - begin, scalar_t(0));
      for (int64_t t = T - 1; t >= 0; --t) {
        for (int64_t n = begin; n < end; ++n) {
          const scalar_t x = mem[t * N + n] - thr;
          const scalar_t surrogate = scalar_t(1) / ((k * std::abs(x) + scalar_t(1)) * (k * std::abs(x) + scalar_t(1)));
          const scalar_t total = gm[t * N + n] + gs[t * N + n] * surrogate + carry[n - begin];
          gi[t * N + n] = total;
          scalar_t decay = b;
          if (mode == 1 && t > 0) decay *= mem[(t - 1) * N + n] - thr > 0 ? scalar_t(0) : scalar_t(1);
          carry[n - begin] = total * decay;
        }
      }
    });
  });
  return grad_current;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &lif_forward, "LIF over time");
  m.def("backward", &lif_backward, "gradient of the LIF over time");
}
