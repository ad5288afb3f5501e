// Blocks of a spiking conv network, [conv ->] max-pool -> LIF (snnTorch Leaky), over all time steps
// in one call each way. The entry points share the pooling and the neurons:
//  - conv_*: the first block, whose input is the encoder's spikes (or any values). The convolution
//    runs on the input events: each non-zero input adds its value times its weights to the outputs
//    it reaches, so its cost follows the spikes, and a step's conv output never leaves the cache.
//    Its weight gradient is again a sum over the events; the input (the encoder's output) gets none.
//  - pool_*: a block whose convolution ran elsewhere (oneDNN, channels last): pooling and neurons
//    read the conv output in place, and the backward pass writes the conv output's gradient once
//    (zeros but at each window's argmax) instead of a zero fill, a scatter and separate LIF passes.
//  - sparse_conv_backward: for such a block whose conv is plain (stride 1, no padding), the conv's
//    own weight, bias and input gradients from the argmax positions only (the others are zero).
// Pooling keeps the first maximum of each window, as torch does. The neurons:
//   reset[t] = H(mem[t-1] - thr)      mem[t] = beta * mem[t-1] + I[t] - reset[t] * thr   (subtract;
//   zero: beta * (1 - reset[t]) * mem[t-1] + I[t]; none: beta * mem[t-1] + I[t])
//   spk[t] = H(mem[t] - thr),  d spk / d mem = 1 / (slope * |mem - thr| + 1)^2   (fast sigmoid)
// Channels are the innermost index, so the runs of outputs and taps below are contiguous.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

constexpr int64_t CHUNK = 16;  // samples per work item; gradient sums are kept per chunk

struct Shape {
  int64_t T, B, Cin, H, W, C, K, OH, OW, pool, PH, PW;
  int64_t sT, sB, sC, sY, sX;  // strides of a conv input (T, B, Cin, H, W): any memory layout
  int64_t pooled() const { return PH * PW * C; }
  int64_t image(int64_t t, int64_t b) const { return t * sT + b * sB; }
};

Shape conv_shape(const torch::Tensor& x, const torch::Tensor& weight, int64_t pool) {
  const int64_t K = weight.size(2), OH = x.size(3) - K + 1, OW = x.size(4) - K + 1;
  return {x.size(0), x.size(1), x.size(2), x.size(3), x.size(4), weight.size(0), K, OH, OW, pool, OH / pool,
          OW / pool, x.stride(0), x.stride(1), x.stride(2), x.stride(3), x.stride(4)};
}

// current: the conv output (T, B, OH, OW, C), contiguous.
Shape pool_shape(const torch::Tensor& current, int64_t pool) {
  const int64_t OH = current.size(2), OW = current.size(3);
  return {current.size(0), current.size(1), 0, OH, OW, current.size(4), 1, OH, OW, pool, OH / pool, OW / pool,
          0, 0, 0, 0, 0};
}

template <typename scalar_t>
struct Neurons {
  scalar_t beta, thr, slope;
  int64_t mode;  // 0 subtract, 1 zero, 2 none
};

// weight (C, Cin, K, K) -> (Cin, K, K reversed, C). With kx reversed, the outputs one input reaches
// along a kernel row and their taps are both contiguous runs.
template <typename scalar_t>
std::vector<scalar_t> taps_last(const torch::Tensor& weight, const Shape& s) {
  std::vector<scalar_t> taps(s.Cin * s.K * s.K * s.C, scalar_t(0));
  auto w = weight.contiguous();
  const scalar_t* src = w.data_ptr<scalar_t>();
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t ci = 0; ci < s.Cin; ++ci)
      for (int64_t ky = 0; ky < s.K; ++ky)
        for (int64_t kx = 0; kx < s.K; ++kx)
          taps[((ci * s.K + ky) * s.K + (s.K - 1 - kx)) * s.C + c] = src[((c * s.Cin + ci) * s.K + ky) * s.K + kx];
  return taps;
}

