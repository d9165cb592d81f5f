// Row codecs of the plain floating-point types: f32 (copy), f16 and bf16 (ggml's conversions).
#include <cstring>

#include "ir/formats/codecs.h"
#include "support/fp16.h"

namespace nibble::formats {

void dequantize_row_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }
void quantize_row_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }

// Half-precision rows are read and written through memcpy: rows need not be 2-byte aligned.
template <float (*Decode)(uint16_t)>
static void dequantize_half_row(const void* src, float* dst, int64_t n) {
  const auto* bytes = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, bytes + 2 * i, 2);
    dst[i] = Decode(h);
  }
}

template <uint16_t (*Encode)(float)>
static void quantize_half_row(const float* src, void* dst, int64_t n) {
  auto* bytes = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = Encode(src[i]);
    std::memcpy(bytes + 2 * i, &h, 2);
  }
}

void dequantize_row_f16(const void* src, float* dst, int64_t n) { dequantize_half_row<fp16_to_f32>(src, dst, n); }
void quantize_row_f16(const float* src, void* dst, int64_t n) { quantize_half_row<f32_to_fp16>(src, dst, n); }
void dequantize_row_bf16(const void* src, float* dst, int64_t n) { dequantize_half_row<bf16_to_f32>(src, dst, n); }
void quantize_row_bf16(const float* src, void* dst, int64_t n) { quantize_half_row<f32_to_bf16>(src, dst, n); }

}  // namespace nibble::formats
