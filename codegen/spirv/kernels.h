// The GLSL kernel templates of the Vulkan backend: one skeleton per kernel kind; weight formats
// contribute only their block decoder (a GLSL function per format, generated from one table in
// kernels.cpp). Tile sizes are specialization constants; feature variants (subgroup reductions,
// 16-/8-bit storage, f16 conversions, integer dot products) are chosen by ShaderFeatures and each
// has a fallback, so every variant can be forced on lavapipe.
//
// Push constants follow runtime/vulkan/plan.h: word 0 n_tokens, words 1..8 the byte offset of each
// binding's tensor inside its descriptor range, then the parameters listed per kernel below
// (p[i] = word 9 + i; "rows" are always fixed + per_token * n_tokens).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/dtype.h"

namespace nibble::vk {

struct ShaderFeatures {
  bool subgroup = false;   // subgroupAdd/subgroupMax reductions (else shared-memory trees)
  bool storage16 = false;  // 16-bit loads/stores (weights, f16 caches); else 32-bit words and shifts
  bool storage8 = false;   // 8-bit loads of weight bytes; else 32-bit words and shifts
  bool float16 = false;    // float16_t conversions (else packHalf2x16/unpackHalf2x16)
  bool int_dot = false;    // OpSDot (SPV_KHR_integer_dot_product) for int8 dots; else unpacked multiplies
  std::string str() const;  // "sg+s16+s8+f16+dot" style
};

struct KernelSource {
  std::string name;             // unique per (kind, format, variant): the pipeline name
  std::string glsl;
  std::vector<uint32_t> spec;   // spec[0]: workgroup size, then the kernel's tile constants
  uint32_t n_bindings = 0;
  uint32_t shared_bytes = 0;
};

struct GemvTiles {
  uint32_t wg = 64;      // invocations per workgroup (power of two), split along K
  uint32_t rows = 2;     // output rows (weight rows) per workgroup
  uint32_t tokens = 1;   // tokens per workgroup (weights decoded once for all of them)
};
struct GemmTiles {
  uint32_t bm = 64, bn = 32, bk = 32;  // weight rows x tokens x K per tile (bk a multiple of 8)
  uint32_t tm = 4, tn = 4;             // outputs per invocation; workgroup = (bm / tm) * (bn / tn)
  uint32_t wg() const { return (bm / tm) * (bn / tn); }
};

// Formats with a GPU decoder (every format with dequantize_row except i32/i8/u8).
bool gpu_format_supported(DType t);
// The GLSL decoder of a format: dq8(row_byte, e, out v0, out v1) (8 elements from e, e % 8 == 0),
// dqu(row_byte, e, out vec4 v[UNIT / 4]) (a unit: 32 elements of a block format, the block's prologue
// once; 8 for plain formats) and dq1(row_byte, e), reading the weight binding through ld8/ld16/ld32.
std::string format_decoder_glsl(DType t);

// qmatmul / matmul(transpose_b) on f32 activations, y[t, n] = sum_k a[t, k] w[n, k] (+ bias[n]) (+ res[t, n]).
// Bindings: 0 w, 1 a (f32 [M, K]), 2 out (f32 [M, N]), [3 bias], [4 residual].
// p0 N, p1 K, p2 weight row bytes, p3 row0 (slice), p4 nrows (slice), p5/p6 M fixed/per-token.
// GEMV groups: x = ceil(nrows / rows), y = ceil(M / tokens). GEMM groups: x = ceil(nrows / bm), y = ceil(M / bn).
KernelSource gemv_kernel(DType w, bool bias, bool residual, const GemvTiles& t, const ShaderFeatures& f);
KernelSource gemm_kernel(DType w, bool bias, bool residual, const GemmTiles& t, const ShaderFeatures& f);
// The benchmark's baseline: one invocation per output element, dequantize-then-multiply, no
// cooperation. Same bindings/params as gemv_kernel (no bias/residual); groups x = ceil(N / wg), y = M.
KernelSource naive_matmul_kernel(DType w, const ShaderFeatures& f);

// embedding: out[t, :] = decode(table row ids[t]); identity: row t (a standalone dequant).
// Bindings: 0 table, [1 ids i32], out. p0 D, p1 row bytes, p2 row0, p3 nrows, p4/p5 rows fixed/per-token.
// Groups: x = ceil(ceil(D / 8) / wg), y = rows.
KernelSource get_rows_kernel(DType t, bool identity, uint32_t wg, const ShaderFeatures& f);

// Element-wise f32: add/mul (b broadcast with period p3), swiglu, silu, gelu.
// Bindings: a, [b], out. p0 C, p1/p2 rows, p3 period of b (elements). Groups: x = ceil(C / wg), y = rows.
enum class Eltwise { Add, Mul, Swiglu, Silu, Gelu };
KernelSource eltwise_kernel(Eltwise op, uint32_t wg, const ShaderFeatures& f);

// rms_norm (layer = false) / layer_norm over rows. Bindings: x, [scale], [bias], out.
// p0 C, p1/p2 rows, p3 eps (f32). Groups: x = rows.
KernelSource norm_kernel(bool layer, bool scale, bool bias, uint32_t wg, const ShaderFeatures& f);

// softmax(x * scale + mask) over rows. Bindings: x, [mask], out. p0 C, p1/p2 rows, p3 mask rows,
// p4 scale (f32). Groups: x = rows.
KernelSource softmax_kernel(bool mask, uint32_t wg, const ShaderFeatures& f);

// rope on x [n, heads, head_dim]. Bindings: x, pos, out. p0 heads, p1 head_dim, p2 n_dims, p3 neox,
// p4 theta_scale (f32, base^(-2/n_dims)), p5 freq_scale (f32). Groups: x = heads, y = n.
KernelSource rope_kernel(uint32_t wg, const ShaderFeatures& f);

// kv_write: cache[pos[t], :] = x[t, :]. Bindings: x, pos, cache. p0 row (kv_heads * head_dim),
// p1 n_ctx. Groups: x = ceil(row / wg) (f16 without 16-bit storage: ceil(row / 2 / wg)), y = n.
KernelSource kv_write_kernel(bool f16, uint32_t wg, const ShaderFeatures& f);

// attention of q [n, H, d] over the cache rows 0..pos[t]. Bindings: q, k, v, pos, out.
// p0 H, p1 H_kv, p2 n_ctx, p3 scale (f32). Groups: x = H, y = n. `chunk` cache rows of scores live
// in shared memory: n_ctx <= chunk keeps them all (the reference's order of operations exactly),
// else an online max/sum pass precedes a second pass over chunks.
KernelSource attention_kernel(bool f16, uint32_t head_dim, uint32_t n_ctx, uint32_t chunk, uint32_t wg,
                              const ShaderFeatures& f);

// argmax over rows (lowest index on ties). Bindings: x, out (i32). p0 C, p1/p2 rows. Groups: x = rows.
KernelSource argmax_kernel(uint32_t wg, const ShaderFeatures& f);

// quantize f32 rows [M, K] to q8_0 or q8_1 (ggml's reference rounding) in a GPU-private layout:
// d[rows_max * K/32] (f32 holding the f16-rounded scale), for q8_1 s[...] (f16-rounded d * sum),
// isum[...] (i32 level sums), then the int8 levels [rows_max * K], 16-byte aligned.
// Bindings: x, out. p0 K, p1/p2 rows, p3/p4/p5 byte offsets of s, isum and the levels.
// Groups: x = ceil(K / 32 / wg), y = rows.
KernelSource quantize_kernel(DType act, uint32_t wg, const ShaderFeatures& f);

// GEMV on those quantized activations for q4_0/q5_0/q8_0 (q8_0 activations) and q4_1/q5_1 (q8_1):
// integer dots per block (OpSDot/OpSUDot with int_dot, else unpacked multiplies), the level offset
// subtracted through the activation block sums, scales combined per block as ggml's vec_dot.
// Bindings: 0 w, 1 the f32 activations (unused here: for a batch kernel sharing the descriptor set),
// 2 out, [3 bias], [4 residual], last: the quantized activations. Params as gemv_kernel, then
// p7/p8/p9 the quantize layout's offsets. Groups as gemv_kernel.
bool q8_gemv_supported(DType w);
KernelSource gemv_q8_kernel(DType w, bool bias, bool residual, const GemvTiles& t, const ShaderFeatures& f);

}  // namespace nibble::vk