// Visits every non-zero input value v of one conv input image, once per kernel row it reaches:
// visit(v, first conv output (offset into (OH, OW, C)), first reversed tap, run length in values).
template <typename scalar_t, typename F>
inline void for_each_event(const scalar_t* image, const Shape& s, F&& visit) {
  for (int64_t ci = 0; ci < s.Cin; ++ci)
    for (int64_t iy = 0; iy < s.H; ++iy)
      for (int64_t ix = 0; ix < s.W; ++ix) {
        const scalar_t v = image[ci * s.sC + iy * s.sY + ix * s.sX];
        if (v == scalar_t(0)) continue;
        const int64_t kx_first = std::max<int64_t>(0, ix - s.OW + 1), kx_last = std::min(s.K - 1, ix);
        for (int64_t ky = std::max<int64_t>(0, iy - s.OH + 1); ky <= std::min(s.K - 1, iy); ++ky)
          visit(v, ((iy - ky) * s.OW + (ix - kx_last)) * s.C, ((ci * s.K + ky) * s.K + (s.K - 1 - kx_last)) * s.C,
                (kx_last - kx_first + 1) * s.C);
      }
}

// m, at: the running maximum of n channels and its window index; o: the next window element, d.
template <typename scalar_t>
inline void keep_larger(const scalar_t* __restrict o, scalar_t* __restrict m, scalar_t* __restrict at, scalar_t d,
                        int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) {
    const bool larger = o[c] > m[c];  // strict: ties keep the first maximum
    m[c] = larger ? o[c] : m[c];
    at[c] = larger ? d : at[c];
  }
}

// Max-pools one conv output image (OH, OW, C) into current and the window index of each maximum.
template <typename scalar_t>
void max_pool(const scalar_t* out, const Shape& s, scalar_t* current, scalar_t* best) {
  const int64_t p = s.pool;
  for (int64_t py = 0; py < s.PH; ++py)
    for (int64_t px = 0; px < s.PW; ++px) {
      scalar_t* m = current + (py * s.PW + px) * s.C;
      scalar_t* idx = best + (py * s.PW + px) * s.C;
      const scalar_t* first = out + (py * p * s.OW + px * p) * s.C;
#pragma omp simd
      for (int64_t c = 0; c < s.C; ++c) {
        m[c] = first[c];
        idx[c] = 0;
      }
      for (int64_t d = 1; d < p * p; ++d)
        keep_larger(out + ((py * p + d / p) * s.OW + px * p + d % p) * s.C, m, idx, scalar_t(d), s.C);
    }
}

// One step of the neurons on the pooled current; writes this step's spikes, membranes and argmax.
template <typename scalar_t>
void fire(const Neurons<scalar_t>& n, int64_t count, const scalar_t* __restrict current,
          const scalar_t* __restrict best, scalar_t* __restrict mem, scalar_t* __restrict spk,
          scalar_t* __restrict mem_out, uint8_t* __restrict arg) {
  // mem <- a * mem + current - r * reset * thr, (a, r) = (beta, 1) subtract, (beta * (1 - reset), 0)
  // zero, (beta, 0) none: one branch-free loop.
  const scalar_t subtract = n.mode == 0 ? 1 : 0, zero = n.mode == 1 ? 1 : 0;
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    const scalar_t reset = mem[i] - n.thr > 0 ? scalar_t(1) : scalar_t(0);
    mem[i] = n.beta * (scalar_t(1) - zero * reset) * mem[i] + current[i] - subtract * reset * n.thr;
    mem_out[i] = mem[i];
    spk[i] = mem[i] - n.thr > 0 ? scalar_t(1) : scalar_t(0);
  }
  for (int64_t i = 0; i < count; ++i) arg[i] = static_cast<uint8_t>(best[i]);
}

// One step back through the neurons: the pooled current's gradient from the spikes' gradient and
// the carry from the next step; previous: the membranes of step t - 1 (nullptr at t = 0).
template <typename scalar_t>
void unfire(const Neurons<scalar_t>& n, int64_t count, const scalar_t* __restrict grad_spikes,
            const scalar_t* __restrict mem, const scalar_t* __restrict previous, scalar_t* __restrict carry,
            scalar_t* __restrict g_current) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    const scalar_t d = mem[i] - n.thr;
    const scalar_t sd = n.slope * (d < 0 ? -d : d) + scalar_t(1);
    g_current[i] = grad_spikes[i] / (sd * sd) + carry[i];
    carry[i] = g_current[i] * n.beta;
  }
  if (n.mode == 1 && previous != nullptr)  // zero reset: no memory through a step that followed a spike
    for (int64_t i = 0; i < count; ++i)
      if (previous[i] - n.thr > 0) carry[i] = scalar_t(0);
}

