// Blocks of a spiking conv network, [conv ->] max-pool -> LIF (snnTorch Leaky), over all time steps
// in one call each way. The entry points share the pooling and the neurons:
//  - conv_forward: a plain conv (stride 1, no padding) on the block's input, the encoder's output
//    or the channels-last spikes of the block before; a step's conv output never leaves the cache.
//    On binary images (spikes) the K inputs under a kernel row form one of 2^K patterns, so a conv
//    output is the bias plus Cin * K looked-up weight sums. Other images run on their events: each
//    non-zero input adds its value times its weights to the outputs it reaches.
//  - sparse_conv_backward: the weight and bias gradients, and the input's where it needs one (not
//    the first block's, fed by the encoder), from the argmax positions only (the other conv
//    outputs have no gradient).
//  - pool_*: a block whose layers before the pool ran in torch (batch norm): pooling and neurons read
//    its output in place, and the backward pass writes its gradient once (zeros but at each window's
//    argmax) instead of a zero fill, a scatter and separate LIF passes.
// Per-pixel loops over channels use compiler vectors (Lanes): written as plain loops, C = 12 left
// them scalar or with masked stores, which are slow on AMD cores.
// Pooling keeps the first maximum of each window, as torch does. The neurons are lif.h's.
// Channels are the innermost index, so the runs of outputs and taps below are contiguous.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>
#include "lif.h"

