// f16 row routines for the attention and KV-cache kernels, one implementation per ISA level
// (AVX-512, AVX2+FMA+F16C, portable), chosen once at run time. They exist apart from the
// target_clones kernels because hardware f16 conversion needs intrinsics, which a clone cannot
// select per ISA. Conversions are bit-exact with support/fp16.h (NaN -> sign | 0x7E00).
#pragma once
#include <cstdint>

namespace nibble::rt {

struct F16Ops {
  const char* name;
  // out[c] = dot(q, k + c * stride, d) for c in [0, n)
  void (*scores)(const float* q, const uint16_t* k, int64_t stride, int64_t d, int64_t n, float* out);
  // acc[j] = sum_c p[c] * v[c * stride + j] for j in [0, d) (acc is overwritten)
  void (*weighted_sum)(const float* p, const uint16_t* v, int64_t stride, int64_t d, int64_t n, float* acc);
  // y[i] = f32_to_fp16(x[i])
  void (*to_f16)(const float* x, uint16_t* y, int64_t n);
  // y[i] = round_to_fp16(x[i]) (y may equal x)
  void (*round_f16)(const float* x, float* y, int64_t n);
};

enum class F16Level { Portable, Avx2, Avx512 };

// The best level this CPU supports.
const F16Ops& f16_ops();
// A given level (for tests); falls back to Portable when the CPU lacks it.
const F16Ops& f16_ops_at(F16Level level);

}  // namespace nibble::rt
