// Fused wired CfC (ncps WiredCfCCell over a whole sequence, elapsed time 1), forward and backward.
//
// The cell is a stack of CfC layers; at step t layer l reads the new state of layer l - 1 (the input
// x[t] for l = 0) and its own previous state, col = [input, h_l]:
//   z      = W_l col + b_l     W_l = [ff1 * mask; ff2 * mask; time_a; time_b], (4 H_l, I_l + H_l)
//   ff1    = tanh(z[0:H]),  ff2 = tanh(z[H:2H]),  gate = sigmoid(z[2H:3H] + z[3H:4H])
//   h_l   <- ff1 * (1 - gate) + gate * ff2     (mode "default")
//   h_l   <- ff1 + gate * ff2                  (mode "no_gate")
// ncps runs this as a dozen small tensor operations per layer and step; here one C++ call runs the
// sequence each way. Samples are processed in blocks of BLOCK with the batch index innermost, so the
// inner loops run over BLOCK contiguous values and vectorise (`omp simd`, fastmath.h). Masking and
// stacking the four weight matrices of a layer stay in Python (autograd).
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>
#include "blocks.h"
#include "fastmath.h"

namespace {

using blocks::BLOCK;
using blocks::blocks_of;

// Sizes of the layers: layer l reads `in[l]` inputs and has `hidden[l]` neurons at state offset
// `offset[l]`; its weights start at `weight_at[l]` in the flat parameter-gradient row.
struct Layout {
  std::vector<int64_t> in, hidden, offset, weight_at;
  int64_t units = 0, params = 0;
  explicit Layout(const std::vector<torch::Tensor>& weights) {
    for (const auto& w : weights) {
      const int64_t h = w.size(0) / 4;
      in.push_back(w.size(1) - h);
      hidden.push_back(h);
      offset.push_back(units);
      weight_at.push_back(params);
      units += h;
      params += w.size(0) * (w.size(1) + 1);  // weights, then biases
    }
  }
  int64_t layers() const { return static_cast<int64_t>(hidden.size()); }
};

// z (4H x BLOCK) = W col + b, col the layer's input rows followed by its state rows.
template <typename scalar_t>
void affine(const scalar_t* w, const scalar_t* bias, const scalar_t* in, int64_t n_in, const scalar_t* h, int64_t n_h,
            int64_t rows, scalar_t* z) {
  for (int64_t o = 0; o < rows; ++o) {
    scalar_t* zo = z + o * BLOCK;
#pragma omp simd
    for (int64_t b = 0; b < BLOCK; ++b) zo[b] = bias[o];
    const scalar_t* wo = w + o * (n_in + n_h);
    for (int64_t i = 0; i < n_in + n_h; ++i) {
      const scalar_t* col = i < n_in ? in + i * BLOCK : h + (i - n_in) * BLOCK;
      const scalar_t wi = wo[i];
#pragma omp simd
      for (int64_t b = 0; b < BLOCK; ++b) zo[b] += wi * col[b];
    }
  }
}

template <typename scalar_t>
std::vector<torch::Tensor> forward_impl(const torch::Tensor& x, const torch::Tensor& h0,
                                        const std::vector<torch::Tensor>& weights,
                                        const std::vector<torch::Tensor>& biases, bool gated) {
  const Layout layout(weights);
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), U = layout.units, NB = blocks_of(B), L = layout.layers();
  const int64_t H_out = layout.hidden.back(), out_at = layout.offset.back();
  auto outputs = torch::empty({T, B, H_out}, x.options());
  auto states = torch::empty({NB, T + 1, U, BLOCK}, x.options());    // the state entering every step
  auto acts = torch::empty({NB, T, 3 * U, BLOCK}, x.options());      // ff1, ff2, gate of every layer
  const scalar_t *xs = x.data_ptr<scalar_t>(), *h = h0.data_ptr<scalar_t>();
  const scalar_t keep = gated ? 1 : 0;  // 1 - keep * gate: exactly either form, without a branch
  scalar_t* out = outputs.data_ptr<scalar_t>();
  at::parallel_for(0, NB, 1, [&](int64_t block_begin, int64_t block_end) {
    std::vector<scalar_t> input(I * BLOCK, scalar_t(0)), z(4 * U * BLOCK);
    for (int64_t nb = block_begin; nb < block_end; ++nb) {
      const int64_t b0 = nb * BLOCK, n = std::min(BLOCK, B - b0);
      scalar_t* st = states.data_ptr<scalar_t>() + nb * (T + 1) * U * BLOCK;
      scalar_t* act = acts.data_ptr<scalar_t>() + nb * T * 3 * U * BLOCK;
      std::fill(st, st + U * BLOCK, scalar_t(0));  // padded lanes stay finite zeros
      blocks::to_block(&h[b0 * U], U, n, &st[0]);
      for (int64_t t = 0; t < T; ++t) {
        blocks::to_block(&xs[(t * B + b0) * I], I, n, &input[0]);
        const scalar_t* previous = st + t * U * BLOCK;
        scalar_t* next = st + (t + 1) * U * BLOCK;
        for (int64_t l = 0; l < L; ++l) {
          const int64_t H = layout.hidden[l], at = layout.offset[l];
          const scalar_t* in = l == 0 ? input.data() : next + layout.offset[l - 1] * BLOCK;
          affine(weights[l].data_ptr<scalar_t>(), biases[l].data_ptr<scalar_t>(), in, layout.in[l],
                 previous + at * BLOCK, H, 4 * H, z.data());
          scalar_t *ff1 = act + (t * 3 * U + 3 * at) * BLOCK, *ff2 = ff1 + H * BLOCK, *gate = ff2 + H * BLOCK;
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t *z1 = &z[j * BLOCK], *z2 = &z[(H + j) * BLOCK], *za = &z[(2 * H + j) * BLOCK],
                           *zb = &z[(3 * H + j) * BLOCK];
            scalar_t *f1 = ff1 + j * BLOCK, *f2 = ff2 + j * BLOCK, *g = gate + j * BLOCK, *hn = next + (at + j) * BLOCK;
#pragma omp simd
            for (int64_t b = 0; b < BLOCK; ++b) {
              f1[b] = fastmath::tanh(z1[b]);
              f2[b] = fastmath::tanh(z2[b]);
              g[b] = fastmath::sigmoid(za[b] + zb[b]);
              hn[b] = f1[b] * (scalar_t(1) - keep * g[b]) + g[b] * f2[b];
            }
          }
        }
        blocks::from_block(&next[out_at * BLOCK], H_out, n, &out[(t * B + b0) * H_out]);
      }
    }
  });
  return {outputs, states, acts};
}