// Calls visit(position, i) for every pooled neuron i with the conv output position (offset into
// (OH, OW, C)) of its window's maximum; integer division only once per window.
template <typename F>
inline void for_each_argmax(const Shape& s, const uint8_t* arg, F&& visit) {
  std::vector<int64_t> window(s.pool * s.pool);  // window index -> offset from the window's corner
  for (int64_t d = 0; d < s.pool * s.pool; ++d) window[d] = ((d / s.pool) * s.OW + d % s.pool) * s.C;
  for (int64_t py = 0; py < s.PH; ++py)
    for (int64_t px = 0; px < s.PW; ++px) {
      const int64_t corner = (py * s.pool * s.OW + px * s.pool) * s.C, first = (py * s.PW + px) * s.C;
      for (int64_t c = 0; c < s.C; ++c) visit(corner + window[arg[first + c]] + c, first + c);
    }
}

// Runs the neurons forward over all samples and steps; conv_output(t, b, buffer) returns the conv
// output image (OH, OW, C) of step t, sample b (in the buffer or elsewhere).
template <typename scalar_t, typename ConvOutput>
std::vector<torch::Tensor> run_forward(const Shape& s, const Neurons<scalar_t>& n, const torch::TensorOptions& options,
                                       ConvOutput&& conv_output) {
  auto spikes = torch::empty({s.T, s.B, s.PH, s.PW, s.C}, options);
  auto membranes = torch::empty({s.T, s.B, s.PH, s.PW, s.C}, options);
  auto argmax = torch::empty({s.T, s.B, s.PH, s.PW, s.C}, options.dtype(torch::kUInt8));
  scalar_t *spk = spikes.data_ptr<scalar_t>(), *mem_out = membranes.data_ptr<scalar_t>();
  uint8_t* arg = argmax.data_ptr<uint8_t>();
  at::parallel_for(0, (s.B + CHUNK - 1) / CHUNK, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    std::vector<scalar_t> buffer(s.OH * s.OW * s.C), current(s.pooled()), mem(s.pooled()), best(s.pooled());
    for (int64_t b = chunk_begin * CHUNK; b < std::min(s.B, chunk_end * CHUNK); ++b) {
      std::fill(mem.begin(), mem.end(), scalar_t(0));
      for (int64_t t = 0; t < s.T; ++t) {
        max_pool(conv_output(t, b, buffer.data()), s, current.data(), best.data());
        const int64_t row = (t * s.B + b) * s.pooled();
        fire(n, s.pooled(), current.data(), best.data(), mem.data(), spk + row, mem_out + row, arg + row);
      }
    }
  });
  return {spikes, membranes, argmax};
}

// Runs the neurons backward; conv_grad(t, b, chunk, g_current, argmax row) takes each step's pooled
// current gradient.
template <typename scalar_t, typename ConvGrad>
void run_backward(const Shape& s, const Neurons<scalar_t>& n, const torch::Tensor& grad_spikes,
                  const torch::Tensor& membranes, const torch::Tensor& argmax, ConvGrad&& conv_grad) {
  const scalar_t *gs = grad_spikes.data_ptr<scalar_t>(), *mem = membranes.data_ptr<scalar_t>();
  const uint8_t* arg = argmax.data_ptr<uint8_t>();
  const int64_t count = s.pooled();
  at::parallel_for(0, (s.B + CHUNK - 1) / CHUNK, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    std::vector<scalar_t> carry(count), g_current(count);
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk)
      for (int64_t b = chunk * CHUNK; b < std::min(s.B, (chunk + 1) * CHUNK); ++b) {
        std::fill(carry.begin(), carry.end(), scalar_t(0));
        for (int64_t t = s.T - 1; t >= 0; --t) {
          const int64_t row = (t * s.B + b) * count;
          unfire(n, count, gs + row, mem + row, t > 0 ? mem + ((t - 1) * s.B + b) * count : nullptr, carry.data(),
                 g_current.data());
          conv_grad(t, b, chunk, g_current.data(), arg + row);
        }
      }
  });
}

