#include "runtime/cpu/f16_ops.h"

#include "support/fp16.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NB_HAVE_X86_LEVELS 1
#include <immintrin.h>
// GCC 12 flags the deliberately undefined pass-through operands inside the AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#endif

namespace nibble::rt {

namespace {

// ---- portable ----------------------------------------------------------------------------------

void scores_portable(const float* q, const uint16_t* k, int64_t stride, int64_t d, int64_t n, float* out) {
  for (int64_t c = 0; c < n; ++c) {
    const uint16_t* row = k + c * stride;
    float s[4] = {0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 4 <= d; j += 4)
      for (int u = 0; u < 4; ++u) s[u] += q[j + u] * fp16_to_f32(row[j + u]);
    for (; j < d; ++j) s[0] += q[j] * fp16_to_f32(row[j]);
    out[c] = (s[0] + s[1]) + (s[2] + s[3]);
  }
}

void wsum_portable(const float* p, const uint16_t* v, int64_t stride, int64_t d, int64_t n, float* acc) {
  for (int64_t j = 0; j < d; ++j) acc[j] = 0.0f;
  for (int64_t c = 0; c < n; ++c) {
    const uint16_t* row = v + c * stride;
    const float pc = p[c];
    for (int64_t j = 0; j < d; ++j) acc[j] += pc * fp16_to_f32(row[j]);
  }
}

void to_f16_portable(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}

void round_f16_portable(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = round_to_fp16(x[i]);
}

constexpr F16Ops kPortable{"portable", scores_portable, wsum_portable, to_f16_portable, round_f16_portable};

#ifdef NB_HAVE_X86_LEVELS

// Hardware conversion rounds to nearest even like f32_to_fp16; only NaN differs (hardware keeps
// the payload, ggml's code returns sign | 0x7E00), so lanes holding NaN are redone in scalar.

// ---- AVX2 + FMA + F16C -------------------------------------------------------------------------
#define NB_V3 __attribute__((target("avx2,fma,f16c")))

NB_V3 inline float hsum256(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

NB_V3 inline __m256 load_h8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

NB_V3 void scores_v3(const float* q, const uint16_t* k, int64_t stride, int64_t d, int64_t n, float* out) {
  const int64_t d8 = d & ~int64_t(7);
  int64_t c = 0;
  for (; c + 4 <= n; c += 4) {  // four rows at once: independent FMA chains
    const uint16_t* r0 = k + c * stride;
    const uint16_t *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t j = 0; j < d8; j += 8) {
      const __m256 qv = _mm256_loadu_ps(q + j);
      a0 = _mm256_fmadd_ps(qv, load_h8(r0 + j), a0);
      a1 = _mm256_fmadd_ps(qv, load_h8(r1 + j), a1);
      a2 = _mm256_fmadd_ps(qv, load_h8(r2 + j), a2);
      a3 = _mm256_fmadd_ps(qv, load_h8(r3 + j), a3);
    }
    float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);
    for (int64_t j = d8; j < d; ++j) {
      s0 += q[j] * fp16_to_f32(r0[j]);
      s1 += q[j] * fp16_to_f32(r1[j]);
      s2 += q[j] * fp16_to_f32(r2[j]);
      s3 += q[j] * fp16_to_f32(r3[j]);
    }
    out[c] = s0, out[c + 1] = s1, out[c + 2] = s2, out[c + 3] = s3;
  }
  for (; c < n; ++c) {
    const uint16_t* r0 = k + c * stride;
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t j = 0; j < d8; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), load_h8(r0 + j), a0);
    float s0 = hsum256(a0);
    for (int64_t j = d8; j < d; ++j) s0 += q[j] * fp16_to_f32(r0[j]);
    out[c] = s0;
  }
}

// U vectors of 8 columns held in registers across all n rows.
template <int U>
NB_V3 inline void wsum_block_v3(const float* p, const uint16_t* v, int64_t stride, int64_t n, float* acc) {
  __m256 s[U];
  for (int u = 0; u < U; ++u) s[u] = _mm256_setzero_ps();
  for (int64_t c = 0; c < n; ++c) {
    const __m256 pb = _mm256_set1_ps(p[c]);
    const uint16_t* row = v + c * stride;
    for (int u = 0; u < U; ++u) s[u] = _mm256_fmadd_ps(pb, load_h8(row + 8 * u), s[u]);
  }
  for (int u = 0; u < U; ++u) _mm256_storeu_ps(acc + 8 * u, s[u]);
}

