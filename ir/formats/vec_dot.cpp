// Reference dot products, one per weight format, mirroring ggml's generic vec_dot kernels.
#include "ir/formats/vec_dot.h"

#include <cstring>
#include <type_traits>

#include "ir/formats/block_layouts.h"
#include "ir/formats/kquant_levels.h"
#include "ir/formats/legacy_helpers.h"
#include "support/error.h"
#include "support/fp16.h"

namespace nibble {
namespace {
using namespace formats;

// ---- Plain types: f32 products accumulated in double (ggml_float).
template <class T, float (*Decode)(T)>
float dot_plain(const void* w, const void* a, int64_t n) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* ab = static_cast<const uint8_t*>(a);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    T x, y;
    std::memcpy(&x, wb + i * sizeof(T), sizeof(T));
    std::memcpy(&y, ab + i * sizeof(T), sizeof(T));
    sum += double(Decode(x) * Decode(y));
  }
  return float(sum);
}
float identity(float f) { return f; }

// ---- Legacy formats against q8_0 / q8_1.
template <class W, class A>
float dot_legacy(const void* w, const void* a, int64_t n) {
  const auto* wb = static_cast<const W*>(w);
  const auto* ab = static_cast<const A*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    const W& x = wb[i];
    const A& y = ab[i];
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += legacy::int_value(x, j) * y.qs[j];
    const float dx = fp16_to_f32(x.d), dy = fp16_to_f32(y.d);
    if constexpr (legacy::kAffine<W>) {
      // The weight's min times the activation's block sum d * sum(q), stored in s.
      sumf += (dx * dy) * float(sumi) + fp16_to_f32(x.m) * fp16_to_f32(y.s);
    } else if constexpr (std::is_same_v<W, BlockQ4_0>) {
      sumf += float(sumi) * dx * dy;  // ggml's q4_0 kernel scales the sum by dx, then by dy
    } else {
      sumf += float(sumi) * (dx * dy);
    }
  }
  return sumf;
}

// ---- K-quants against q8_K.

// q2_K: sum over sub-blocks of sc * (q . a) minus dmin * sum of m * (sub-block sum of a).
float dot_q2k(const void* w, const void* a, int64_t n) {
  const auto* wb = static_cast<const BlockQ2_K*>(w);
  const auto* ab = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const BlockQ2_K& x = wb[i];
    const BlockQ8_K& y = ab[i];
    int8_t q[kQK_K];
    kquant::levels(x, q);
    int summs = 0, isum = 0;
    for (int s = 0; s < 16; ++s) {
      summs += y.bsums[s] * kquant::q2k_min(x, s);
      int isuml = 0;
      for (int l = 0; l < 16; ++l) isuml += y.qs[16 * s + l] * q[16 * s + l];
      isum += kquant::q2k_scale(x, s) * isuml;
    }
    const float dall = y.d * fp16_to_f32(x.d);
    const float dmin = y.d * fp16_to_f32(x.dmin);
    sumf += dall * float(isum) - dmin * float(summs);
  }
  return sumf;
}

// Integer scale of each 16-element group of a q3_K / q4_K / q5_K / q6_K super-block.
void group_scales(const BlockQ3_K& b, int* sc) {
  for (int g = 0; g < 16; ++g) sc[g] = kquant::q3k_scale(b.scales, g);
}
void group_scales(const BlockQ6_K& b, int* sc) {
  for (int g = 0; g < 16; ++g) sc[g] = b.scales[g];
}
template <class B>
void group_scales_k4(const B& b, int* sc) {
  for (int g = 0; g < 16; ++g) {
    uint8_t s, m;
    kquant::get_scale_min_k4(g / 2, b.scales, &s, &m);
    sc[g] = s;
  }
}
void group_scales(const BlockQ4_K& b, int* sc) { group_scales_k4(b, sc); }
void group_scales(const BlockQ5_K& b, int* sc) { group_scales_k4(b, sc); }

