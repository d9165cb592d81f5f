// Reference quantizers of the K-quant formats, following ggml's quantize_row_*_ref (no importance
// matrix). Each super-block is encoded in three steps:
//   1. fit every sub-block on its own (scale, and min for the affine formats; kquant_helpers.h),
//   2. quantize the sub-block scales (and mins) against one f16 super-block scale,
//   3. requantize the elements against the scales as they will decode, then pack the levels.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ir/formats/codecs.h"
#include "ir/formats/kquant_levels.h"
#include "support/fp16.h"

namespace nibble::formats {
using namespace kquant;

namespace {

constexpr float kGroupMaxEps = 1e-15f;

// Step 3 of the affine formats: level = round((x + m) / d) clamped to [0, nmax], for each sub-block
// of `group` elements whose decoded scale d is non-zero (the others keep their step-1 levels).
template <class ScaleMin>
void requantize_affine(const float* x, int group, int nmax, ScaleMin scale_min, uint8_t* L) {
  for (int s = 0; s < kQK_K / group; ++s) {
    float d, m;
    scale_min(s, &d, &m);
    if (d == 0.0f) continue;
    for (int i = 0; i < group; ++i) {
      const int l = nearest_int((x[group * s + i] + m) / d);
      L[group * s + i] = uint8_t(std::clamp(l, 0, nmax));
    }
  }
}

// Step 3 of the symmetric formats: level = round(x / d) clamped to [-nmax, nmax), stored + nmax.
template <class Scale>
void requantize_symmetric(const float* x, int nmax, Scale scale, int8_t* L) {
  for (int s = 0; s < kQK_K / 16; ++s) {
    const float d = scale(s);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i) {
      const int l = nearest_int(x[16 * s + i] / d);
      L[16 * s + i] = int8_t(std::clamp(l, -nmax, nmax - 1) + nmax);
    }
  }
}

void encode_block(const float* x, BlockQ2_K& b) {
  uint8_t L[kQK_K];
  float scales[16], mins[16], weights[16];
  float max_scale = 0, max_min = 0;
  for (int s = 0; s < 16; ++s) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * s + l]);
    scales[s] = make_qkx2_quants(16, 3, x + 16 * s, weights, L + 16 * s, &mins[s], -0.5f, 0.1f, 15, true);
    max_scale = std::max(max_scale, scales[s]);
    max_min = std::max(max_min, mins[s]);
  }
  constexpr float kQ4Scale = 15.0f;
  if (max_scale > 0) {
    const float iscale = kQ4Scale / max_scale;
    for (int s = 0; s < 16; ++s) b.scales[s] = uint8_t(nearest_int(iscale * scales[s]));
    b.d = f32_to_fp16(max_scale / kQ4Scale);
  } else {
    for (int s = 0; s < 16; ++s) b.scales[s] = 0;
    b.d = f32_to_fp16(0.0f);
  }
  if (max_min > 0) {
    const float iscale = kQ4Scale / max_min;
    for (int s = 0; s < 16; ++s) b.scales[s] = uint8_t(b.scales[s] | nearest_int(iscale * mins[s]) << 4);
    b.dmin = f32_to_fp16(max_min / kQ4Scale);
  } else {
    b.dmin = f32_to_fp16(0.0f);
  }
  const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
  requantize_affine(x, 16, 3, [&](int s, float* ds, float* ms) {
    *ds = d * float(q2k_scale(b, s));
    *ms = dmin * float(q2k_min(b, s));
  }, L);
  pack_2bit_planes(L, b.qs);
}

void encode_block(const float* x, BlockQ3_K& b) {
  int8_t L[kQK_K];
  float scales[16];
  float max_scale = 0, amax = 0;
  for (int s = 0; s < 16; ++s) {
    scales[s] = make_q3_quants(16, 4, x + 16 * s, L + 16 * s);
    if (std::fabs(scales[s]) > amax) {
      amax = std::fabs(scales[s]);
      max_scale = scales[s];
    }
  }
  uint8_t biased[16] = {};
  if (max_scale != 0) {
    const float iscale = -32.0f / max_scale;
    for (int s = 0; s < 16; ++s) biased[s] = uint8_t(std::clamp(nearest_int(iscale * scales[s]), -32, 31) + 32);
    b.d = f32_to_fp16(1 / iscale);
  } else {
    b.d = f32_to_fp16(0.0f);
  }
  pack_q3k_scales(biased, b.scales);
  const float d = fp16_to_f32(b.d);
  requantize_symmetric(x, 4, [&](int s) { return d * float(q3k_scale(b.scales, s)); }, L);
  uint8_t u[kQK_K];
  for (int e = 0; e < kQK_K; ++e) u[e] = uint8_t(L[e]);
  pack_high_bits(u, 2, b.hmask);
  pack_2bit_planes(u, b.qs);
}