NB_V3 void wsum_v3(const float* p, const uint16_t* v, int64_t stride, int64_t d, int64_t n, float* acc) {
  int64_t j = 0;
  for (; d - j >= 64; j += 64) wsum_block_v3<8>(p, v + j, stride, n, acc + j);
  if (d - j >= 32) wsum_block_v3<4>(p, v + j, stride, n, acc + j), j += 32;
  if (d - j >= 16) wsum_block_v3<2>(p, v + j, stride, n, acc + j), j += 16;
  if (d - j >= 8) wsum_block_v3<1>(p, v + j, stride, n, acc + j), j += 8;
  if (j < d) wsum_portable(p, v + j, stride, d - j, n, acc + j);
}

NB_V3 void to_f16_v3(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(xv, _MM_FROUND_TO_NEAREST_INT));
    if (_mm256_movemask_ps(_mm256_cmp_ps(xv, xv, _CMP_UNORD_Q))) to_f16_portable(x + i, y + i, 8);
  }
  to_f16_portable(x + i, y + i, n - i);
}

NB_V3 void round_f16_v3(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    const bool has_nan = _mm256_movemask_ps(_mm256_cmp_ps(xv, xv, _CMP_UNORD_Q));
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(xv, _MM_FROUND_TO_NEAREST_INT)));
    if (has_nan)
      for (int l = 0; l < 8; ++l) y[i + l] = fp16_to_f32(f32_to_fp16(xv[l]));
  }
  round_f16_portable(x + i, y + i, n - i);
}

constexpr F16Ops kAvx2{"avx2", scores_v3, wsum_v3, to_f16_v3, round_f16_v3};

// ---- AVX-512 (F, BW, VL) -----------------------------------------------------------------------
#define NB_V4 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

NB_V4 inline __mmask16 tail_mask(int64_t r) { return r >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << r) - 1); }

NB_V4 inline __m512 load_h16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
NB_V4 inline __m512 load_h16(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }

// The four horizontal sums of a0..a3, as one vector: halves added down to 128 bits, then hadd.
NB_V4 inline __m128 fold_to128(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

NB_V4 inline __m128 hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m128 s0 = fold_to128(a0), s1 = fold_to128(a1), s2 = fold_to128(a2), s3 = fold_to128(a3);
  return _mm_hadd_ps(_mm_hadd_ps(s0, s1), _mm_hadd_ps(s2, s3));
}

NB_V4 void scores_v4(const float* q, const uint16_t* k, int64_t stride, int64_t d, int64_t n, float* out) {
  const int64_t d16 = d & ~int64_t(15);
  const __mmask16 mt = tail_mask(d - d16);
  int64_t c = 0;
  for (; c + 4 <= n; c += 4) {  // four rows at once: independent FMA chains
    const uint16_t* r0 = k + c * stride;
    const uint16_t *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t j = 0; j < d16; j += 16) {
      const __m512 qv = _mm512_loadu_ps(q + j);
      a0 = _mm512_fmadd_ps(qv, load_h16(r0 + j), a0);
      a1 = _mm512_fmadd_ps(qv, load_h16(r1 + j), a1);
      a2 = _mm512_fmadd_ps(qv, load_h16(r2 + j), a2);
      a3 = _mm512_fmadd_ps(qv, load_h16(r3 + j), a3);
    }
    if (d16 < d) {  // masked tail: no scalar loop
      const __m512 qv = _mm512_maskz_loadu_ps(mt, q + d16);
      a0 = _mm512_fmadd_ps(qv, load_h16(r0 + d16, mt), a0);
      a1 = _mm512_fmadd_ps(qv, load_h16(r1 + d16, mt), a1);
      a2 = _mm512_fmadd_ps(qv, load_h16(r2 + d16, mt), a2);
      a3 = _mm512_fmadd_ps(qv, load_h16(r3 + d16, mt), a3);
    }
    _mm_storeu_ps(out + c, hsum4(a0, a1, a2, a3));
  }
  for (; c < n; ++c) {
    const uint16_t* r0 = k + c * stride;
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t j = 0; j < d16; j += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + j), load_h16(r0 + j), a0);
    if (d16 < d) a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mt, q + d16), load_h16(r0 + d16, mt), a0);
    out[c] = _mm512_reduce_add_ps(a0);
  }
}

