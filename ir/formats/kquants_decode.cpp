// Decoders of the K-quant super-blocks, bit-exact with ggml's to_float. The float expressions follow
// ggml's: the per-sub-block scale d * sc (and min dmin * m) is rounded to f32 first, then multiplied
// by the integer level. The products are exact (an f16 times a 6-bit scale times a level of at most
// 6 bits fits in 24 bits), so whether a build fuses "scale * q - min" into an FMA does not matter.
#include "ir/formats/codecs.h"
#include "ir/formats/kquant_levels.h"
#include "support/fp16.h"

namespace nibble::formats {
using namespace kquant;

namespace {

// y[l] = scale * q[l] - min for n elements (scale * q[l] is exact).
void affine(const int8_t* q, float scale, float min, int n, float* y) {
  for (int l = 0; l < n; ++l) y[l] = scale * float(q[l]) - min;
}

void decode_block(const BlockQ2_K& b, float* y) {
  int8_t q[kQK_K];
  levels(b, q);
  const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
  for (int s = 0; s < 16; ++s)
    affine(q + 16 * s, d * float(q2k_scale(b, s)), dmin * float(q2k_min(b, s)), 16, y + 16 * s);
}

void decode_block(const BlockQ3_K& b, float* y) {
  int8_t q[kQK_K];
  levels(b, q);
  const float d = fp16_to_f32(b.d);
  for (int s = 0; s < 16; ++s) {
    const float dl = d * float(q3k_scale(b.scales, s));
    for (int l = 0; l < 16; ++l) y[16 * s + l] = dl * float(q[16 * s + l]);
  }
}

// q4_K and q5_K differ only in where the levels come from.
template <class Block>
void decode_block_k4(const Block& b, float* y) {
  int8_t q[kQK_K];
  levels(b, q);
  const float d = fp16_to_f32(b.d), dmin = fp16_to_f32(b.dmin);
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    get_scale_min_k4(s, b.scales, &sc, &m);
    affine(q + 32 * s, d * float(sc), dmin * float(m), 32, y + 32 * s);
  }
}
void decode_block(const BlockQ4_K& b, float* y) { decode_block_k4(b, y); }
void decode_block(const BlockQ5_K& b, float* y) { decode_block_k4(b, y); }

void decode_block(const BlockQ6_K& b, float* y) {
  int8_t q[kQK_K];
  levels(b, q);
  const float d = fp16_to_f32(b.d);
  for (int e = 0; e < kQK_K; ++e) y[e] = d * float(b.scales[e / 16]) * float(q[e]);
}

void decode_block(const BlockQ8_K& b, float* y) {
  for (int e = 0; e < kQK_K; ++e) y[e] = b.d * float(b.qs[e]);
}

}  // namespace

template <class Block>
void dequantize_row_kquant(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) decode_block(blocks[i], dst + i * kQK_K);
}

template void dequantize_row_kquant<BlockQ2_K>(const void*, float*, int64_t);
template void dequantize_row_kquant<BlockQ3_K>(const void*, float*, int64_t);
template void dequantize_row_kquant<BlockQ4_K>(const void*, float*, int64_t);
template void dequantize_row_kquant<BlockQ5_K>(const void*, float*, int64_t);
template void dequantize_row_kquant<BlockQ6_K>(const void*, float*, int64_t);
template void dequantize_row_kquant<BlockQ8_K>(const void*, float*, int64_t);

}  // namespace nibble::formats