template <typename scalar_t>
std::vector<torch::Tensor> backward_impl(const torch::Tensor& grad_outputs, const torch::Tensor& x,
                                         const torch::Tensor& states, const torch::Tensor& acts,
                                         const std::vector<torch::Tensor>& weights, bool gated) {
  const Layout layout(weights);
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), U = layout.units, NB = blocks_of(B), L = layout.layers();
  const int64_t H_out = layout.hidden.back(), out_at = layout.offset.back(), P = layout.params;
  auto g_x = torch::zeros_like(x);
  auto g_h0 = torch::zeros({B, U}, x.options());
  // Parameter gradients are sums over the batch: one row per block, added in block order at the end
  // so the result does not depend on the number of threads.
  auto per_block = torch::zeros({NB, P}, x.options());
  const scalar_t *gout = grad_outputs.data_ptr<scalar_t>(), *xs = x.data_ptr<scalar_t>();
  const scalar_t keep = gated ? 1 : 0;
  scalar_t *gx = g_x.data_ptr<scalar_t>(), *gh0 = g_h0.data_ptr<scalar_t>();
  at::parallel_for(0, NB, 1, [&](int64_t block_begin, int64_t block_end) {
    std::vector<scalar_t> input(I * BLOCK, scalar_t(0)), g_input(I * BLOCK), gh(U * BLOCK), carry(U * BLOCK),
        dz(4 * U * BLOCK), acc(P * BLOCK);  // per-lane parameter sums, reduced over the lanes once per block
    for (int64_t nb = block_begin; nb < block_end; ++nb) {
      const int64_t b0 = nb * BLOCK, n = std::min(BLOCK, B - b0);
      const scalar_t* st = states.data_ptr<scalar_t>() + nb * (T + 1) * U * BLOCK;
      const scalar_t* act = acts.data_ptr<scalar_t>() + nb * T * 3 * U * BLOCK;
      std::fill(acc.begin(), acc.end(), scalar_t(0));
      std::fill(carry.begin(), carry.end(), scalar_t(0));
      for (int64_t t = T - 1; t >= 0; --t) {
        blocks::to_block(&xs[(t * B + b0) * I], I, n, &input[0]);
        gh = carry;  // from step t + 1 through each layer's own state
        blocks::add_to_block(&gout[(t * B + b0) * H_out], H_out, n, &gh[out_at * BLOCK]);
        const scalar_t* previous = st + t * U * BLOCK;
        const scalar_t* next = st + (t + 1) * U * BLOCK;
        for (int64_t l = L - 1; l >= 0; --l) {  // a layer's gradient is complete once the layer above is done
          const int64_t H = layout.hidden[l], at = layout.offset[l], n_in = layout.in[l], cols = n_in + H;
          const scalar_t* in = l == 0 ? input.data() : next + layout.offset[l - 1] * BLOCK;
          const scalar_t* h_prev = previous + at * BLOCK;
          const scalar_t *ff1 = act + (t * 3 * U + 3 * at) * BLOCK, *ff2 = ff1 + H * BLOCK, *gate = ff2 + H * BLOCK;
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t *f1 = ff1 + j * BLOCK, *f2 = ff2 + j * BLOCK, *g = gate + j * BLOCK, *gj = &gh[(at + j) * BLOCK];
            scalar_t *d1 = &dz[j * BLOCK], *d2 = &dz[(H + j) * BLOCK], *da = &dz[(2 * H + j) * BLOCK],
                     *db = &dz[(3 * H + j) * BLOCK];
#pragma omp simd
            for (int64_t b = 0; b < BLOCK; ++b) {
              const scalar_t d_f1 = gj[b] * (scalar_t(1) - keep * g[b]);
              const scalar_t d_gate = gj[b] * (f2[b] - keep * f1[b]);
              d1[b] = d_f1 * (scalar_t(1) - f1[b] * f1[b]);
              d2[b] = gj[b] * g[b] * (scalar_t(1) - f2[b] * f2[b]);
              da[b] = d_gate * g[b] * (scalar_t(1) - g[b]);
              db[b] = da[b];
            }
          }
          // Weight and bias sums, and the gradient of the layer's input (col) rows.
          scalar_t* a_w = &acc[layout.weight_at[l] * BLOCK];
          scalar_t* a_b = a_w + 4 * H * cols * BLOCK;
          scalar_t* g_in = l == 0 ? g_input.data() : &gh[layout.offset[l - 1] * BLOCK];
          scalar_t* g_hidden = &carry[at * BLOCK];
          if (l == 0) std::fill(g_input.begin(), g_input.end(), scalar_t(0));
          std::fill(g_hidden, g_hidden + H * BLOCK, scalar_t(0));
          const scalar_t* w = weights[l].data_ptr<scalar_t>();
          for (int64_t o = 0; o < 4 * H; ++o) {
            const scalar_t* d = &dz[o * BLOCK];
            scalar_t* ab = a_b + o * BLOCK;
#pragma omp simd
            for (int64_t b = 0; b < BLOCK; ++b) ab[b] += d[b];
            for (int64_t i = 0; i < cols; ++i) {
              const scalar_t* col = i < n_in ? in + i * BLOCK : h_prev + (i - n_in) * BLOCK;
              scalar_t* gcol = i < n_in ? g_in + i * BLOCK : g_hidden + (i - n_in) * BLOCK;
              scalar_t* aw = a_w + (o * cols + i) * BLOCK;
              const scalar_t wi = w[o * cols + i];
#pragma omp simd
              for (int64_t b = 0; b < BLOCK; ++b) {
                aw[b] += d[b] * col[b];
                gcol[b] += wi * d[b];
              }
            }
          }
        }
        blocks::from_block(&g_input[0], I, n, &gx[(t * B + b0) * I]);
      }
      blocks::from_block(&carry[0], U, n, &gh0[b0 * U]);
      scalar_t* row = per_block.data_ptr<scalar_t>() + nb * P;
      blocks::add_block_sums(&acc[0], P, n, row);
    }
  });
  auto sums = per_block.sum(0);
  std::vector<torch::Tensor> grads{g_x, g_h0};
  for (int64_t l = 0; l < L; ++l) {
    const int64_t rows = weights[l].size(0), cols = weights[l].size(1), at = layout.weight_at[l];
    grads.push_back(sums.narrow(0, at, rows * cols).view({rows, cols}).clone());
    grads.push_back(sums.narrow(0, at + rows * cols, rows).clone());
  }
  return grads;
}

}  // namespace

// x: (T, B, I); h0: (B, U); per layer, weights (4 H_l, I_l + H_l) and biases (4 H_l). Returns the
// last layer's state after each step (T, B, H_last) and, for the backward pass, the state entering
// every step (blocks, T + 1, U, BLOCK) and the activations (blocks, T, 3 U, BLOCK).
std::vector<torch::Tensor> cfc_forward(torch::Tensor x, torch::Tensor h0, std::vector<torch::Tensor> weights,
                                       std::vector<torch::Tensor> biases, bool gated) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cfc_forward",
                             [&] { result = forward_impl<scalar_t>(x, h0, weights, biases, gated); });
  return result;
}

// Returns the gradients of x, h0, then weights and biases of each layer in turn.
std::vector<torch::Tensor> cfc_backward(torch::Tensor grad_outputs, torch::Tensor x, torch::Tensor states,
                                        torch::Tensor acts, std::vector<torch::Tensor> weights, bool gated) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cfc_backward",
                             [&] { result = backward_impl<scalar_t>(grad_outputs, x, states, acts, weights, gated); });
  return result;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &cfc_forward, "fused wired CfC over a sequence");
  m.def("backward", &cfc_backward, "gradient of the fused wired CfC");
}