namespace {

constexpr int64_t CHUNK = 16;  // samples per work item; gradient sums are kept per chunk
constexpr int64_t MAX_POOL = 15;  // the largest pooling window side (fast_snn._pool_size checks it)

struct Shape {
  int64_t T, B, Cin, H, W, C, K, OH, OW, pool, PH, PW;
  // Pixels per row of a conv output image (OH, row, C) as the kernels hold it: OW for one computed
  // elsewhere; W for the first block's own, whose patterns run over whole input rows (the K - 1
  // pixels past OW are never read).
  int64_t row;
  bool channels_last;  // a conv input image is (H, W, Cin) in memory, else (Cin, H, W)
  int64_t pooled() const { return PH * PW * C; }
  int64_t image_size() const { return Cin * H * W; }
  int64_t output_size() const { return OH * row * C; }
  int64_t channel_stride() const { return channels_last ? 1 : H * W; }  // in an input image
  int64_t pixel_stride() const { return channels_last ? Cin : 1; }
  int64_t input(int64_t ci, int64_t iy, int64_t ix) const {  // offset of x[ci, iy, ix] in an image
    return ci * channel_stride() + (iy * W + ix) * pixel_stride();
  }
};

// Whether x (T, B, Cin, H, W) is channels last in memory (and not also contiguous as it is).
bool is_channels_last(const torch::Tensor& x) {
  return !x.is_contiguous() && x.permute({0, 1, 3, 4, 2}).is_contiguous();
}

// x: the conv input (T, B, Cin, H, W), contiguous or channels last.
Shape conv_shape(const torch::Tensor& x, const torch::Tensor& weight, int64_t pool) {
  const int64_t K = weight.size(2), OH = x.size(3) - K + 1, OW = x.size(4) - K + 1;
  return {x.size(0), x.size(1), x.size(2), x.size(3), x.size(4), weight.size(0), K, OH, OW, pool, OH / pool,
          OW / pool, x.size(4), is_channels_last(x)};
}

// current: the conv output (T, B, OH, OW, C), contiguous.
Shape pool_shape(const torch::Tensor& current, int64_t pool) {
  const int64_t OH = current.size(2), OW = current.size(3);
  return {current.size(0), current.size(1), 0, OH, OW, current.size(4), 1, OH, OW, pool, OH / pool, OW / pool, OW,
          false};
}

using lif::Neurons;

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
// visit(v, first conv output (offset into (OH, row, C)), first reversed tap, run length in values).
template <typename scalar_t, typename F>
inline void for_each_event(const scalar_t* image, const Shape& s, F&& visit) {
  for (int64_t ci = 0; ci < s.Cin; ++ci)
    for (int64_t iy = 0; iy < s.H; ++iy)
      for (int64_t ix = 0; ix < s.W; ++ix) {
        const scalar_t v = image[s.input(ci, iy, ix)];
        if (v == scalar_t(0)) continue;
        const int64_t kx_first = std::max<int64_t>(0, ix - s.OW + 1), kx_last = std::min(s.K - 1, ix);
        for (int64_t ky = std::max<int64_t>(0, iy - s.OH + 1); ky <= std::min(s.K - 1, iy); ++ky)
          visit(v, ((iy - ky) * s.row + (ix - kx_last)) * s.C, ((ci * s.K + ky) * s.K + (s.K - 1 - kx_last)) * s.C,
                (kx_last - kx_first + 1) * s.C);
      }
}

// Binary inputs (spikes) take a table instead of events: a kernel row of up to 8
// input bits has at most 256 patterns, and the conv output is the bias plus, per input channel and
// kernel row, the weight sum of the row's pattern; each output is then Cin * K reads of a C-long
// run instead of a read-modify-write of C values per input event.
constexpr int64_t MAX_PATTERN_BITS = 8;

inline bool patterns_apply(const Shape& s) { return s.K <= MAX_PATTERN_BITS; }

// pattern[input(ci, iy, ix)]: bit kx is x[ci, iy, ix + kx] != 0 (patterns that run past their row
// are never read). bits: scratch of the image's size. False (the patterns unusable) if the image
// holds a value other than 0 and 1.
template <typename scalar_t>
bool bit_patterns(const scalar_t* image, const Shape& s, uint8_t* bits, uint8_t* pattern) {
  const int64_t n = s.image_size(), step = s.pixel_stride();
  int other = 0;
#pragma omp simd reduction(| : other)
  for (int64_t j = 0; j < n; ++j) {
    other |= (image[j] != scalar_t(0)) & (image[j] != scalar_t(1));
    bits[j] = image[j] != scalar_t(0);
  }
  if (other) return false;
  std::copy(bits, bits + n, pattern);
  for (int64_t kx = 1; kx < s.K; ++kx)  // one pass per tap: whole byte vectors
#pragma omp simd
    for (int64_t j = 0; j < n - kx * step; ++j) pattern[j] |= static_cast<uint8_t>(bits[j + kx * step] << kx);
  return true;
}

// The offset of (ci, ky, pattern) in a table of C-long rows, (Cin, K, 2^K, C).
inline int64_t pattern_row(const Shape& s, int64_t ci, int64_t ky, int64_t pattern) {
  return (((ci * s.K + ky) << s.K) + pattern) * s.C;
}

// sums[pattern_row(ci, ky, p) + c] = the sum of weight[c, ci, ky, kx] over the bits kx set in p.
template <typename scalar_t>
std::vector<scalar_t> pattern_sums(const torch::Tensor& weight, const Shape& s) {
  std::vector<scalar_t> sums(patterns_apply(s) ? pattern_row(s, s.Cin, 0, 0) : 0, scalar_t(0));
  if (sums.empty()) return sums;
  auto w = weight.contiguous();
  const scalar_t* src = w.data_ptr<scalar_t>();
  for (int64_t ci = 0; ci < s.Cin; ++ci)
    for (int64_t ky = 0; ky < s.K; ++ky)
      for (int64_t p = 1; p < (int64_t(1) << s.K); ++p) {
        const int64_t kx = __builtin_ctzll(p);  // p = the lowest bit kx + the pattern without it
        for (int64_t c = 0; c < s.C; ++c)
          sums[pattern_row(s, ci, ky, p) + c] =
              sums[pattern_row(s, ci, ky, p & (p - 1)) + c] + src[((c * s.Cin + ci) * s.K + ky) * s.K + kx];
      }
  return sums;
}

// V values as one vector of the compiler (GCC/Clang vector extensions): per-pixel channel loops in
// plain C++ left C = 12 to scalar code or to masked stores, which are slow on AMD cores.
template <typename scalar_t, int64_t V>
struct Lanes {
  typedef scalar_t type __attribute__((vector_size(V * sizeof(scalar_t))));
  static type load(const scalar_t* p) {
    type v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(scalar_t* p, const type& v) { std::memcpy(p, &v, sizeof v); }
};

// Calls f(std::integral_constant<int64_t, V>()) with V the widest of 8, 4 and 1 lanes that divides C.
template <typename F>
inline void with_lanes(int64_t C, F&& f) {
  if (C % 8 == 0) f(std::integral_constant<int64_t, 8>());
  else if (C % 4 == 0) f(std::integral_constant<int64_t, 4>());
  else f(std::integral_constant<int64_t, 1>());
}

// Max-pools one conv output image (OH, row, C) into current and the window index of each maximum.
template <int64_t V, typename scalar_t>
void max_pool_lanes(const scalar_t* out, const Shape& s, scalar_t* current, scalar_t* best) {
  using L = Lanes<scalar_t, V>;
  const int64_t p = s.pool;
  int64_t window[MAX_POOL * MAX_POOL];  // window index -> offset from the window's corner
  for (int64_t d = 0; d < p * p; ++d) window[d] = ((d / p) * s.row + d % p) * s.C;
  for (int64_t py = 0; py < s.PH; ++py)
    for (int64_t px = 0; px < s.PW; ++px)
      for (int64_t c0 = 0; c0 < s.C; c0 += V) {
        const scalar_t* corner = out + (py * p * s.row + px * p) * s.C + c0;
        typename L::type m = L::load(corner), at = m - m;
        for (int64_t d = 1; d < p * p; ++d) {
          const typename L::type o = L::load(corner + window[d]);
          const auto larger = o > m;  // strict: ties keep the first maximum
          at = larger ? at - at + scalar_t(d) : at;
          m = larger ? o : m;
        }
        const int64_t i = (py * s.PW + px) * s.C + c0;
        L::store(current + i, m);
        L::store(best + i, at);
      }
}

template <typename scalar_t>
void max_pool(const scalar_t* out, const Shape& s, scalar_t* current, scalar_t* best) {
  with_lanes(s.C, [&](auto lanes) { max_pool_lanes<decltype(lanes)::value>(out, s, current, best); });
}

// The conv output (OH, row = W, C) of a binary image from its patterns: the bias plus, per input
// channel and kernel row, the sums of the row's pattern. The pattern of pixel q = oy * W + ox in
// kernel row ky is at input(ci, ky, q), so pixels run as one flat range. Up to 4 vectors of
// channels of U pixels are summed in registers at once: each pattern read serves all of them, and
// the independent sums hide the latency of the additions.
template <int64_t V, typename scalar_t>
void pattern_conv_lanes(const uint8_t* pattern, const scalar_t* sums, const scalar_t* bias, const Shape& s,
                        scalar_t* out) {
  using L = Lanes<scalar_t, V>;
  using std::integral_constant;
  const int64_t pixels = (s.OH - 1) * s.W + s.OW, step = s.pixel_stride();
  auto group = [&](int64_t c0, int64_t q0, auto channel_vectors, auto count) {
    constexpr int64_t NC = decltype(channel_vectors)::value, U = decltype(count)::value;
    typename L::type acc[U][NC];
    for (int64_t u = 0; u < U; ++u)
      for (int64_t j = 0; j < NC; ++j) acc[u][j] = L::load(bias + c0 + j * V);
    for (int64_t ci = 0; ci < s.Cin; ++ci)
      for (int64_t ky = 0; ky < s.K; ++ky) {
        const uint8_t* row = pattern + s.input(ci, ky, q0);
        const scalar_t* table = sums + pattern_row(s, ci, ky, 0) + c0;
        for (int64_t u = 0; u < U; ++u) {
          const scalar_t* entry = table + row[u * step] * s.C;
          for (int64_t j = 0; j < NC; ++j) acc[u][j] += L::load(entry + j * V);
        }
      }
    for (int64_t u = 0; u < U; ++u)
      for (int64_t j = 0; j < NC; ++j) L::store(out + (q0 + u) * s.C + c0 + j * V, acc[u][j]);
  };
  auto channels = [&](int64_t c0, auto channel_vectors) {  // about 16 sums in registers
    constexpr int64_t U = decltype(channel_vectors)::value >= 3 ? 4 : 8;
    int64_t q0 = 0;
    for (; q0 + U <= pixels; q0 += U) group(c0, q0, channel_vectors, integral_constant<int64_t, U>());
    for (; q0 < pixels; ++q0) group(c0, q0, channel_vectors, integral_constant<int64_t, 1>());
  };
  const int64_t vectors = s.C / V;
  int64_t v = 0;
  for (; v + 4 <= vectors; v += 4) channels(v * V, integral_constant<int64_t, 4>());
  switch (vectors - v) {
    case 1: channels(v * V, integral_constant<int64_t, 1>()); break;
    case 2: channels(v * V, integral_constant<int64_t, 2>()); break;
    case 3: channels(v * V, integral_constant<int64_t, 3>()); break;
    default: break;
  }
}

// One step of the neurons on the pooled current; writes this step's spikes, membranes and argmax.
template <typename scalar_t>
void fire(const Neurons<scalar_t>& n, int64_t count, const scalar_t* __restrict current,
          const scalar_t* __restrict best, scalar_t* __restrict mem, scalar_t* __restrict spk,
          scalar_t* __restrict mem_out, uint8_t* __restrict arg) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    mem[i] = n.step(mem[i], current[i]);
    mem_out[i] = mem[i];
    spk[i] = n.spike(mem[i]);
  }
  for (int64_t i = 0; i < count; ++i) arg[i] = static_cast<uint8_t>(best[i]);
}

