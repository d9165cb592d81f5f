// Codecs of the legacy 32-element formats, one template for all six (see legacy_helpers.h):
//   q4_0, q5_0  symmetric: d = max / -2^(bits-1) (max = the element of largest magnitude), q = x/d + offset
//   q4_1, q5_1  affine:    d = (max - min) / (2^bits - 1), m = min, q = (x - min) / d
//   q8_0, q8_1  8-bit:     d = amax / 127, q = round(x / d); q8_1 also stores s = d * sum(q)
// The quantizers reproduce ggml's quantize_row_*_ref bit for bit: the reciprocal scale is computed in
// f32 from the unrounded d, levels are truncated after adding 0.5 (nibble formats) or rounded half
// away from zero (8-bit formats), and only then is d rounded to f16 for storage.
// Activations are quantized differently (quantize_row_q8_activation): ggml's x86 CPU matmul converts
// src1 with its SIMD quantize_row_q8_0 / q8_1, whose reciprocal scale is 127 / amax and whose levels
// round half to even; a level off by one there is a logit off by ~0.1 a few tokens later.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ir/formats/codecs.h"
#include "ir/formats/legacy_helpers.h"
#include "support/fp16.h"

namespace nibble::formats {
using namespace legacy;

template <class Block>
void dequantize_row_legacy(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const Block& b = blocks[i];
    const float d = fp16_to_f32(b.d);
    float* y = dst + i * kQK;
    if constexpr (kAffine<Block>) {
      const float m = fp16_to_f32(b.m);
      // q * d is exact (5 + 11 significant bits), so this equals ggml's result fused or not.
      for (int j = 0; j < kQK; ++j) y[j] = float(int_value(b, j)) * d + m;
    } else {
      for (int j = 0; j < kQK; ++j) y[j] = float(int_value(b, j)) * d;
    }
  }
}

namespace {

// q8_0 / q8_1.
template <class Block>
void quantize_block_8bit(const float* x, Block& b) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = f32_to_fp16(d);
  int sum = 0;
  for (int j = 0; j < kQK; ++j) {
    b.qs[j] = int8_t(std::round(x[j] * id));
    sum += b.qs[j];
  }
  if constexpr (requires { b.s; }) b.s = f32_to_fp16(float(sum) * d);
}

// q8_0 / q8_1 as activations (ggml-cpu's AVX quantize_row_q8_0 / q8_1).
template <class Block>
void quantize_block_8bit_activation(const float* x, Block& b) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  b.d = f32_to_fp16(d);
  int sum = 0;
  for (int j = 0; j < kQK; ++j) {
    b.qs[j] = int8_t(std::nearbyint(x[j] * id));  // the default rounding mode: half to even
    sum += b.qs[j];
  }
  if constexpr (requires { b.s; }) b.s = f32_to_fp16(float(sum) * d);
}

// Chooses d (and m) of a nibble block and returns the unsigned levels.
template <class Block>
void choose_nibble_levels(const float* x, Block& b, uint8_t* q) {
  constexpr int kMax = kMaxLevel<Block>;
  if constexpr (kAffine<Block>) {
    float min = x[0], max = x[0];
    for (int j = 1; j < kQK; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / float(kMax);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = f32_to_fp16(d);
    b.m = f32_to_fp16(min);
    for (int j = 0; j < kQK; ++j) q[j] = uint8_t(std::min(kMax, int((x[j] - min) * id + 0.5f)));
  } else {
    // The signed element of largest magnitude (the first one on ties) maps to level 0.
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / float(-kOffset<Block>);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = f32_to_fp16(d);
    const float bias = float(kOffset<Block>) + 0.5f;
    for (int j = 0; j < kQK; ++j) q[j] = uint8_t(std::min(kMax, int(x[j] * id + bias)));
  }
}

template <class Block>
void pack_nibble_levels(const uint8_t* q, Block& b) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t lo = q[j], hi = q[j + kQK / 2];
    b.qs[j] = uint8_t((lo & 0x0F) | ((hi & 0x0F) << 4));
    qh |= uint32_t(lo >> 4 & 1) << j;
    qh |= uint32_t(hi >> 4 & 1) << (j + kQK / 2);
  }
  if constexpr (kFiveBit<Block>) std::memcpy(b.qh, &qh, 4);
}

}  // namespace

template <class Block>
void quantize_row_legacy(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    Block b{};
    if constexpr (kEightBit<Block>) {
      quantize_block_8bit(x, b);
    } else {
      uint8_t q[kQK];
      choose_nibble_levels(x, b, q);
      pack_nibble_levels(q, b);
    }
    std::memcpy(&blocks[i], &b, sizeof(Block));
  }
}

template <class Block>
void quantize_row_q8_activation(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    Block b{};
    quantize_block_8bit_activation(src + i * kQK, b);
    std::memcpy(&blocks[i], &b, sizeof(Block));
  }
}
template void quantize_row_q8_activation<BlockQ8_0>(const float* src, void* dst, int64_t n);
template void quantize_row_q8_activation<BlockQ8_1>(const float* src, void* dst, int64_t n);

#define NIBBLE_INSTANTIATE_LEGACY(Block)                                                   \
  template void dequantize_row_legacy<Block>(const void* src, float* dst, int64_t n); \
  template void quantize_row_legacy<Block>(const float* src, void* dst, int64_t n);
NIBBLE_INSTANTIATE_LEGACY(BlockQ4_0)
NIBBLE_INSTANTIATE_LEGACY(BlockQ4_1)
NIBBLE_INSTANTIATE_LEGACY(BlockQ5_0)
NIBBLE_INSTANTIATE_LEGACY(BlockQ5_1)
NIBBLE_INSTANTIATE_LEGACY(BlockQ8_0)
NIBBLE_INSTANTIATE_LEGACY(BlockQ8_1)
#undef NIBBLE_INSTANTIATE_LEGACY

}  // namespace nibble::formats
