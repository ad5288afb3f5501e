// Fused LTC (ncps LTCCell over a whole sequence), forward and backward, sensory synapses included.
//
// Only the synapses that the wiring keeps are visited (ncps multiplies dense matrices by a 0/1
// mask, so the skipped terms are exact zeros). Per step t, for every neuron j:
//   sensory  a_s = w_s * sigmoid(sigma_s * (x[t, src_s] - mu_s))  over kept sensory synapses s -> j
//            snum_j = sum_s a_s * erev_s,  sden_j = sum_s a_s
// then per unfold k:
//   a_s      = w_s * sigmoid(sigma_s * (v[src_s] - mu_s))           over kept synapses s -> j
//   num_j    = cm_t_j * v_j + gleak_j * vleak_j + sum_s a_s * erev_s + snum_j
//   den_j    = cm_t_j + gleak_j + sum_s a_s + sden_j
//   v_j     <- num_j / (den_j + eps)
// Samples are processed in blocks of BLOCK, the batch index innermost, so that the inner loops run
// over BLOCK contiguous values and vectorise (`omp simd`, fastmath.h). Softplus of the positive
// parameters, the masks and the input/output affine maps stay in Python (autograd).
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>
#include "blocks.h"
#include "fastmath.h"
#if defined(__x86_64__) || defined(_M_X64)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

namespace {

using blocks::BLOCK;
using blocks::blocks_of;

// Values decay towards tiny magnitudes over many unfolds; denormal arithmetic is ~100x slower on
// x86, so flush them to zero inside the kernel and restore the caller's mode afterwards.
struct FlushDenormals {
#if defined(__x86_64__) || defined(_M_X64)
  unsigned int saved;
  FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040); }
  ~FlushDenormals() { _mm_setcsr(saved); }
#endif
};

// One synapse population (sensory or recurrent): endpoints and parameters gathered from the dense
// (rows x U) matrices at the kept entries.
template <typename scalar_t>
struct Synapses {
  std::vector<int64_t> src, dst;
  std::vector<scalar_t> w, mu, sigma, erev;
  Synapses(const torch::Tensor& from, const torch::Tensor& to, const torch::Tensor& w_, const torch::Tensor& mu_,
           const torch::Tensor& sigma_, const torch::Tensor& erev_) {
    const int64_t n = from.size(0), U = w_.size(1);
    const int64_t *f = from.data_ptr<int64_t>(), *t = to.data_ptr<int64_t>();
    for (int64_t s = 0; s < n; ++s) {
      const int64_t at = f[s] * U + t[s];
      src.push_back(f[s]);
      dst.push_back(t[s]);
      w.push_back(w_.data_ptr<scalar_t>()[at]);
      mu.push_back(mu_.data_ptr<scalar_t>()[at]);
      sigma.push_back(sigma_.data_ptr<scalar_t>()[at]);
      erev.push_back(erev_.data_ptr<scalar_t>()[at]);
    }
  }
  int64_t size() const { return static_cast<int64_t>(src.size()); }
};

// Forward through a synapse population for one block: each synapse's gate from its presynaptic
// values pre (rows x BLOCK) into gates (S x BLOCK), its current added to the postsynaptic
// numerator and denominator sums (U x BLOCK).
template <typename scalar_t>
void synapses_forward(const Synapses<scalar_t>& syn, const scalar_t* pre, scalar_t* gates, scalar_t* num,
                      scalar_t* den) {
  for (int64_t s = 0; s < syn.size(); ++s) {
    const scalar_t* in = pre + syn.src[s] * BLOCK;
    scalar_t *g = gates + s * BLOCK, *nu = num + syn.dst[s] * BLOCK, *de = den + syn.dst[s] * BLOCK;
    const scalar_t ws = syn.w[s], ms = syn.mu[s], gs = syn.sigma[s], es = syn.erev[s];
    #pragma omp simd
    for (int64_t b = 0; b < BLOCK; ++b) {
      g[b] = fastmath::sigmoid(gs * (in[b] - ms));
      nu[b] += ws * g[b] * es;
      de[b] += ws * g[b];
    }
  }
}