// q4_K (nmax 15) and q5_K (nmax 31): 8 sub-blocks of 32 with 6-bit scales and mins.
template <class Block>
void encode_block_k4(const float* x, Block& b, int nmax, float rmin, float rdelta, int nstep, uint8_t* L) {
  float scales[8], mins[8], weights[32];
  float max_scale = 0, max_min = 0;
  for (int s = 0; s < 8; ++s) {
    const float* xs = x + 32 * s;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[s] = make_qkx2_quants(32, nmax, xs, weights, L + 32 * s, &mins[s], rmin, rdelta, nstep, false);
    max_scale = std::max(max_scale, scales[s]);
    max_min = std::max(max_min, mins[s]);
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t ls[8], lm[8];
  for (int s = 0; s < 8; ++s) {
    // ggml stores nearest_int's result in a uint8_t before clamping to 63.
    ls[s] = std::min<uint8_t>(63, uint8_t(nearest_int(inv_scale * scales[s])));
    lm[s] = std::min<uint8_t>(63, uint8_t(nearest_int(inv_min * mins[s])));
  }
  pack_scale_min_k4(ls, lm, b.scales);
  b.d = f32_to_fp16(max_scale / 63.0f);
  b.dmin = f32_to_fp16(max_min / 63.0f);
  const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
  requantize_affine(x, 32, nmax, [&](int s, float* ds, float* ms) {
    uint8_t sc, m;
    get_scale_min_k4(s, b.scales, &sc, &m);
    *ds = d * float(sc);
    *ms = dmin * float(m);
  }, L);
}

void encode_block(const float* x, BlockQ4_K& b) {
  uint8_t L[kQK_K];
  encode_block_k4(x, b, 15, -1.0f, 0.1f, 20, L);
  pack_4bit_planes(L, b.qs);
}

void encode_block(const float* x, BlockQ5_K& b) {
  uint8_t L[kQK_K];
  encode_block_k4(x, b, 31, -0.5f, 0.1f, 15, L);
  pack_high_bits(L, 4, b.qh);
  pack_4bit_planes(L, b.qs);
}

void encode_block(const float* x, BlockQ6_K& b) {
  int8_t L[kQK_K];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int s = 0; s < 16; ++s) {
    scales[s] = make_qx_quants(16, 32, x + 16 * s, L + 16 * s, nullptr);
    if (std::fabs(scales[s]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[s]);
      max_scale = scales[s];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(&b, 0, sizeof b);
    return;
  }
  const float iscale = -128.0f / max_scale;
  b.d = f32_to_fp16(1 / iscale);
  for (int s = 0; s < 16; ++s) b.scales[s] = int8_t(std::min(127, nearest_int(iscale * scales[s])));
  const float d = fp16_to_f32(b.d);
  requantize_symmetric(x, 32, [&](int s) { return d * float(b.scales[s]); }, L);
  uint8_t u[kQK_K];
  for (int e = 0; e < kQK_K; ++e) u[e] = uint8_t(L[e]);
  pack_q6k_levels(u, b);
}

void encode_block(const float* x, BlockQ8_K& b) {
  float max = 0, amax = 0;
  for (int e = 0; e < kQK_K; ++e) {
    if (std::fabs(x[e]) > amax) {
      amax = std::fabs(x[e]);
      max = x[e];
    }
  }
  if (amax == 0) {
    std::memset(&b, 0, sizeof b);  // ggml leaves bsums unwritten here; they are 0 in any case
    return;
  }
  const float iscale = -127.0f / max;
  for (int e = 0; e < kQK_K; ++e) b.qs[e] = int8_t(std::min(127, nearest_int(iscale * x[e])));
  for (int g = 0; g < kQK_K / 16; ++g) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += b.qs[16 * g + i];
    b.bsums[g] = int16_t(sum);
  }
  b.d = 1 / iscale;
}

}  // namespace

template <class Block>
void quantize_row_kquant(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    Block b{};
    encode_block(src + i * kQK_K, b);
    std::memcpy(&blocks[i], &b, sizeof(Block));
  }
}

template void quantize_row_kquant<BlockQ2_K>(const float*, void*, int64_t);
template void quantize_row_kquant<BlockQ3_K>(const float*, void*, int64_t);
template void quantize_row_kquant<BlockQ4_K>(const float*, void*, int64_t);
template void quantize_row_kquant<BlockQ5_K>(const float*, void*, int64_t);
template void quantize_row_kquant<BlockQ6_K>(const float*, void*, int64_t);
template void quantize_row_kquant<BlockQ8_K>(const float*, void*, int64_t);

}  // namespace nibble::formats
