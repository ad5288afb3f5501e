// The first block of a spiking conv network, conv -> max-pool -> LIF (snnTorch Leaky), over all
// time steps in one call each way, driven by the input events.
//
// The input is the encoder's spikes (or any values): the convolution adds each non-zero
// input value times its weights to the outputs it reaches, so its cost follows the spikes, and the
// conv output of a step never leaves the cache: it is max-pooled at once (first maximum of each
// window, as torch does) and the pooled current drives the LIF neurons, which step through time:
//   reset[t] = H(mem[t-1] - thr)      mem[t] = beta * mem[t-1] + I[t] - reset[t] * thr   (subtract;
//   zero: beta * (1 - reset[t]) * mem[t-1] + I[t]; none: beta * mem[t-1] + I[t])
//   spk[t] = H(mem[t] - thr),  d spk / d mem = 1 / (slope * |mem - thr| + 1)^2   (fast sigmoid)
// Backward: the LIF gradient flows to the argmax of each pooling window, and the weight gradient
// is again a sum over the input events. No gradient w.r.t. the input: it is the encoder's output.
// Channels are the innermost index, so the runs of outputs and taps below are contiguous.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

constexpr int64_t CHUNK = 16;  // samples per work item; gradient sums are kept per chunk

struct Shape {
  int64_t T, B, Cin, H, W, Cout, K, OH, OW, pool, PH, PW;
  int64_t sT, sB, sC, sY, sX;  // strides of the input (T, B, Cin, H, W): any memory layout
  Shape(const torch::Tensor& x, const torch::Tensor& weight, int64_t pool_)
      : T(x.size(0)), B(x.size(1)), Cin(x.size(2)), H(x.size(3)), W(x.size(4)), Cout(weight.size(0)),
        K(weight.size(2)), OH(H - K + 1), OW(W - K + 1), pool(pool_), PH(OH / pool_), PW(OW / pool_),
        sT(x.stride(0)), sB(x.stride(1)), sC(x.stride(2)),
        sY(x.stride(3)), sX(x.stride(4)) {}
  int64_t pooled() const { return PH * PW * Cout; }
  int64_t image(int64_t t, int64_t b) const { return t * sT + b * sB; }
};

// weight (Cout, Cin, K, K) -> (Cin, K, K reversed, Cout). With kx reversed,
// the outputs one input reaches along a kernel row and their taps are both contiguous runs.
template <typename scalar_t>
std::vector<scalar_t> taps_last(const torch::Tensor& weight, const Shape& s) {
  std::vector<scalar_t> taps(s.Cin * s.K * s.K * s.Cout, scalar_t(0));
  auto w = weight.contiguous();
  const scalar_t* src = w.data_ptr<scalar_t>();
  for (int64_t c = 0; c < s.Cout; ++c)
    for (int64_t ci = 0; ci < s.Cin; ++ci)
      for (int64_t ky = 0; ky < s.K; ++ky)
        for (int64_t kx = 0; kx < s.K; ++kx)
          taps[((ci * s.K + ky) * s.K + (s.K - 1 - kx)) * s.Cout + c] = src[((c * s.Cin + ci) * s.K + ky) * s.K + kx];
  return taps;
}

// Visits every non-zero input value v of one image (Cin, H, W) (strides from Shape), once per kernel row it reaches:
// visit(v, first conv output (offset into (OH, OW, Cout)), first reversed tap (offset into taps),
// length of the run, in values).
template <typename scalar_t, typename F>
inline void for_each_event(const scalar_t* image, const Shape& s, F&& visit) {
  for (int64_t ci = 0; ci < s.Cin; ++ci)
    for (int64_t iy = 0; iy < s.H; ++iy)
      for (int64_t ix = 0; ix < s.W; ++ix) {
        const scalar_t v = image[ci * s.sC + iy * s.sY + ix * s.sX];
        if (v == scalar_t(0)) continue;
        const int64_t kx_first = std::max<int64_t>(0, ix - s.OW + 1), kx_last = std::min(s.K - 1, ix);
        for (int64_t ky = std::max<int64_t>(0, iy - s.OH + 1); ky <= std::min(s.K - 1, iy); ++ky)
          visit(v, ((iy - ky) * s.OW + (ix - kx_last)) * s.Cout, ((ci * s.K + ky) * s.K + (s.K - 1 - kx_last)) * s.Cout,
                (kx_last - kx_first + 1) * s.Cout);
      }
}

// m, at: the running maximum of n channels and its window index; o: the next window element, d.
// Strict comparison: ties keep the first maximum, as torch's max-pool does.
template <typename scalar_t>
inline void keep_larger(const scalar_t* __restrict o, scalar_t* __restrict m, scalar_t* __restrict at, scalar_t d,
                        int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) {
    const bool larger = o[c] > m[c];
    m[c] = larger ? o[c] : m[c];
    at[c] = larger ? d : at[c];
  }
}