// The denominator sums again (U x BLOCK) from saved gates: the backward pass needs no exponential.
template <typename scalar_t>
void synapses_denominator(const Synapses<scalar_t>& syn, const scalar_t* gates, scalar_t* den) {
  for (int64_t s = 0; s < syn.size(); ++s) {
    const scalar_t* g = gates + s * BLOCK;
    scalar_t* de = den + syn.dst[s] * BLOCK;
    #pragma omp simd
    for (int64_t b = 0; b < BLOCK; ++b) de[b] += syn.w[s] * g[b];
  }
}

// Backward through a synapse population for one block, from the gradients of the postsynaptic
// numerator and denominator (dnum, dden: U x BLOCK): adds the per-lane parameter gradient sums
// (acc: w, mu, sigma, erev, each S x BLOCK) and the presynaptic values' gradient (g_pre).
template <typename scalar_t>
void synapses_backward(const Synapses<scalar_t>& syn, const scalar_t* pre, const scalar_t* gates, const scalar_t* dnum,
                       const scalar_t* dden, scalar_t* g_pre, scalar_t* acc) {
  const int64_t S = syn.size();
  scalar_t *a_w = acc, *a_mu = acc + S * BLOCK, *a_sig = acc + 2 * S * BLOCK, *a_ev = acc + 3 * S * BLOCK;
  for (int64_t s = 0; s < S; ++s) {
    const scalar_t *g = gates + s * BLOCK, *in = pre + syn.src[s] * BLOCK;
    const scalar_t *dn = dnum + syn.dst[s] * BLOCK, *dd = dden + syn.dst[s] * BLOCK;
    scalar_t* gin = g_pre + syn.src[s] * BLOCK;
    const scalar_t ws = syn.w[s], ms = syn.mu[s], gs = syn.sigma[s], es = syn.erev[s];
    const int64_t o = s * BLOCK;
    #pragma omp simd
    for (int64_t b = 0; b < BLOCK; ++b) {
      const scalar_t da = dn[b] * es + dd[b];
      const scalar_t dz = da * ws * g[b] * (scalar_t(1) - g[b]);
      a_ev[o + b] += dn[b] * ws * g[b];
      a_w[o + b] += da * g[b];
      a_sig[o + b] += dz * (in[b] - ms);
      a_mu[o + b] -= dz * gs;
      gin[b] += dz * gs;
    }
  }
}

}  // namespace