// One step back through the neurons: the pooled current's gradient from the spikes' gradient and
// the carry from the next step; previous: the membranes of step t - 1 (nullptr at t = 0, where the
// carry is never read again, so any membranes will do).
template <typename scalar_t>
void unfire(const Neurons<scalar_t>& n, int64_t count, const scalar_t* __restrict grad_spikes,
            const scalar_t* __restrict mem, const scalar_t* __restrict previous, scalar_t* __restrict carry,
            scalar_t* __restrict g_current) {
  const scalar_t* before = previous != nullptr ? previous : mem;
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) {
    g_current[i] = grad_spikes[i] / n.surrogate_denominator(mem[i]) + carry[i];
    carry[i] = g_current[i] * n.decay(before[i]);
  }
}

// Calls visit(pixel, c, i) for every pooled neuron i = (py, px, c) with the conv output pixel
// (oy * row + ox) of its window's maximum; integer division only once per window.
template <typename F>
inline void for_each_argmax(const Shape& s, const uint8_t* arg, F&& visit) {
  std::vector<int64_t> window(s.pool * s.pool);  // window index -> pixel offset from the window's corner
  for (int64_t d = 0; d < s.pool * s.pool; ++d) window[d] = (d / s.pool) * s.row + d % s.pool;
  for (int64_t py = 0; py < s.PH; ++py)
    for (int64_t px = 0; px < s.PW; ++px) {
      const int64_t corner = py * s.pool * s.row + px * s.pool, first = (py * s.PW + px) * s.C;
      for (int64_t c = 0; c < s.C; ++c) visit(corner + window[arg[first + c]], c, first + c);
    }
}