template <typename scalar_t>
std::vector<torch::Tensor> conv_forward_impl(const torch::Tensor& x, const torch::Tensor& weight,
                                             const torch::Tensor& bias, int64_t pool, const Neurons<scalar_t>& n) {
  const Shape s = conv_shape(x, weight, pool);
  const auto taps = taps_last<scalar_t>(weight, s);
  std::vector<scalar_t> bias_row(s.OW * s.C);  // one conv output row holding only the bias
  for (int64_t o = 0; o < s.OW; ++o)
    for (int64_t c = 0; c < s.C; ++c) bias_row[o * s.C + c] = bias.data_ptr<scalar_t>()[c];
  const scalar_t* xs = x.data_ptr<scalar_t>();
  return run_forward<scalar_t>(s, n, x.options(), [&](int64_t t, int64_t b, scalar_t* out) -> const scalar_t* {
    for (int64_t oy = 0; oy < s.OH; ++oy) std::copy(bias_row.begin(), bias_row.end(), out + oy * s.OW * s.C);
    for_each_event(xs + s.image(t, b), s, [&](scalar_t v, int64_t at, int64_t tap, int64_t run) {
      scalar_t* o = out + at;
      const scalar_t* w = &taps[tap];
#pragma omp simd
      for (int64_t c = 0; c < run; ++c) o[c] += v * w[c];
    });
    return out;
  });
}

template <typename scalar_t>
std::vector<torch::Tensor> conv_backward_impl(const torch::Tensor& grad_spikes, const torch::Tensor& x,
                                              const torch::Tensor& weight, const torch::Tensor& membranes,
                                              const torch::Tensor& argmax, int64_t pool, const Neurons<scalar_t>& n) {
  const Shape s = conv_shape(x, weight, pool);
  const int64_t chunks = (s.B + CHUNK - 1) / CHUNK, taps_size = s.Cin * s.K * s.K * s.C;
  auto per_chunk = torch::zeros({chunks, taps_size + s.C}, x.options());  // weight taps, then bias
  const scalar_t* xs = x.data_ptr<scalar_t>();
  // One conv output gradient buffer per thread, zero except where a step writes it (then cleared).
  std::vector<std::vector<scalar_t>> g_out(at::get_num_threads(), std::vector<scalar_t>(s.OH * s.OW * s.C, 0));
  run_backward<scalar_t>(s, n, grad_spikes, membranes, argmax,
                         [&](int64_t t, int64_t b, int64_t chunk, const scalar_t* g_current, const uint8_t* arg) {
    scalar_t* g = g_out[at::get_thread_num()].data();
    scalar_t* g_taps = per_chunk.data_ptr<scalar_t>() + chunk * (taps_size + s.C);
    scalar_t* g_bias = g_taps + taps_size;
    for_each_argmax(s, arg, [&](int64_t at, int64_t i) { g[at] = g_current[i]; });
    for (int64_t i = 0; i < s.pooled(); i += s.C)
      for (int64_t c = 0; c < s.C; ++c) g_bias[c] += g_current[i + c];
    for_each_event(xs + s.image(t, b), s, [&](scalar_t v, int64_t at, int64_t tap, int64_t run) {
      const scalar_t* go = g + at;
      scalar_t* gw = g_taps + tap;
#pragma omp simd
      for (int64_t c = 0; c < run; ++c) gw[c] += v * go[c];
    });
    for_each_argmax(s, arg, [&](int64_t at, int64_t) { g[at] = scalar_t(0); });
  });
  auto sums = per_chunk.sum(0);  // chunks in order: the same result for any number of threads
  auto g_weight = sums.narrow(0, 0, taps_size).view({s.Cin, s.K, s.K, s.C}).flip({2}).permute({3, 0, 1, 2})
                      .contiguous();
  return {g_weight, sums.narrow(0, taps_size, s.C).clone()};
}