// x: (T, B, I) mapped inputs; h0: (B, U); dense sensory (I, U) and recurrent (U, U) parameters (w
// positive and masked); cm_t, gleak, vleak: (U); kept synapses as index lists (int64).
// Returns the state after each step (T, B, U) and, for the backward pass, the state entering every
// unfold (blocks, T * K + 1, U, BLOCK), every recurrent gate (blocks, T * K, S, BLOCK) and every
// sensory gate (blocks, T, S_sensory, BLOCK): the backward pass computes no exponential.
template <typename scalar_t>
std::vector<torch::Tensor> forward_impl(const std::vector<torch::Tensor>& t, int64_t unfolds, double eps) {
  const torch::Tensor &x = t[0], &h0 = t[1], &s_w = t[2], &s_mu = t[3], &s_sigma = t[4], &s_erev = t[5];
  const torch::Tensor &w = t[6], &mu = t[7], &sigma = t[8], &erev = t[9], &cm_t = t[10], &gleak = t[11];
  const torch::Tensor &vleak = t[12], &s_src = t[13], &s_dst = t[14], &r_src = t[15], &r_dst = t[16];
  FlushDenormals flush;
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), U = h0.size(1), K = unfolds, NB = blocks_of(B);
  auto outputs = torch::empty({T, B, U}, x.options());
  auto states = torch::empty({NB, T * K + 1, U, BLOCK}, x.options());
  auto gates = torch::empty({NB, T * K, r_src.size(0), BLOCK}, x.options());
  auto sensory_gates = torch::empty({NB, T, s_src.size(0), BLOCK}, x.options());
  {
    const Synapses<scalar_t> sens(s_src, s_dst, s_w, s_mu, s_sigma, s_erev), rec(r_src, r_dst, w, mu, sigma, erev);
    const int64_t SS = sens.size(), S = rec.size();
    const scalar_t *xs = x.data_ptr<scalar_t>(), *h = h0.data_ptr<scalar_t>();
    const scalar_t *cm = cm_t.data_ptr<scalar_t>(), *gl = gleak.data_ptr<scalar_t>(), *vl = vleak.data_ptr<scalar_t>();
    scalar_t* out = outputs.data_ptr<scalar_t>();
    at::parallel_for(0, NB, 1, [&](int64_t block_begin, int64_t block_end) {
      std::vector<scalar_t> input(I * BLOCK), snum(U * BLOCK), sden(U * BLOCK), num(U * BLOCK), den(U * BLOCK);
      for (int64_t nb = block_begin; nb < block_end; ++nb) {
        const int64_t b0 = nb * BLOCK, n = std::min(BLOCK, B - b0);
        scalar_t* st = states.data_ptr<scalar_t>() + nb * (T * K + 1) * U * BLOCK;
        scalar_t* gate = gates.data_ptr<scalar_t>() + nb * T * K * S * BLOCK;
        scalar_t* sgate = sensory_gates.data_ptr<scalar_t>() + nb * T * SS * BLOCK;
        std::fill(st, st + U * BLOCK, scalar_t(0));  // padded lanes stay finite zeros
        std::fill(input.begin(), input.end(), scalar_t(0));
        blocks::to_block(&h[b0 * U], U, n, &st[0]);
        for (int64_t t = 0; t < T; ++t) {
          blocks::to_block(&xs[(t * B + b0) * I], I, n, &input[0]);
          std::fill(snum.begin(), snum.end(), scalar_t(0));
          std::fill(sden.begin(), sden.end(), scalar_t(0));
          synapses_forward(sens, input.data(), sgate + t * SS * BLOCK, snum.data(), sden.data());
          for (int64_t k = 0; k < K; ++k) {
            const int64_t step = t * K + k;
            const scalar_t* v = st + step * U * BLOCK;
            scalar_t* next = st + (step + 1) * U * BLOCK;
            for (int64_t j = 0; j < U; ++j)
              #pragma omp simd
              for (int64_t b = 0; b < BLOCK; ++b) {
                num[j * BLOCK + b] = cm[j] * v[j * BLOCK + b] + gl[j] * vl[j] + snum[j * BLOCK + b];
                den[j * BLOCK + b] = cm[j] + gl[j] + sden[j * BLOCK + b];
              }
            synapses_forward(rec, v, gate + step * S * BLOCK, num.data(), den.data());
            for (int64_t j = 0; j < U * BLOCK; ++j) next[j] = num[j] / (den[j] + scalar_t(eps));
          }
          const scalar_t* last = st + (t + 1) * K * U * BLOCK;
          blocks::from_block(&last[0], U, n, &out[(t * B + b0) * U]);
        }
      }
    });
  }
  return {outputs, states, gates, sensory_gates};
}