// U vectors of 16 columns held in registers across all n rows; the last one masked to `m`.
template <int U>
NB_V4 inline void wsum_block_v4(const float* p, const uint16_t* v, int64_t stride, int64_t n, float* acc, __mmask16 m) {
  __m512 s[U];
  for (int u = 0; u < U; ++u) s[u] = _mm512_setzero_ps();
  for (int64_t c = 0; c < n; ++c) {
    const __m512 pb = _mm512_set1_ps(p[c]);
    const uint16_t* row = v + c * stride;
    for (int u = 0; u + 1 < U; ++u) s[u] = _mm512_fmadd_ps(pb, load_h16(row + 16 * u), s[u]);
    s[U - 1] = _mm512_fmadd_ps(pb, load_h16(row + 16 * (U - 1), m), s[U - 1]);
  }
  for (int u = 0; u + 1 < U; ++u) _mm512_storeu_ps(acc + 16 * u, s[u]);
  _mm512_mask_storeu_ps(acc + 16 * (U - 1), m, s[U - 1]);
}

NB_V4 void wsum_v4(const float* p, const uint16_t* v, int64_t stride, int64_t d, int64_t n, float* acc) {
  int64_t j = 0;
  for (; d - j > 128; j += 128) wsum_block_v4<8>(p, v + j, stride, n, acc + j, 0xFFFF);
  const int64_t rem = d - j;  // 0..128
  const __mmask16 m = tail_mask(rem - (rem - 1) / 16 * 16);
  switch ((rem + 15) / 16) {
    case 1: wsum_block_v4<1>(p, v + j, stride, n, acc + j, m); break;
    case 2: wsum_block_v4<2>(p, v + j, stride, n, acc + j, m); break;
    case 3: wsum_block_v4<3>(p, v + j, stride, n, acc + j, m); break;
    case 4: wsum_block_v4<4>(p, v + j, stride, n, acc + j, m); break;
    case 5: wsum_block_v4<5>(p, v + j, stride, n, acc + j, m); break;
    case 6: wsum_block_v4<6>(p, v + j, stride, n, acc + j, m); break;
    case 7: wsum_block_v4<7>(p, v + j, stride, n, acc + j, m); break;
    case 8: wsum_block_v4<8>(p, v + j, stride, n, acc + j, m); break;
    default: break;
  }
}

NB_V4 inline __m256i to_h16(__m512 xv) { return _mm512_cvtps_ph(xv, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

NB_V4 void to_f16_v4(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
    _mm256_mask_storeu_epi16(y + i, m, to_h16(xv));
    if (_mm512_cmp_ps_mask(xv, xv, _CMP_UNORD_Q)) to_f16_portable(x + i, y + i, n - i < 16 ? n - i : 16);
  }
}

NB_V4 void round_f16_v4(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
    const bool has_nan = _mm512_cmp_ps_mask(xv, xv, _CMP_UNORD_Q);
    _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(to_h16(xv)));
    if (has_nan) {
      const int64_t len = n - i < 16 ? n - i : 16;
      for (int64_t l = 0; l < len; ++l) y[i + l] = fp16_to_f32(f32_to_fp16(xv[l]));
    }
  }
}

constexpr F16Ops kAvx512{"avx512", scores_v4, wsum_v4, to_f16_v4, round_f16_v4};

#endif  // NB_HAVE_X86_LEVELS

}  // namespace

const F16Ops& f16_ops_at(F16Level level) {
#ifdef NB_HAVE_X86_LEVELS
  __builtin_cpu_init();
  if (level == F16Level::Avx512 && __builtin_cpu_supports("x86-64-v4")) return kAvx512;
  if (level >= F16Level::Avx2 && __builtin_cpu_supports("x86-64-v3")) return kAvx2;
#endif
  (void)level;
  return kPortable;
}

const F16Ops& f16_ops() {
  static const F16Ops& best = f16_ops_at(F16Level::Avx512);
  return best;
}

}  // namespace nibble::rt
