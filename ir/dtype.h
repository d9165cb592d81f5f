// Element types of the IR, including GGML block-quantized formats with their exact block layouts.
// A type knows its block size, its bytes per block, and how to decode (and encode) a row of blocks.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace nibble {

enum class DType : uint8_t {
  F32, F16, BF16, I32, I8, U8,
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
  Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
  Count
};

// Decodes n elements (n a multiple of block_size) of packed row data into f32.
using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);
// Encodes n f32 elements (n a multiple of block_size) into packed row data.
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n);

struct DTypeInfo {
  DType type;
  const char* name;          // IR spelling: "f32", "q4_0", "q4_k", ...
  int block_size;            // elements per block (1 for plain types)
  int bytes_per_block;       // bytes of one block
  bool quantized;            // block-quantized
  int ggml_type;             // ggml_type id, -1 when GGML has none
  DType vec_dot_type;        // activation format ggml's CPU matmul converts src1 to (F32 for F32)
  DequantizeRowFn dequantize_row;  // null for integer types
  QuantizeRowFn quantize_row;      // reference quantizer, null where none
};

const DTypeInfo& dtype_info(DType t);
// How ggml's (x86) CPU matmul converts activations to a vec_dot_type, the `quantize` op's semantics.
// The same as quantize_row except for q8_0 / q8_1, whose SIMD quantizer takes 127 / amax as the
// reciprocal scale and rounds levels half to even. Null where quantize_row is null.
QuantizeRowFn activation_quantize_row(DType t);
inline const char* dtype_name(DType t) { return dtype_info(t).name; }
inline bool is_quantized(DType t) { return dtype_info(t).quantized; }
std::optional<DType> dtype_from_name(std::string_view name);  // accepts "q4_K" and "q4_k"
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
// Bytes of a row of n elements; n must be a multiple of the block size.
int64_t row_bytes(DType t, int64_t n);

}  // namespace nibble