// Runs the neurons forward over all samples and steps; conv_output(t, b, buffer) returns the conv
// output image (OH, row, C) of step t, sample b (in the buffer or elsewhere).
template <typename scalar_t, typename ConvOutput>
std::vector<torch::Tensor> run_forward(const Shape& s, const Neurons<scalar_t>& n, const torch::TensorOptions& options,
                                       ConvOutput&& conv_output) {
  auto spikes = torch::empty({s.T, s.B, s.PH, s.PW, s.C}, options);
  auto membranes = torch::empty({s.T, s.B, s.PH, s.PW, s.C}, options);
  auto argmax = torch::empty({s.T, s.B, s.PH, s.PW, s.C}, options.dtype(torch::kUInt8));
  scalar_t *spk = spikes.data_ptr<scalar_t>(), *mem_out = membranes.data_ptr<scalar_t>();
  uint8_t* arg = argmax.data_ptr<uint8_t>();
  at::parallel_for(0, (s.B + CHUNK - 1) / CHUNK, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    std::vector<scalar_t> buffer(s.output_size()), current(s.pooled()), mem(s.pooled()), best(s.pooled());
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
  const auto sums = pattern_sums<scalar_t>(weight, s);
  std::vector<scalar_t> bias_row(s.OW * s.C);  // one conv output row holding only the bias
  for (int64_t o = 0; o < s.OW; ++o)
    for (int64_t c = 0; c < s.C; ++c) bias_row[o * s.C + c] = bias.data_ptr<scalar_t>()[c];
  const scalar_t* xs = x.data_ptr<scalar_t>();
  // Per thread: an image's bits, then its patterns.
  std::vector<std::vector<uint8_t>> scratch(at::get_num_threads(), std::vector<uint8_t>(2 * s.image_size()));
  return run_forward<scalar_t>(s, n, x.options(), [&](int64_t t, int64_t b, scalar_t* out) -> const scalar_t* {
    const scalar_t* image = xs + (t * s.B + b) * s.image_size();
    uint8_t* bits = scratch[at::get_thread_num()].data();
    uint8_t* pattern = bits + s.image_size();
    if (patterns_apply(s) && bit_patterns(image, s, bits, pattern)) {
      with_lanes(s.C, [&](auto lanes) {
        pattern_conv_lanes<decltype(lanes)::value>(pattern, sums.data(), bias_row.data(), s, out);
      });
      return out;
    }
    for (int64_t oy = 0; oy < s.OH; ++oy) std::copy(bias_row.begin(), bias_row.end(), out + oy * s.row * s.C);
    for_each_event(image, s, [&](scalar_t v, int64_t at, int64_t tap, int64_t run) {
      scalar_t* o = out + at;
      const scalar_t* w = &taps[tap];
#pragma omp simd
      for (int64_t c = 0; c < run; ++c) o[c] += v * w[c];
    });
    return out;
  });
}

constexpr int64_t LANES = 8;  // values per vector in the sparse backward

// Calls f(std::integral_constant<int64_t, n>()) for n in 1..6.
template <typename F>
__attribute__((always_inline)) inline void with_count(int64_t n, F&& f) {
  using std::integral_constant;
  switch (n) {
    case 1: f(integral_constant<int64_t, 1>()); break;
    case 2: f(integral_constant<int64_t, 2>()); break;
    case 3: f(integral_constant<int64_t, 3>()); break;
    case 4: f(integral_constant<int64_t, 4>()); break;
    case 5: f(integral_constant<int64_t, 5>()); break;
    case 6: f(integral_constant<int64_t, 6>()); break;
    default: break;
  }
}

// A patch: `rows` rows of `vectors` vectors, each row some values after the one before. Its sums
// are kept in registers `height` rows x `width` vectors at a time: at most 6 vectors (12 sums, even
// and odd terms apart, leave a few of the 16 registers for the rest), wide rows row by row in
// near-equal parts, narrow rows several at a time. Worked out once: divisions are slow.
struct PatchShape {
  int64_t rows, vectors, height, width;
  PatchShape(int64_t rows, int64_t vectors) : rows(rows), vectors(vectors) {
    const int64_t parts = (vectors + 5) / 6;
    height = vectors >= 4 ? 1 : 6 / vectors;
    width = vectors >= 4 ? (vectors + parts - 1) / parts : vectors;
  }
};

// out_patch (rows out_line apart) += the sum over k < count of scale[k] x patch(k) (rows in_line
// apart). Each block of sums is stored once: updating out term by term costs a store per vector
// and chains each update to the one before through memory.
template <typename scalar_t, typename PatchAt>
__attribute__((always_inline)) inline void add_scaled_patches(scalar_t* out, int64_t out_line, int64_t count,
                                                              const scalar_t* scale, PatchAt&& patch, int64_t in_line,
                                                              const PatchShape& shape) {
  using L = Lanes<scalar_t, LANES>;
  auto block = [&](int64_t r0, int64_t v0, auto row_count, auto vector_count) __attribute__((always_inline)) {
    constexpr int64_t R = decltype(row_count)::value, A = decltype(vector_count)::value;
    scalar_t* o = out + r0 * out_line + v0 * LANES;
    const int64_t in_at = r0 * in_line + v0 * LANES;
    typename L::type even[R][A], odd[R][A];
    for (int64_t r = 0; r < R; ++r)
      for (int64_t a = 0; a < A; ++a) {
        even[r][a] = L::load(o + r * out_line + a * LANES);
        odd[r][a] = even[r][a] - even[r][a];
      }
    int64_t k = 0;
    for (; k + 1 < count; k += 2) {
      const scalar_t *p0 = patch(k) + in_at, *p1 = patch(k + 1) + in_at;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t a = 0; a < A; ++a) {
          even[r][a] += scale[k] * L::load(p0 + r * in_line + a * LANES);
          odd[r][a] += scale[k + 1] * L::load(p1 + r * in_line + a * LANES);
        }
    }
    if (k < count)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t a = 0; a < A; ++a) even[r][a] += scale[k] * L::load(patch(k) + in_at + r * in_line + a * LANES);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t a = 0; a < A; ++a) L::store(o + r * out_line + a * LANES, even[r][a] + odd[r][a]);
  };
  for (int64_t r = 0; r < shape.rows; r += shape.height)
    for (int64_t v = 0; v < shape.vectors; v += shape.width)
      with_count(std::min(shape.height, shape.rows - r), [&](auto rows) __attribute__((always_inline)) {
        with_count(std::min(shape.width, shape.vectors - v), [&](auto vectors) __attribute__((always_inline)) {
          if constexpr (std::decay_t<decltype(rows)>::value * std::decay_t<decltype(vectors)>::value <= 6)
            block(r, v, rows, vectors);
        });
      });
}

