// Fused LTC recurrence (ncps LTCCell._ode_solver over a whole sequence), forward and backward.
//
// Only the synapses that the wiring keeps are visited (ncps multiplies dense matrices by a 0/1
// mask, so the skipped terms are exact zeros). Per step t and unfold k, for every neuron j:
//   a_s      = w_s * sigmoid(sigma_s * (v[src_s] - mu_s))           for each kept synapse s -> j
//   num_j    = cm_t_j * v_j + gleak_j * vleak_j + sum_s a_s * erev_s + sensory_num[t, j]
//   den_j    = cm_t_j + gleak_j + sum_s a_s + sensory_den[t, j]
//   v_j     <- num_j / (den_j + eps)
// The sensory sums, softplus of the positive parameters and the gathers of the synapse lists are
// done by autograd in Python; this file only removes the per-operation overhead of the unfolds.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <vector>
#if defined(__x86_64__) || defined(_M_X64)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

namespace {

// Values decay towards tiny magnitudes over many unfolds; denormal arithmetic is ~100x slower on
// x86, so flush them to zero inside the kernel and restore the caller's mode afterwards.
struct FlushDenormals {
#if defined(__x86_64__) || defined(_M_X64)
  unsigned int saved;
  FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040); }
  ~FlushDenormals() { _mm_setcsr(saved); }
#endif
};

template <typename scalar_t>
inline scalar_t sigmoid(scalar_t x) { return scalar_t(1) / (scalar_t(1) + std::exp(-x)); }

}  // namespace

// sensory_num, sensory_den: (T, B, U); h0: (B, U); per-neuron: cm_t, gleak, vleak (U);
// per-synapse: src, dst (S, int64), w (positive), mu, sigma, erev (S).
// Returns the state entering every unfold, (T * K + 1, B, U) (the last one is the final state), and
// every synapse's sigmoid gate, (T * K, B, S), so the backward pass needs no exponential.
std::vector<torch::Tensor> ltc_forward(torch::Tensor sensory_num, torch::Tensor sensory_den, torch::Tensor h0,
                          torch::Tensor cm_t, torch::Tensor gleak, torch::Tensor vleak, torch::Tensor src,
                          torch::Tensor dst, torch::Tensor w, torch::Tensor mu, torch::Tensor sigma,
                          torch::Tensor erev, int64_t unfolds, double eps) {
  FlushDenormals flush;
  const int64_t T = sensory_num.size(0), B = sensory_num.size(1), U = sensory_num.size(2), S = src.size(0);
  auto states = torch::empty({T * unfolds + 1, B, U}, sensory_num.options());
  auto gates = torch::empty({T * unfolds, B, S}, sensory_num.options());
  states[0].copy_(h0);
  AT_DISPATCH_FLOATING_TYPES(sensory_num.scalar_type(), "ltc_forward", [&] {
    const scalar_t *snum = sensory_num.data_ptr<scalar_t>(), *sden = sensory_den.data_ptr<scalar_t>();
    const scalar_t *cm = cm_t.data_ptr<scalar_t>(), *gl = gleak.data_ptr<scalar_t>(), *vl = vleak.data_ptr<scalar_t>();
    const scalar_t *ws = w.data_ptr<scalar_t>(), *mus = mu.data_ptr<scalar_t>(), *sig = sigma.data_ptr<scalar_t>(),
                   *ev = erev.data_ptr<scalar_t>();
    const int64_t *from = src.data_ptr<int64_t>(), *to = dst.data_ptr<int64_t>();
    scalar_t* out = states.data_ptr<scalar_t>();
    scalar_t* gate = gates.data_ptr<scalar_t>();
    at::parallel_for(0, B, 8, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> num(U), den(U);
      for (int64_t b = begin; b < end; ++b) {
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t k = 0; k < unfolds; ++k) {
            const int64_t step = t * unfolds + k;
            const scalar_t* v = out + (step * B + b) * U;
            scalar_t* next = out + ((step + 1) * B + b) * U;
            for (int64_t j = 0; j < U; ++j) {
              num[j] = cm[j] * v[j] + gl[j] * vl[j] + snum[(t * B + b) * U + j];
              den[j] = cm[j] + gl[j] + sden[(t * B + b) * U + j];
            }
            scalar_t* g = gate + (step * B + b) * S;
            for (int64_t s = 0; s < S; ++s) {
              g[s] = sigmoid(sig[s] * (v[from[s]] - mus[s]));
              const scalar_t a = ws[s] * g[s];
              num[to[s]] += a * ev[s];
              den[to[s]] += a;
            }
            for (int64_t j = 0; j < U; ++j) next[j] = num[j] / (den[j] + scalar_t(eps));
          }
        }
      }
    });
  });
  return {states, gates};
}

