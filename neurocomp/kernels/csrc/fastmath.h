// Exponential, sigmoid and tanh written so that the compiler vectorises loops over them (the C
// library's expf is a call per element). float: Cephes' polynomials, within ~2 ulp of the exact
// value; double keeps the C library, so fp64 runs stay exact references. Loops over these vectorise
// with -fno-trapping-math (which native.py passes): no trap handlers, identical values.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace fastmath {

inline float exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);  // the range where exp(x) is a normal float
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r -= n * -2.12194440e-4f;  // ln 2 in two parts keeps the reduction exact
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline double exp(double x) { return std::exp(x); }

template <typename scalar_t>
inline scalar_t sigmoid(scalar_t x) { return scalar_t(1) / (scalar_t(1) + fastmath::exp(-x)); }

inline float tanh(float x) {
  // Small |x|: odd polynomial (1 - 2/(e^2x + 1) would lose the digits of x to cancellation).
  const float z = x * x;
  const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                        1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  const float large = 1.0f - 2.0f / (fastmath::exp(2.0f * std::fabs(x)) + 1.0f);
  return std::fabs(x) < 0.625f ? small : std::copysign(large, x);
}

inline double tanh(double x) { return std::tanh(x); }

}  // namespace fastmath
