// Rate-coded spikes from torch's own CPU random stream, ~10x faster than torch.randint + compare.
//
// torch.randint(0, 2^24) on the CPU draws one 32-bit word per element from the generator's
// MT19937 engine, one element at a time under a lock, and keeps its low 24 bits; the encoder then
// compares them with ceil(p * 2^24). This kernel takes the engine out of the generator, produces
// the very same words (a whole 624-word block at a time, twisted and tempered in vector code),
// compares them at once and puts the advanced engine back: the spikes and the generator's state
// afterwards are those of the torch path, bit for bit.
#include <torch/extension.h>
#include <ATen/CPUGeneratorImpl.h>
#include <mutex>
#include <optional>

namespace {

constexpr int N = 624, M = 397;  // MT19937's state size and shift
constexpr uint32_t MATRIX_A = 0x9908b0df, UPPER = 0x80000000, LOWER = 0x7fffffff;

inline uint32_t twist(uint32_t u, uint32_t v) {
  return (((u & UPPER) | (v & LOWER)) >> 1) ^ ((v & 1) ? MATRIX_A : 0);
}

// The engine's next_state(), written so that each loop vectorises: the first reads only words not
// yet rewritten, the second only words rewritten at least N - M = 227 places before.
void next_state(uint32_t* s) {
#pragma omp simd
  for (int i = 0; i < N - M; ++i) s[i] = s[i + M] ^ twist(s[i], s[i + 1]);
#pragma omp simd
  for (int i = N - M; i < N - 1; ++i) s[i] = s[i + M - N] ^ twist(s[i], s[i + 1]);
  s[N - 1] = s[M - 1] ^ twist(s[N - 1], s[0]);
}

inline uint32_t temper(uint32_t y) {
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680;
  y ^= (y << 15) & 0xefc60000;
  return y ^ (y >> 18);
}

// spikes[d] = low 24 bits of word d < thresholds[d % count], for the words words[0..n).
template <typename scalar_t>
void compare(const uint32_t* words, int64_t n, int64_t first, const int32_t* thresholds, int64_t count,
             scalar_t* spikes) {
  int64_t m = first % count;
  for (int64_t done = 0; done < n;) {
    const int64_t run = std::min(n - done, count - m);
#pragma omp simd
    for (int64_t i = 0; i < run; ++i)
      spikes[i] = int32_t(temper(words[done + i]) & 0xffffff) < thresholds[m + i] ? scalar_t(1) : scalar_t(0);
    spikes += run;
    done += run;
    m = 0;
  }
}

}  // namespace

// thresholds: (count,) int32, ceil(p * 2^24) per input; spikes: (T, count) float32/64, written:
// spikes[t, i] = 1 where the (t * count + i)-th 24-bit draw of the generator is below thresholds[i].
void rate_spikes(torch::Tensor thresholds, torch::Tensor spikes, std::optional<at::Generator> generator) {
  TORCH_CHECK(thresholds.is_contiguous() && thresholds.scalar_type() == torch::kInt32, "thresholds: contiguous int32");
  TORCH_CHECK(spikes.is_contiguous() && spikes.numel() % std::max<int64_t>(thresholds.numel(), 1) == 0,
              "spikes: contiguous, a whole number of steps");
  auto* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(generator, at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  at::mt19937 engine = gen->engine();
  at::mt19937_data_pod pod = engine.data();
  const int64_t count = thresholds.numel(), total = spikes.numel();
  const int32_t* thr = thresholds.data_ptr<int32_t>();
  AT_DISPATCH_FLOATING_TYPES(spikes.scalar_type(), "rate_spikes", [&] {
    scalar_t* out = spikes.data_ptr<scalar_t>();
    // The engine returns state_[next_] after decrementing left_, twisting when it reaches 0, so
    // left_ - 1 words of the current block are still unread.
    for (int64_t done = 0; done < total;) {
      if (pod.left_ == 1) {
        next_state(pod.state_.data());
        pod.left_ = N + 1;
        pod.next_ = 0;
      }
      const int64_t take = std::min<int64_t>(total - done, pod.left_ - 1);
      compare(pod.state_.data() + pod.next_, take, done, thr, count, out + done);
      pod.next_ += take;
      pod.left_ -= take;
      done += take;
    }
  });
  engine.set_data(pod);
  gen->set_engine(engine);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rate_spikes", &rate_spikes, "rate-coded spikes from the generator's MT19937 stream");
}