// The gradients of a conv (stride 1, no padding) followed by max-pool -> LIF, from the LIF's spike
// gradients: only each window's argmax carries a conv output gradient (a quarter of them for 2x2
// pooling). Each such output of channel c adds g x its input patch to c's weight gradient and g x
// c's weights to the input gradient around it, one contiguous run of K * Cin values per kernel row.
// Two passes keep the sums in registers: channel by channel over its windows for the weights,
// window position by position over the channels whose maximum sits there for the inputs. Runs are
// read as whole vectors: weight rows are padded with zeros, an input run may read into the next
// image (the last image is copied into a buffer with room after it), and the input gradient is
// summed in a buffer with room after it, so the values past a run add nothing where it matters.
// x: the conv input as (T, B, H, W, Cin) contiguous (channels last); weight (C, Cin, K, K). Without
// input_grad the second pass is skipped and the input's gradient is an undefined tensor.
template <typename scalar_t>
std::vector<torch::Tensor> sparse_conv_backward_impl(const torch::Tensor& grad_spikes, const torch::Tensor& x,
                                                     const torch::Tensor& weight, const torch::Tensor& membranes,
                                                     const torch::Tensor& argmax, int64_t pool,
                                                     const Neurons<scalar_t>& n, bool input_grad) {
  const int64_t T = x.size(0), B = x.size(1), H = x.size(2), W = x.size(3), Cin = x.size(4), K = weight.size(2);
  const Shape s{T, B, Cin, H, W, weight.size(0), K, H - K + 1, W - K + 1, pool, (H - K + 1) / pool,
                (W - K + 1) / pool, W - K + 1, true};
  const int64_t run = K * Cin, vectors = (run + LANES - 1) / LANES, padded = vectors * LANES;
  const PatchShape patch(K, vectors);  // a kernel's input run (weight gradient) or weights (input gradient)
  const int64_t taps_size = s.C * K * padded, chunks = (B + CHUNK - 1) / CHUNK;
  const int64_t windows = s.PH * s.PW, positions = pool * pool, line = W * Cin, image_size = H * line;
  std::vector<scalar_t> to_input(taps_size, scalar_t(0));  // weight as (C, K, K * Cin padded)
  {
    auto w = weight.contiguous();
    const scalar_t* src = w.data_ptr<scalar_t>();
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t ci = 0; ci < Cin; ++ci)
        for (int64_t ky = 0; ky < K; ++ky)
          for (int64_t kx = 0; kx < K; ++kx)
            to_input[(c * K + ky) * padded + kx * Cin + ci] = src[((c * Cin + ci) * K + ky) * K + kx];
  }
  std::vector<int64_t> position(positions);  // window position -> input offset from the window's corner
  for (int64_t d = 0; d < positions; ++d) position[d] = ((d / pool) * W + d % pool) * Cin;
  std::vector<int64_t> corner(windows);  // window -> input offset of its corner
  for (int64_t w = 0; w < windows; ++w) corner[w] = ((w / s.PW) * pool * W + (w % s.PW) * pool) * Cin;
  auto g_x = input_grad ? torch::empty_like(x) : torch::Tensor();
  auto per_chunk = torch::zeros({chunks, taps_size + s.C}, x.options());  // (C, K, K * Cin padded), bias
  const scalar_t* xs = x.data_ptr<scalar_t>();
  scalar_t* gx = input_grad ? g_x.data_ptr<scalar_t>() : nullptr;
  // Per thread: the last image and an image's gradient, each with room for a vector after it; one
  // channel's windows (input offset of the maximum, gradient); one window position's channels (the
  // offsets of their weights, their gradients; room for one more).
  struct Scratch {
    std::vector<scalar_t> image, g_image;
    std::vector<int64_t> offset;
    std::vector<scalar_t> gain;
    std::vector<int64_t> weights_at;
    std::vector<scalar_t> channel_gain;
  };
  std::vector<Scratch> scratch(at::get_num_threads(), Scratch{std::vector<scalar_t>(image_size + LANES, 0),
      std::vector<scalar_t>(image_size + LANES), std::vector<int64_t>(windows), std::vector<scalar_t>(windows),
      std::vector<int64_t>(s.C + 1), std::vector<scalar_t>(s.C + 1)});
  run_backward<scalar_t>(s, n, grad_spikes, membranes, argmax,
                         [&](int64_t t, int64_t b, int64_t chunk, const scalar_t* g_current, const uint8_t* arg) {
    // Raw pointers and local sizes: through vectors and the Shape the compiler reloads each after
    // every store.
    Scratch& m = scratch[at::get_thread_num()];
    const int64_t C = s.C, patch_size = K * padded;
    scalar_t *g_image = m.g_image.data(), *gain = m.gain.data(), *channel_gain = m.channel_gain.data();
    int64_t *offset = m.offset.data(), *weights_at = m.weights_at.data();
    const int64_t *corner_at = corner.data(), *position_at = position.data();
    const scalar_t* weights = to_input.data();
    const scalar_t* image = xs + (t * B + b) * image_size;  // reading past it reads the next image
    if (t == T - 1 && b == B - 1) {  // the last image of x: a copy with room after it
      std::copy(image, image + image_size, m.image.begin());
      image = m.image.data();
    }
    scalar_t* g_taps = per_chunk.data_ptr<scalar_t>() + chunk * (taps_size + C);
    scalar_t* g_bias = g_taps + taps_size;
    for (int64_t w = 0; w < windows; ++w)
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) g_bias[c] += g_current[w * C + c];
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t w = 0; w < windows; ++w) {  // channel c's windows: where the maximum is, its gradient
        offset[w] = corner_at[w] + position_at[arg[w * C + c]];
        gain[w] = g_current[w * C + c];
      }
      add_scaled_patches(g_taps + c * patch_size, padded, windows, gain, [&](int64_t k) { return image + offset[k]; },
                         line, patch);
    }
    if (!input_grad) return;
    std::fill(g_image, g_image + image_size + LANES, scalar_t(0));
    for (int64_t w = 0; w < windows; ++w) {
      const uint8_t* at = arg + w * C;
      const scalar_t* g_window = g_current + w * C;
      for (int64_t d = 0; d < positions; ++d) {
        int64_t count = 0;
        for (int64_t c = 0; c < C; ++c) {  // the channels whose maximum sits at d, without branches
          weights_at[count] = c * patch_size;
          channel_gain[count] = g_window[c];
          count += at[c] == d;
        }
        if (count > 0)
          add_scaled_patches(g_image + corner_at[w] + position_at[d], line, count, channel_gain,
                             [&](int64_t k) { return weights + weights_at[k]; }, padded, patch);
      }
    }
    std::copy(g_image, g_image + image_size, gx + (t * B + b) * image_size);
  });
  auto sums = per_chunk.sum(0);  // chunks in order: the same result for any number of threads
  auto g_weight = sums.narrow(0, 0, taps_size).view({s.C, K, padded}).narrow(2, 0, run).reshape({s.C, K, K, Cin})
                      .permute({0, 3, 1, 2}).contiguous();
  return {g_x, g_weight, sums.narrow(0, taps_size, s.C).clone()};
}