// The gradients of a conv (stride 1, no padding) followed by max-pool -> LIF, from the LIF's spike
// gradients: only each window's argmax carries a conv output gradient (a quarter of them for 2x2
// pooling), so each one adds g x its input patch to the weight gradient and g x its weights to the
// input gradient, one contiguous run of K * Cin values per kernel row. x: the conv input as
// (T, B, H, W, Cin) contiguous (channels last); weight (C, Cin, K, K).
template <typename scalar_t>
std::vector<torch::Tensor> sparse_conv_backward_impl(const torch::Tensor& grad_spikes, const torch::Tensor& x,
                                                     const torch::Tensor& weight, const torch::Tensor& membranes,
                                                     const torch::Tensor& argmax, int64_t pool,
                                                     const Neurons<scalar_t>& n) {
  const int64_t T = x.size(0), B = x.size(1), H = x.size(2), W = x.size(3), Cin = x.size(4), K = weight.size(2);
  const Shape s{T, B, Cin, H, W, weight.size(0), K, H - K + 1, W - K + 1, pool, (H - K + 1) / pool,
                (W - K + 1) / pool, 0, 0, 0, 0, 0};
  const int64_t run = K * Cin, taps_size = s.C * K * run, chunks = (B + CHUNK - 1) / CHUNK;
  std::vector<scalar_t> to_input(taps_size);  // weight as (C, K, K, Cin)
  {
    auto w = weight.contiguous();
    const scalar_t* src = w.data_ptr<scalar_t>();
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t ci = 0; ci < Cin; ++ci)
        for (int64_t tap = 0; tap < K * K; ++tap) to_input[(c * K * K + tap) * Cin + ci] = src[(c * Cin + ci) * K * K + tap];
  }
  auto g_x = torch::empty_like(x);
  auto per_chunk = torch::zeros({chunks, taps_size + s.C}, x.options());  // (C, K, K, Cin) taps, then bias
  const scalar_t* xs = x.data_ptr<scalar_t>();
  scalar_t* gx = g_x.data_ptr<scalar_t>();
  std::vector<int64_t> dy(pool * pool), dx(pool * pool);
  for (int64_t d = 0; d < pool * pool; ++d) dy[d] = d / pool, dx[d] = d % pool;
  run_backward<scalar_t>(s, n, grad_spikes, membranes, argmax,
                         [&](int64_t t, int64_t b, int64_t chunk, const scalar_t* g_current, const uint8_t* arg) {
    const scalar_t* image = xs + (t * B + b) * H * W * Cin;
    scalar_t* g_image = gx + (t * B + b) * H * W * Cin;
    std::fill(g_image, g_image + H * W * Cin, scalar_t(0));
    scalar_t* g_taps = per_chunk.data_ptr<scalar_t>() + chunk * (taps_size + s.C);
    scalar_t* g_bias = g_taps + taps_size;
    for (int64_t py = 0; py < s.PH; ++py)
      for (int64_t px = 0; px < s.PW; ++px)
        for (int64_t c = 0; c < s.C; ++c) {
          const int64_t i = (py * s.PW + px) * s.C + c;
          const scalar_t g = g_current[i];
          const int64_t oy = py * pool + dy[arg[i]], ox = px * pool + dx[arg[i]];
          g_bias[c] += g;
          for (int64_t ky = 0; ky < K; ++ky) {
            const scalar_t* __restrict in = image + ((oy + ky) * W + ox) * Cin;
            scalar_t* __restrict g_in = g_image + ((oy + ky) * W + ox) * Cin;
            const scalar_t* __restrict w = &to_input[(c * K + ky) * run];
            scalar_t* __restrict g_w = g_taps + (c * K + ky) * run;
#pragma omp simd
            for (int64_t j = 0; j < run; ++j) {
              g_w[j] += g * in[j];
              g_in[j] += g * w[j];
            }
          }
        }
  });
  auto sums = per_chunk.sum(0);  // chunks in order: the same result for any number of threads
  auto g_weight = sums.narrow(0, 0, taps_size).view({s.C, K, K, Cin}).permute({0, 3, 1, 2}).contiguous();
  return {g_x, g_weight, sums.narrow(0, taps_size, s.C).clone()};
}

template <typename scalar_t>
Neurons<scalar_t> neurons(double beta, double threshold, double slope, int64_t mode) {
  return {scalar_t(beta), scalar_t(threshold), scalar_t(slope), mode};
}

}  // namespace