template <typename scalar_t>
std::vector<torch::Tensor> forward_impl(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                        int64_t pool, double beta, double threshold, int64_t mode) {
  const Shape s(x, weight, pool);
  const auto taps = taps_last<scalar_t>(weight, s);
  std::vector<scalar_t> bias_row(s.OW * s.Cout);  // one conv output row holding only the bias
  for (int64_t o = 0; o < s.OW; ++o)
    for (int64_t c = 0; c < s.Cout; ++c) bias_row[o * s.Cout + c] = bias.data_ptr<scalar_t>()[c];
  auto options = x.options();
  auto spikes = torch::empty({s.T, s.B, s.PH, s.PW, s.Cout}, options);
  auto membranes = torch::empty({s.T, s.B, s.PH, s.PW, s.Cout}, options);
  auto argmax = torch::empty({s.T, s.B, s.PH, s.PW, s.Cout}, options.dtype(torch::kUInt8));
  const scalar_t* xs = x.data_ptr<scalar_t>();
  scalar_t *spk = spikes.data_ptr<scalar_t>(), *mem_out = membranes.data_ptr<scalar_t>();
  uint8_t* arg = argmax.data_ptr<uint8_t>();
  const scalar_t b_ = beta, thr = threshold;
  const int64_t N = s.PH * s.PW;
  at::parallel_for(0, (s.B + CHUNK - 1) / CHUNK, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    std::vector<scalar_t> out(s.OH * s.OW * s.Cout), current(s.pooled()), mem(s.pooled()), best(s.pooled());
    for (int64_t b = chunk_begin * CHUNK; b < std::min(s.B, chunk_end * CHUNK); ++b) {
      std::fill(mem.begin(), mem.end(), scalar_t(0));
      for (int64_t t = 0; t < s.T; ++t) {
        for (int64_t oy = 0; oy < s.OH; ++oy) std::copy(bias_row.begin(), bias_row.end(), out.begin() + oy * s.OW * s.Cout);
        for_each_event(xs + s.image(t, b), s, [&](scalar_t v, int64_t at, int64_t tap, int64_t run) {
          scalar_t* o = &out[at];
          const scalar_t* w = &taps[tap];
#pragma omp simd
          for (int64_t c = 0; c < run; ++c) o[c] += v * w[c];
        });
        for (int64_t py = 0; py < s.PH; ++py)
          for (int64_t px = 0; px < s.PW; ++px) {
            scalar_t* m = &current[(py * s.PW + px) * s.Cout];
            scalar_t* idx = &best[(py * s.PW + px) * s.Cout];  // window index of the maximum
            const scalar_t* first = &out[(py * pool * s.OW + px * pool) * s.Cout];
#pragma omp simd
            for (int64_t c = 0; c < s.Cout; ++c) {
              m[c] = first[c];
              idx[c] = 0;
            }
            for (int64_t d = 1; d < pool * pool; ++d)
              keep_larger(&out[((py * pool + d / pool) * s.OW + px * pool + d % pool) * s.Cout], m, idx, scalar_t(d),
                          s.Cout);
          }
        // mem <- a * mem + current - r * reset * thr, with (a, r) = (beta, 1) subtract, (beta * (1 - reset),
        // 0) zero, (beta, 0) none: one branch-free loop over every neuron.
        const scalar_t subtract = mode == 0 ? 1 : 0, zero = mode == 1 ? 1 : 0;
#pragma omp simd
        for (int64_t at = 0; at < s.pooled(); ++at) {
          const scalar_t before = mem[at];
          const scalar_t reset = before - thr > 0 ? scalar_t(1) : scalar_t(0);
          mem[at] = b_ * (scalar_t(1) - zero * reset) * before + current[at] - subtract * reset * thr;
        }
        const int64_t row = (t * s.B + b) * N * s.Cout;
        scalar_t* __restrict mem_row = mem_out + row;
        scalar_t* __restrict spk_row = spk + row;
        uint8_t* __restrict arg_row = arg + row;
        const scalar_t* __restrict m = mem.data();
        const scalar_t* __restrict index = best.data();
#pragma omp simd
        for (int64_t n = 0; n < s.pooled(); ++n) {
          mem_row[n] = m[n];
          spk_row[n] = m[n] - thr > 0 ? scalar_t(1) : scalar_t(0);
        }
        for (int64_t n = 0; n < s.pooled(); ++n) arg_row[n] = static_cast<uint8_t>(index[n]);
      }
    }
  });
  return {spikes, membranes, argmax};
}

