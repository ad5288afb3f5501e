// Leaky integrate-and-fire over time (lif.h: snnTorch's Leaky, reset_delay=True), forward and
// backward in one pass each instead of a dozen tensor operations per step.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <vector>
#include "lif.h"

// current: (T, N). mode: 0 subtract, 1 zero, 2 none. Returns spikes and membranes, both (T, N).
std::vector<torch::Tensor> lif_forward(torch::Tensor current, double beta, double threshold, int64_t mode) {
  const int64_t T = current.size(0), N = current.size(1);
  auto spikes = torch::empty_like(current), membranes = torch::empty_like(current);
  AT_DISPATCH_FLOATING_TYPES(current.scalar_type(), "lif_forward", [&] {
    const scalar_t* in = current.data_ptr<scalar_t>();
    scalar_t *spk = spikes.data_ptr<scalar_t>(), *mem = membranes.data_ptr<scalar_t>();
    const lif::Neurons<scalar_t> neurons{scalar_t(beta), scalar_t(threshold), scalar_t(0), mode};
    at::parallel_for(0, N, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t t = 0; t < T; ++t) {
        const scalar_t* previous = t ? mem + (t - 1) * N : nullptr;
        for (int64_t n = begin; n < end; ++n) {
          mem[t * N + n] = neurons.step(previous ? previous[n] : scalar_t(0), in[t * N + n]);
          spk[t * N + n] = neurons.spike(mem[t * N + n]);
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
    const lif::Neurons<scalar_t> neurons{scalar_t(beta), scalar_t(threshold), scalar_t(slope), mode};
    at::parallel_for(0, N, 4096, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> carry(end - begin, scalar_t(0));
      for (int64_t t = T - 1; t >= 0; --t) {
        // At t = 0 the carry is never read again, so any membranes will do for its decay.
        const scalar_t* before = t ? mem + (t - 1) * N : mem;
        for (int64_t n = begin; n < end; ++n) {
          const scalar_t total = gm[t * N + n] + gs[t * N + n] / neurons.surrogate_denominator(mem[t * N + n]) +
                                 carry[n - begin];
          gi[t * N + n] = total;
          carry[n - begin] = total * neurons.decay(before[n]);
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
