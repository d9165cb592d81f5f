// Reference scalar dot products of the quantized-activation matmul path: the oracle that optimized
// (SIMD) kernels are checked against.
#pragma once
#include <cstdint>

#include "ir/dtype.h"

namespace nibble {

// Dot product of one row of n elements of weight_type with one activation row of n elements stored in
// dtype_info(weight_type).vec_dot_type (q8_0 for q4_0/q5_0/q8_0, q8_1 for q4_1/q5_1, q8_K for the
// K-quants, the type itself for f16/bf16/f32). n must be a multiple of the block size.
//
// Computes what ggml's generic (scalar) ggml_vec_dot_<type>_<vec_dot_type> computes: exact integer
// sums of level products per block (or sub-block), combined with the f16/f32 block scales in f32, in
// ggml's order. f32, f16 and bf16 accumulate the f32 products in double, as ggml_vec_dot_f32/f16/bf16.
// q8_1 x q8_1 and q8_K x q8_K (which ggml lacks) are sum_i d_w d_a sum(q_w q_a) per block.
// Throws nibble::Error for integer types or a bad n.
float vec_dot(DType weight_type, const void* weight_row, const void* act_row, int64_t n);

}  // namespace nibble
