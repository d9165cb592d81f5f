// Internal helpers of the built-in kernels: function multiversioning, GCC vector-extension
// reductions, and a branch-free exp that auto-vectorizes. Everything here is always inlined into
// the multiversioned kernels, so it is compiled once per ISA clone.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "runtime/cpu/kernel_abi.h"

// Kernels are built for the best ISA found at run time, never at build time: the binary runs on
// any x86-64 and uses AVX-512 / AVX2+FMA where present. Not under TSan: the ifunc resolvers run
// during relocation, before the TSan runtime they are instrumented to call.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(NIBBLE_NO_CLONES) && \
    !defined(__SANITIZE_THREAD__)
#define NB_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NB_CLONES
#endif
#define NB_INLINE inline __attribute__((always_inline))

namespace nibble::rt::kern {

// 16 floats: one zmm on AVX-512, two ymm on AVX2, four xmm otherwise.
typedef float vf16 __attribute__((vector_size(64)));

NB_INLINE vf16 load16(const float* p) {
  vf16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
NB_INLINE void store16(float* p, vf16 v) { std::memcpy(p, &v, sizeof v); }
NB_INLINE float hsum(vf16 v) {
  float s = 0;
  for (int j = 0; j < 16; ++j) s += v[j];
  return s;
}

// Float sums with 64 independent lanes: fast, and far more accurate than one running sum.
NB_INLINE float sum_of(const float* x, int64_t n) {
  vf16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 += load16(x + i);
    a1 += load16(x + i + 16);
    a2 += load16(x + i + 32);
    a3 += load16(x + i + 48);
  }
  for (; i + 16 <= n; i += 16) a0 += load16(x + i);
  float s = hsum((a0 + a1) + (a2 + a3));
  for (; i < n; ++i) s += x[i];
  return s;
}

NB_INLINE float sum_sq(const float* x, int64_t n) {
  vf16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    vf16 u0 = load16(x + i), u1 = load16(x + i + 16), u2 = load16(x + i + 32), u3 = load16(x + i + 48);
    a0 += u0 * u0;
    a1 += u1 * u1;
    a2 += u2 * u2;
    a3 += u3 * u3;
  }
  for (; i + 16 <= n; i += 16) {
    vf16 u = load16(x + i);
    a0 += u * u;
  }
  float s = hsum((a0 + a1) + (a2 + a3));
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

// sum (x - c)^2: the second pass of a two-pass variance.
NB_INLINE float sum_sq_centered(const float* x, int64_t n, float c) {
  vf16 a0 = {}, a1 = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    vf16 u0 = load16(x + i) - c, u1 = load16(x + i + 16) - c;
    a0 += u0 * u0;
    a1 += u1 * u1;
  }
  for (; i + 16 <= n; i += 16) {
    vf16 u = load16(x + i) - c;
    a0 += u * u;
  }
  float s = hsum(a0 + a1);
  for (; i < n; ++i) s += (x[i] - c) * (x[i] - c);
  return s;
}

NB_INLINE float dot_f32(const float* a, const float* b, int64_t n) {
  vf16 a0 = {}, a1 = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 += load16(a + i) * load16(b + i);
    a1 += load16(a + i + 16) * load16(b + i + 16);
  }
  for (; i + 16 <= n; i += 16) a0 += load16(a + i) * load16(b + i);
  float s = hsum(a0 + a1);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Max ignoring NaN, as std::max(m, x) folds do (a NaN never compares greater).
NB_INLINE float max_of(const float* x, int64_t n) {
  vf16 m0 = {}, m1 = {};
  m0 -= INFINITY;
  m1 -= INFINITY;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    vf16 u0 = load16(x + i), u1 = load16(x + i + 16);
    m0 = u0 > m0 ? u0 : m0;
    m1 = u1 > m1 ? u1 : m1;
  }
  for (; i + 16 <= n; i += 16) {
    vf16 u = load16(x + i);
    m0 = u > m0 ? u : m0;
  }
  m0 = m1 > m0 ? m1 : m0;
  float m = -INFINITY;
  for (int j = 0; j < 16; ++j) m = m0[j] > m ? m0[j] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

NB_INLINE float as_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
NB_INLINE int32_t as_int(float f) {
  int32_t i;
  std::memcpy(&i, &f, 4);
  return i;
}

// exp(x) within ~1e-7 relative (Cephes polynomial after a Cody-Waite reduction), branch-free so
// loops calling it vectorize. Flushes to 0 below -87.34 (exp would be subnormal) and to +inf
// above 88.38; NaN propagates.
NB_INLINE float exp_approx(float x) {
  const float lo = -87.33654f, hi = 88.37626f;
  float xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = xc * 1.44269504088896341f + magic;
  const float n = t - magic;
  const int32_t ni = as_int(t) - as_int(magic);
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.0f;
  float y = p * as_float((ni + 127) << 23);
  y = x < lo ? 0.0f : y;
  y = x > hi ? INFINITY : y;
  return y;
}

NB_INLINE float silu_of(float x) { return x / (1.0f + exp_approx(-x)); }

// gelu (tanh form): 0.5 x (1 + tanh(y)) == x * sigmoid(2y), which needs one exp and no cancellation.
NB_INLINE float gelu_of(float x) {
  const float c = 0.7978845608028654f;  // sqrt(2/pi)
  const float y = c * x * (1.0f + 0.044715f * x * x);
  return x / (1.0f + exp_approx(-2.0f * y));
}

template <typename T>
NB_INLINE T* buf(const NibbleKernelArgs* a, int i) {
  return static_cast<T*>(a->bufs[i]);
}

}  // namespace nibble::rt::kern