// grad_outputs: (T, B, U), the gradient w.r.t. the state after each step.
// Returns grads of sensory_num, sensory_den, h0, cm_t, gleak, vleak, w, mu, sigma, erev.
std::vector<torch::Tensor> ltc_backward(torch::Tensor grad_outputs, torch::Tensor states, torch::Tensor gates,
                                        torch::Tensor sensory_num,
                                        torch::Tensor sensory_den, torch::Tensor cm_t, torch::Tensor gleak,
                                        torch::Tensor vleak, torch::Tensor src, torch::Tensor dst, torch::Tensor w,
                                        torch::Tensor mu, torch::Tensor sigma, torch::Tensor erev, int64_t unfolds,
                                        double eps) {
  FlushDenormals flush;
  const int64_t T = sensory_num.size(0), B = sensory_num.size(1), U = sensory_num.size(2), S = src.size(0);
  auto g_snum = torch::zeros_like(sensory_num), g_sden = torch::zeros_like(sensory_num);
  auto g_h0 = torch::zeros({B, U}, sensory_num.options());
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), B));
  // Parameter gradients are summed over the batch: one buffer per chunk, added at the end.
  auto g_neuron = torch::zeros({chunks, 3, U}, sensory_num.options());
  auto g_synapse = torch::zeros({chunks, 4, S}, sensory_num.options());
  AT_DISPATCH_FLOATING_TYPES(sensory_num.scalar_type(), "ltc_backward", [&] {
    const scalar_t *gout = grad_outputs.data_ptr<scalar_t>(), *st = states.data_ptr<scalar_t>(),
                   *gate = gates.data_ptr<scalar_t>();
    const scalar_t *snum = sensory_num.data_ptr<scalar_t>(), *sden = sensory_den.data_ptr<scalar_t>();
    const scalar_t *cm = cm_t.data_ptr<scalar_t>(), *gl = gleak.data_ptr<scalar_t>(), *vl = vleak.data_ptr<scalar_t>();
    const scalar_t *ws = w.data_ptr<scalar_t>(), *mus = mu.data_ptr<scalar_t>(), *sig = sigma.data_ptr<scalar_t>(),
                   *ev = erev.data_ptr<scalar_t>();
    const int64_t *from = src.data_ptr<int64_t>(), *to = dst.data_ptr<int64_t>();
    scalar_t *gsn = g_snum.data_ptr<scalar_t>(), *gsd = g_sden.data_ptr<scalar_t>(), *gh = g_h0.data_ptr<scalar_t>();
    scalar_t *gn_all = g_neuron.data_ptr<scalar_t>(), *gs_all = g_synapse.data_ptr<scalar_t>();
    const int64_t per_chunk = (B + chunks - 1) / chunks;
    at::parallel_for(0, chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
      std::vector<scalar_t> gv(U), gv_prev(U), num(U), den(U), dnum(U), dden(U);
      for (int64_t c = chunk_begin; c < chunk_end; ++c) {
        scalar_t* g_cm = gn_all + (c * 3 + 0) * U;
        scalar_t* g_gl = gn_all + (c * 3 + 1) * U;
        scalar_t* g_vl = gn_all + (c * 3 + 2) * U;
        scalar_t* g_w = gs_all + (c * 4 + 0) * S;
        scalar_t* g_mu = gs_all + (c * 4 + 1) * S;
        scalar_t* g_sig = gs_all + (c * 4 + 2) * S;
        scalar_t* g_ev = gs_all + (c * 4 + 3) * S;
        for (int64_t b = c * per_chunk; b < std::min(B, (c + 1) * per_chunk); ++b) {
          std::fill(gv.begin(), gv.end(), scalar_t(0));
          for (int64_t t = T - 1; t >= 0; --t) {
            for (int64_t j = 0; j < U; ++j) gv[j] += gout[(t * B + b) * U + j];
            for (int64_t k = unfolds - 1; k >= 0; --k) {
              const int64_t step = t * unfolds + k;
              const scalar_t* v = st + (step * B + b) * U;
              const scalar_t* next = st + ((step + 1) * B + b) * U;
              const scalar_t* g = gate + (step * B + b) * S;
              // The denominators of this unfold from the saved gates (the numerators are next * den).
              for (int64_t j = 0; j < U; ++j) den[j] = cm[j] + gl[j] + sden[(t * B + b) * U + j];
              for (int64_t s = 0; s < S; ++s) den[to[s]] += ws[s] * g[s];
              for (int64_t j = 0; j < U; ++j) {
                const scalar_t d = den[j] + scalar_t(eps);
                dnum[j] = gv[j] / d;
                dden[j] = -gv[j] * next[j] / d;
                g_cm[j] += dnum[j] * v[j] + dden[j];
                g_gl[j] += dnum[j] * vl[j] + dden[j];
                g_vl[j] += dnum[j] * gl[j];
                gsn[(t * B + b) * U + j] += dnum[j];
                gsd[(t * B + b) * U + j] += dden[j];
                gv_prev[j] = dnum[j] * cm[j];
              }
              for (int64_t s = 0; s < S; ++s) {
                const scalar_t diff = v[from[s]] - mus[s];
                const scalar_t sg = g[s];
                const scalar_t a = ws[s] * sg;
                const scalar_t da = dnum[to[s]] * ev[s] + dden[to[s]];
                g_ev[s] += dnum[to[s]] * a;
                g_w[s] += da * sg;
                const scalar_t dz = da * ws[s] * sg * (scalar_t(1) - sg);
                g_sig[s] += dz * diff;
                g_mu[s] -= dz * sig[s];
                gv_prev[from[s]] += dz * sig[s];
              }
              std::swap(gv, gv_prev);
            }
          }
          for (int64_t j = 0; j < U; ++j) gh[b * U + j] = gv[j];
        }
      }
    });
  });
  auto g_n = g_neuron.sum(0), g_s = g_synapse.sum(0);
  return {g_snum, g_sden, g_h0, g_n[0], g_n[1], g_n[2], g_s[0], g_s[1], g_s[2], g_s[3]};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &ltc_forward, "fused LTC unfolds over a sequence");
  m.def("backward", &ltc_backward, "gradient of the fused LTC unfolds");
}
