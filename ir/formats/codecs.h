// Row codecs of every format, as wired into the DType table (dtype.cpp). Internal to nibble_formats;
// everyone else reaches them through dtype_info(t).dequantize_row / quantize_row.
#pragma once
#include <cstdint>

#include "ir/formats/block_layouts.h"

namespace nibble::formats {

// plain_types.cpp: f32 (copy), f16 and bf16 (round to nearest even).
void dequantize_row_f32(const void* src, float* dst, int64_t n);
void quantize_row_f32(const float* src, void* dst, int64_t n);
void dequantize_row_f16(const void* src, float* dst, int64_t n);
void quantize_row_f16(const float* src, void* dst, int64_t n);
void dequantize_row_bf16(const void* src, float* dst, int64_t n);
void quantize_row_bf16(const float* src, void* dst, int64_t n);

// legacy_quants.cpp: instantiated for BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1.
template <class Block> void dequantize_row_legacy(const void* src, float* dst, int64_t n);
template <class Block> void quantize_row_legacy(const float* src, void* dst, int64_t n);
// Instantiated for BlockQ8_0 and BlockQ8_1: ggml-cpu's activation quantizer (see legacy_quants.cpp).
template <class Block> void quantize_row_q8_activation(const float* src, void* dst, int64_t n);

// kquants_decode.cpp / kquants_encode.cpp: instantiated for BlockQ2_K ... BlockQ8_K.
template <class Block> void dequantize_row_kquant(const void* src, float* dst, int64_t n);
template <class Block> void quantize_row_kquant(const float* src, void* dst, int64_t n);

}  // namespace nibble::formats