template <typename scalar_t>
Neurons<scalar_t> neurons(double beta, double threshold, double slope, int64_t mode) {
  return {scalar_t(beta), scalar_t(threshold), scalar_t(slope), mode};
}

}  // namespace

// x: (T, B, Cin, H, W), contiguous or channels last (else made contiguous); weight (C, Cin, K, K),
// stride 1, no padding; bias (C); pool: max-pool kernel = stride (1: none). Returns spikes,
// membranes and the argmax of each pooling window, each (T, B, H', W', C) (channels last).
std::vector<torch::Tensor> conv_forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias, int64_t pool,
                                        double beta, double threshold, int64_t mode) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv_pool_lif_forward", [&] {
    result = conv_forward_impl<scalar_t>(is_channels_last(x) ? x : x.contiguous(), weight, bias, pool,
                                         neurons<scalar_t>(beta, threshold, 0, mode));
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
      for_each_argmax(s, arg, [&](int64_t pixel, int64_t c, int64_t i) { image[pixel * s.C + c] = g_current[i]; });
    });
  });
  return {grad};
}

// Gradients of x (where input_grad; else undefined), weight and bias of conv -> max-pool -> LIF (see
// sparse_conv_backward_impl).
std::vector<torch::Tensor> sparse_conv_backward(torch::Tensor grad_spikes, torch::Tensor x, torch::Tensor weight,
                                                torch::Tensor membranes, torch::Tensor argmax, int64_t pool,
                                                double beta, double threshold, double slope, int64_t mode,
                                                bool input_grad) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sparse_conv_backward", [&] {
    result = sparse_conv_backward_impl<scalar_t>(grad_spikes, x, weight, membranes, argmax, pool,
                                                 neurons<scalar_t>(beta, threshold, slope, mode), input_grad);
  });
  return result;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("sparse_conv_backward", &sparse_conv_backward, "gradients of conv -> max-pool -> LIF, argmax-sparse");
  m.def("conv_forward", &conv_forward, "conv -> max-pool -> LIF over time, event driven");
  m.def("pool_forward", &pool_forward, "max-pool -> LIF over time on a conv output");
  m.def("pool_backward", &pool_backward, "gradient of max-pool -> LIF w.r.t. the conv output");
}