template <typename scalar_t>
std::vector<torch::Tensor> backward_impl(const torch::Tensor& grad_spikes, const torch::Tensor& x,
                                         const torch::Tensor& weight, const torch::Tensor& membranes,
                                         const torch::Tensor& argmax, int64_t pool, double beta, double threshold,
                                         double slope, int64_t mode) {
  const Shape s(x, weight, pool);
  const int64_t chunks = (s.B + CHUNK - 1) / CHUNK, taps_size = s.Cin * s.K * s.K * s.Cout;
  auto per_chunk = torch::zeros({chunks, taps_size + s.Cout}, x.options());  // weight taps, then bias
  const scalar_t *gs = grad_spikes.data_ptr<scalar_t>(), *mem = membranes.data_ptr<scalar_t>(),
                 *xs = x.data_ptr<scalar_t>();
  const uint8_t* arg = argmax.data_ptr<uint8_t>();
  const scalar_t b_ = beta, thr = threshold, k = slope;
  const int64_t N = s.PH * s.PW, neurons = N * s.Cout;
  at::parallel_for(0, chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    std::vector<scalar_t> carry(neurons), g_current(neurons), g_out(s.OH * s.OW * s.Cout, scalar_t(0));
    std::vector<int64_t> touched(neurons);  // where g_out was written, to clear it again
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      scalar_t* g_taps = per_chunk.data_ptr<scalar_t>() + chunk * (taps_size + s.Cout);
      scalar_t* g_bias = g_taps + taps_size;
      for (int64_t b = chunk * CHUNK; b < std::min(s.B, (chunk + 1) * CHUNK); ++b) {
        std::fill(carry.begin(), carry.end(), scalar_t(0));
        for (int64_t t = s.T - 1; t >= 0; --t) {
          const int64_t row = (t * s.B + b) * neurons, previous = ((t - 1) * s.B + b) * neurons;
#pragma omp simd
          for (int64_t n = 0; n < neurons; ++n) {
            const scalar_t d = mem[row + n] - thr;
            const scalar_t sd = k * (d < 0 ? -d : d) + scalar_t(1);
            g_current[n] = gs[row + n] / (sd * sd) + carry[n];
            carry[n] = g_current[n] * b_;
          }
          if (mode == 1 && t > 0)  // zero reset: no memory through a step that followed a spike
            for (int64_t n = 0; n < neurons; ++n)
              if (mem[previous + n] - thr > 0) carry[n] = scalar_t(0);
          // The pooled current's gradient goes to the argmax of its window.
          for (int64_t n = 0; n < N; ++n) {
            const int64_t py = n / s.PW, px = n % s.PW;
            for (int64_t c = 0; c < s.Cout; ++c) {
              const int64_t d = arg[row + n * s.Cout + c];
              const int64_t at = ((py * pool + d / pool) * s.OW + px * pool + d % pool) * s.Cout + c;
              g_out[at] = g_current[n * s.Cout + c];
              touched[n * s.Cout + c] = at;
              g_bias[c] += g_current[n * s.Cout + c];
            }
          }
          for_each_event(xs + s.image(t, b), s, [&](scalar_t v, int64_t at, int64_t tap, int64_t run) {
            const scalar_t* g = &g_out[at];
            scalar_t* gw = g_taps + tap;
#pragma omp simd
            for (int64_t c = 0; c < run; ++c) gw[c] += v * g[c];
          });
          for (int64_t n = 0; n < neurons; ++n) g_out[touched[n]] = scalar_t(0);
        }
      }
    }
  });
  auto sums = per_chunk.sum(0);  // chunks in order: the same result for any number of threads
  auto g_weight = sums.narrow(0, 0, taps_size).view({s.Cin, s.K, s.K, s.Cout}).narrow(3, 0, s.Cout).flip({2})
                      .permute({3, 0, 1, 2}).contiguous();
  return {g_weight, sums.narrow(0, taps_size, s.Cout).clone()};
}

}  // namespace

// x: (T, B, Cin, H, W), any strides; weight (Cout, Cin, K, K), stride 1, no padding; bias (Cout);
// pool: max-pool kernel = stride (1: none). Returns spikes, membranes and the argmax of each pooling
// window, each (T, B, H', W', Cout) (channels last).
std::vector<torch::Tensor> forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias, int64_t pool,
                                   double beta, double threshold, int64_t mode) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv_pool_lif_forward", [&] {
    result = forward_impl<scalar_t>(x, weight, bias, pool, beta, threshold, mode);
  });
  return result;
}

// grad_spikes: (T, B, H', W', Cout). Returns the gradients of weight and bias.
std::vector<torch::Tensor> backward(torch::Tensor grad_spikes, torch::Tensor x, torch::Tensor weight,
                                    torch::Tensor membranes, torch::Tensor argmax, int64_t pool, double beta,
                                    double threshold, double slope, int64_t mode) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv_pool_lif_backward", [&] {
    result = backward_impl<scalar_t>(grad_spikes, x, weight, membranes, argmax, pool, beta, threshold, slope, mode);
  });
  return result;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "conv -> max-pool -> LIF over time, event driven");
  m.def("backward", &backward, "gradient of conv -> max-pool -> LIF w.r.t. the conv weights");
}