// q4_K / q5_K: sum over the 16 groups of (sub-block min) * (q8_K group sum).
template <class B>
int min_times_bsums(const B& b, const BlockQ8_K& y) {
  int sumi = 0;
  for (int g = 0; g < 16; ++g) {
    uint8_t s, m;
    kquant::get_scale_min_k4(g / 2, b.scales, &s, &m);
    sumi += y.bsums[g] * m;
  }
  return sumi;
}

// q3_K .. q6_K: ggml's generic kernels accumulate the scaled level products in 8 integer lanes
// (element e goes to lane e % 8), scale each lane by d_w d_a into 8 float sums over the blocks, and
// add the lanes at the end. The mins of q4_K/q5_K are subtracted from a separate running sum.
template <class W>
float dot_kquant_lanes(const void* w, const void* a, int64_t n) {
  const auto* wb = static_cast<const W*>(w);
  const auto* ab = static_cast<const BlockQ8_K*>(a);
  constexpr bool kHasMins = std::is_same_v<W, BlockQ4_K> || std::is_same_v<W, BlockQ5_K>;
  float sums[8] = {};
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const W& x = wb[i];
    const BlockQ8_K& y = ab[i];
    int8_t q[kQK_K];
    kquant::levels(x, q);
    int scales[16];
    group_scales(x, scales);
    int32_t lanes[8] = {};
    for (int e = 0; e < kQK_K; ++e) lanes[e % 8] += scales[e / 16] * (y.qs[e] * q[e]);
    const float d = fp16_to_f32(x.d) * y.d;
    for (int l = 0; l < 8; ++l) sums[l] += d * float(lanes[l]);
    if constexpr (kHasMins) {
      const float dmin = fp16_to_f32(x.dmin) * y.d;
      sumf -= dmin * float(min_times_bsums(x, y));
    }
  }
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

// q8_K x q8_K (not in ggml): per block d_w d_a sum(q_w q_a).
float dot_q8k(const void* w, const void* a, int64_t n) {
  const auto* wb = static_cast<const BlockQ8_K*>(w);
  const auto* ab = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int sumi = 0;
    for (int e = 0; e < kQK_K; ++e) sumi += wb[i].qs[e] * ab[i].qs[e];
    sumf += float(sumi) * (wb[i].d * ab[i].d);
  }
  return sumf;
}

}  // namespace

float vec_dot(DType weight_type, const void* weight_row, const void* act_row, int64_t n) {
  const DTypeInfo& info = dtype_info(weight_type);
  if (n < 0 || n % info.block_size != 0)
    fail("vec_dot: {} elements is not a multiple of the {} block size {}", n, info.name, info.block_size);
  const void* w = weight_row;
  const void* a = act_row;
  switch (weight_type) {
    case DType::F32: return dot_plain<float, identity>(w, a, n);
    case DType::F16: return dot_plain<uint16_t, fp16_to_f32>(w, a, n);
    case DType::BF16: return dot_plain<uint16_t, bf16_to_f32>(w, a, n);
    case DType::Q4_0: return dot_legacy<BlockQ4_0, BlockQ8_0>(w, a, n);
    case DType::Q4_1: return dot_legacy<BlockQ4_1, BlockQ8_1>(w, a, n);
    case DType::Q5_0: return dot_legacy<BlockQ5_0, BlockQ8_0>(w, a, n);
    case DType::Q5_1: return dot_legacy<BlockQ5_1, BlockQ8_1>(w, a, n);
    case DType::Q8_0: return dot_legacy<BlockQ8_0, BlockQ8_0>(w, a, n);
    case DType::Q8_1: return dot_legacy<BlockQ8_1, BlockQ8_1>(w, a, n);
    case DType::Q2_K: return dot_q2k(w, a, n);
    case DType::Q3_K: return dot_kquant_lanes<BlockQ3_K>(w, a, n);
    case DType::Q4_K: return dot_kquant_lanes<BlockQ4_K>(w, a, n);
    case DType::Q5_K: return dot_kquant_lanes<BlockQ5_K>(w, a, n);
    case DType::Q6_K: return dot_kquant_lanes<BlockQ6_K>(w, a, n);
    case DType::Q8_K: return dot_q8k(w, a, n);
    default: break;
  }
  fail("vec_dot: no dot product for {}", info.name);
}

}  // namespace nibble