// x: (T, B, Cin, H, W), any strides; weight (C, Cin, K, K), stride 1, no padding; bias (C); pool:
// max-pool kernel = stride (1: none). Returns spikes, membranes and the argmax of each pooling
// window, each (T, B, H', W', C) (channels last).
std::vector<torch::Tensor> conv_forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias, int64_t pool,
                                        double beta, double threshold, int64_t mode) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv_pool_lif_forward", [&] {
    result = conv_forward_impl<scalar_t>(x, weight, bias, pool, neurons<scalar_t>(beta, threshold, 0, mode));
  });
  return result;
}

// grad_spikes: (T, B, H', W', C). Returns the gradients of weight and bias.
std::vector<torch::Tensor> conv_backward(torch::Tensor grad_spikes, torch::Tensor x, torch::Tensor weight,
                                         torch::Tensor membranes, torch::Tensor argmax, int64_t pool, double beta,
                                         double threshold, double slope, int64_t mode) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv_pool_lif_backward", [&] {
    result = conv_backward_impl<scalar_t>(grad_spikes, x, weight, membranes, argmax, pool,
                                          neurons<scalar_t>(beta, threshold, slope, mode));
  });
  return result;
}

// current: the conv output (T, B, OH, OW, C), contiguous. Returns spikes, membranes, argmax as
// conv_forward does.
std::vector<torch::Tensor> pool_forward(torch::Tensor current, int64_t pool, double beta, double threshold,
                                        int64_t mode) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(current.scalar_type(), "pool_lif_forward", [&] {
    const Shape s = pool_shape(current, pool);
    const scalar_t* in = current.data_ptr<scalar_t>();
    result = run_forward<scalar_t>(s, neurons<scalar_t>(beta, threshold, 0, mode), current.options(),
                                   [&](int64_t t, int64_t b, scalar_t*) { return in + (t * s.B + b) * s.OH * s.OW * s.C; });
  });
  return result;
}

// Returns the gradient of the conv output (T, B, OH, OW, C).
std::vector<torch::Tensor> pool_backward(torch::Tensor grad_spikes, torch::Tensor membranes, torch::Tensor argmax,
                                         int64_t height, int64_t width, int64_t pool, double beta, double threshold,
                                         double slope, int64_t mode) {
  auto grad = torch::empty({membranes.size(0), membranes.size(1), height, width, membranes.size(4)},
                           membranes.options());
  AT_DISPATCH_FLOATING_TYPES(membranes.scalar_type(), "pool_lif_backward", [&] {
    const Shape s = pool_shape(grad, pool);
    scalar_t* g = grad.data_ptr<scalar_t>();
    run_backward<scalar_t>(s, neurons<scalar_t>(beta, threshold, slope, mode), grad_spikes, membranes, argmax,
                           [&](int64_t t, int64_t b, int64_t, const scalar_t* g_current, const uint8_t* arg) {
      scalar_t* image = g + (t * s.B + b) * s.OH * s.OW * s.C;
      std::fill(image, image + s.OH * s.OW * s.C, scalar_t(0));
      for_each_argmax(s, arg, [&](int64_t at, int64_t i) { image[at] = g_current[i]; });
    });
  });
  return {grad};
}

// Gradients of x, weight and bias of conv -> max-pool -> LIF (see sparse_conv_backward_impl).
std::vector<torch::Tensor> sparse_conv_backward(torch::Tensor grad_spikes, torch::Tensor x, torch::Tensor weight,
                                                torch::Tensor membranes, torch::Tensor argmax, int64_t pool,
                                                double beta, double threshold, double slope, int64_t mode) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_conv_backward", [&] {
    result = sparse_conv_backward_impl<scalar_t>(grad_spikes, x, weight, membranes, argmax, pool,
                                                 neurons<scalar_t>(beta, threshold, slope, mode));
  });
  return result;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("sparse_conv_backward", &sparse_conv_backward, "gradients of conv -> max-pool -> LIF, argmax-sparse");
  m.def("conv_forward", &conv_forward, "conv -> max-pool -> LIF over time, event driven");
  m.def("conv_backward", &conv_backward, "gradient of conv -> max-pool -> LIF w.r.t. the conv weights");
  m.def("pool_forward", &pool_forward, "max-pool -> LIF over time on a conv output");
  m.def("pool_backward", &pool_backward, "gradient of max-pool -> LIF w.r.t. the conv output");
}