// grad_outputs: (T, B, U), the gradient w.r.t. the state after each step. Returns the gradients of
// x, h0, the dense sensory (I, U) w, mu, sigma, erev, the dense recurrent (U, U) w, mu, sigma,
// erev, and cm_t, gleak, vleak, in the order of forward_impl's tensors.
template <typename scalar_t>
std::vector<torch::Tensor> backward_impl(const std::vector<torch::Tensor>& t, int64_t unfolds, double eps) {
  const torch::Tensor &grad_outputs = t[0], &x = t[1], &states = t[2], &gates = t[3], &sensory_gates = t[4];
  const torch::Tensor &s_w = t[5], &s_mu = t[6], &s_sigma = t[7], &s_erev = t[8], &w = t[9], &mu = t[10];
  const torch::Tensor &sigma = t[11], &erev = t[12], &cm_t = t[13], &gleak = t[14], &vleak = t[15];
  const torch::Tensor &s_src = t[16], &s_dst = t[17], &r_src = t[18], &r_dst = t[19];
  FlushDenormals flush;
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), U = cm_t.size(0), K = unfolds, NB = blocks_of(B);
  const int64_t SS = s_src.size(0), S = r_src.size(0);
  auto g_x = torch::zeros_like(x);
  auto g_h0 = torch::zeros({B, U}, x.options());
  // Parameter gradients are sums over the batch: one row per block, added in block order at the end
  // so the result does not depend on the number of threads. Layout: 4 x SS, 4 x S, 3 x U.
  const int64_t P = 4 * SS + 4 * S + 3 * U;
  auto per_block = torch::zeros({NB, P}, x.options());
  {
    const Synapses<scalar_t> sens(s_src, s_dst, s_w, s_mu, s_sigma, s_erev), rec(r_src, r_dst, w, mu, sigma, erev);
    const scalar_t *gout = grad_outputs.data_ptr<scalar_t>(), *xs = x.data_ptr<scalar_t>();
    const scalar_t *cm = cm_t.data_ptr<scalar_t>(), *gl = gleak.data_ptr<scalar_t>(), *vl = vleak.data_ptr<scalar_t>();
    scalar_t *gx = g_x.data_ptr<scalar_t>(), *gh = g_h0.data_ptr<scalar_t>();
    at::parallel_for(0, NB, 1, [&](int64_t block_begin, int64_t block_end) {
      std::vector<scalar_t> input(I * BLOCK), g_input(I * BLOCK), sden(U * BLOCK), den(U * BLOCK), gv(U * BLOCK),
          gv_prev(U * BLOCK), dnum(U * BLOCK), dden(U * BLOCK), g_snum(U * BLOCK), g_sden(U * BLOCK),
          acc(P * BLOCK);  // per-lane parameter sums, reduced over the lanes once per block
      for (int64_t nb = block_begin; nb < block_end; ++nb) {
        const int64_t b0 = nb * BLOCK, n = std::min(BLOCK, B - b0);
        const scalar_t* st = states.data_ptr<scalar_t>() + nb * (T * K + 1) * U * BLOCK;
        const scalar_t* gate = gates.data_ptr<scalar_t>() + nb * T * K * S * BLOCK;
        const scalar_t* sgate = sensory_gates.data_ptr<scalar_t>() + nb * T * SS * BLOCK;
        // acc rows: sensory w, mu, sigma, erev (SS each), recurrent w, mu, sigma, erev (S each), cm, gleak, vleak.
        scalar_t *a_sensory = acc.data(), *a_recurrent = a_sensory + 4 * SS * BLOCK;
        scalar_t *a_cm = a_recurrent + 4 * S * BLOCK, *a_gl = a_cm + U * BLOCK, *a_vl = a_gl + U * BLOCK;
        std::fill(acc.begin(), acc.end(), scalar_t(0));
        std::fill(gv.begin(), gv.end(), scalar_t(0));
        std::fill(input.begin(), input.end(), scalar_t(0));
        for (int64_t t = T - 1; t >= 0; --t) {
          blocks::add_to_block(&gout[(t * B + b0) * U], U, n, &gv[0]);
          blocks::to_block(&xs[(t * B + b0) * I], I, n, &input[0]);
          std::fill(sden.begin(), sden.end(), scalar_t(0));
          synapses_denominator(sens, sgate + t * SS * BLOCK, sden.data());
          std::fill(g_snum.begin(), g_snum.end(), scalar_t(0));
          std::fill(g_sden.begin(), g_sden.end(), scalar_t(0));
          for (int64_t k = K - 1; k >= 0; --k) {
            const int64_t step = t * K + k;
            const scalar_t* v = st + step * U * BLOCK;
            const scalar_t* next = st + (step + 1) * U * BLOCK;
            const scalar_t* g_step = gate + step * S * BLOCK;
            // The denominators of this unfold from the saved gates (the numerators are next * den).
            for (int64_t j = 0; j < U; ++j)
              #pragma omp simd
              for (int64_t b = 0; b < BLOCK; ++b) den[j * BLOCK + b] = cm[j] + gl[j] + sden[j * BLOCK + b];
            synapses_denominator(rec, g_step, den.data());
            for (int64_t j = 0; j < U; ++j)
              #pragma omp simd
              for (int64_t b = 0; b < BLOCK; ++b) {
                const int64_t at = j * BLOCK + b;
                const scalar_t d = den[at] + scalar_t(eps);
                dnum[at] = gv[at] / d;
                dden[at] = -gv[at] * next[at] / d;
                a_cm[at] += dnum[at] * v[at] + dden[at];
                a_gl[at] += dnum[at] * vl[j] + dden[at];
                a_vl[at] += dnum[at] * gl[j];
                g_snum[at] += dnum[at];
                g_sden[at] += dden[at];
                gv_prev[at] = dnum[at] * cm[j];
              }
            synapses_backward(rec, v, g_step, dnum.data(), dden.data(), gv_prev.data(), a_recurrent);
            std::swap(gv, gv_prev);
          }
          std::fill(g_input.begin(), g_input.end(), scalar_t(0));
          synapses_backward(sens, input.data(), sgate + t * SS * BLOCK, g_snum.data(), g_sden.data(), g_input.data(),
                            a_sensory);
          blocks::from_block(&g_input[0], I, n, &gx[(t * B + b0) * I]);
        }
        blocks::from_block(&gv[0], U, n, &gh[b0 * U]);
        scalar_t* row = per_block.data_ptr<scalar_t>() + nb * P;
        blocks::add_block_sums(&acc[0], P, n, row);
      }
    });
  }
  // Sum the blocks, then scatter the per-synapse sums into dense gradients of the (I, U) / (U, U)
  // parameter matrices (entries of dropped synapses get zero, as through ncps' mask).
  auto sums = per_block.sum(0);
  auto dense = [&](const torch::Tensor& like, const torch::Tensor& src, const torch::Tensor& dst, int64_t offset,
                   int64_t count) {
    auto grad = torch::zeros_like(like);
    grad.index_put_({src, dst}, sums.narrow(0, offset, count));
    return grad;
  };
  const int64_t r0 = 4 * SS, n0 = r0 + 4 * S;
  return {g_x, g_h0,
          dense(s_w, s_src, s_dst, 0, SS), dense(s_mu, s_src, s_dst, SS, SS), dense(s_sigma, s_src, s_dst, 2 * SS, SS),
          dense(s_erev, s_src, s_dst, 3 * SS, SS),
          dense(w, r_src, r_dst, r0, S), dense(mu, r_src, r_dst, r0 + S, S), dense(sigma, r_src, r_dst, r0 + 2 * S, S),
          dense(erev, r_src, r_dst, r0 + 3 * S, S),
          sums.narrow(0, n0, U).clone(), sums.narrow(0, n0 + U, U).clone(), sums.narrow(0, n0 + 2 * U, U).clone()};
}

// The tensors of forward_impl / backward_impl in their order (kernels/ltc.py passes them so); the
// implementation for their dtype runs.
std::vector<torch::Tensor> ltc_forward(std::vector<torch::Tensor> tensors, int64_t unfolds, double eps) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(tensors[0].scalar_type(), "ltc_forward",
                             [&] { result = forward_impl<scalar_t>(tensors, unfolds, eps); });
  return result;
}

std::vector<torch::Tensor> ltc_backward(std::vector<torch::Tensor> tensors, int64_t unfolds, double eps) {
  std::vector<torch::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(tensors[0].scalar_type(), "ltc_backward",
                             [&] { result = backward_impl<scalar_t>(tensors, unfolds, eps); });
  return result;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &ltc_forward, "fused LTC over a sequence");
  m.def("backward", &ltc_backward, "gradient of the fused LTC");
}
