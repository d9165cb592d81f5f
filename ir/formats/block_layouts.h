// Byte layouts of GGML's block-quantized formats, exactly as stored in GGUF files and ggml buffers.
//
// Every struct is packed (alignment 1), so a block may be read from any address. Half-precision
// fields are raw IEEE binary16 bit patterns (decode with support/fp16.h). All multi-byte fields
// are little-endian.
//
// Naming of the quant levels: "q" is the stored unsigned level of one element; the decoded value
// is `d * (q - offset)` for the symmetric formats, `d * q + m` for the legacy formats with a min,
// and `d * sc * q - dmin * m` for the K-quants (sc and m being per-sub-block 4- or 6-bit scales).
#pragma once
#include <cstdint>

#include "ir/dtype.h"

namespace nibble::formats {

inline constexpr int kQK = 32;    // elements per legacy block (q4_0 ... q8_1)
inline constexpr int kQK_K = 256; // elements per K-quant super-block

#pragma pack(push, 1)

// ---- Legacy formats: 32 elements per block. Element j < 16 lives in the low nibble of qs[j],
// element j >= 16 in the high nibble of qs[j - 16]. The 5-bit formats keep bit 4 of element j in
// bit j of the little-endian u32 qh.

// q4_0: x = d * (q - 8), q in [0, 15].
struct BlockQ4_0 {
  uint16_t d;           // scale (f16)
  uint8_t qs[kQK / 2];  // 4-bit levels
  static constexpr DType kType = DType::Q4_0;
};

// q4_1: x = d * q + m, q in [0, 15].
struct BlockQ4_1 {
  uint16_t d;           // scale (f16)
  uint16_t m;           // min (f16)
  uint8_t qs[kQK / 2];  // 4-bit levels
  static constexpr DType kType = DType::Q4_1;
};

// q5_0: x = d * (q - 16), q in [0, 31].
struct BlockQ5_0 {
  uint16_t d;           // scale (f16)
  uint8_t qh[4];        // bit 4 of every level, element j at bit j
  uint8_t qs[kQK / 2];  // low 4 bits of the levels
  static constexpr DType kType = DType::Q5_0;
};

// q5_1: x = d * q + m, q in [0, 31].
struct BlockQ5_1 {
  uint16_t d;           // scale (f16)
  uint16_t m;           // min (f16)
  uint8_t qh[4];        // bit 4 of every level, element j at bit j
  uint8_t qs[kQK / 2];  // low 4 bits of the levels
  static constexpr DType kType = DType::Q5_1;
};

// q8_0: x = d * q, q in [-127, 127]. Also the activation format of q4_0/q5_0/q8_0 dot products.
struct BlockQ8_0 {
  uint16_t d;      // scale (f16)
  int8_t qs[kQK];  // signed levels, element order
  static constexpr DType kType = DType::Q8_0;
};

// q8_1: x = d * q; the activation format of q4_1/q5_1 dot products.
struct BlockQ8_1 {
  uint16_t d;      // scale (f16)
  uint16_t s;      // f16(d * sum(qs)), used to apply the weight's min in dot products
  int8_t qs[kQK];  // signed levels, element order
  static constexpr DType kType = DType::Q8_1;
};

// ---- K-quants: 256-element super-blocks made of 16 sub-blocks of 16 or 8 sub-blocks of 32.
//
// Layout of 2-bit level planes (q2_K qs, q3_K qs): the super-block is two halves of 128; in half h,
// byte qs[32 h + l] holds elements 128 h + 32 s + l at bits 2 s .. 2 s + 1, s = 0..3.
// Layout of 4-bit planes (q4_K/q5_K qs): in chunk c of 64 elements, byte qs[32 c + l] holds element
// 64 c + l in its low nibble and 64 c + 32 + l in its high nibble.

// q2_K: x = d * (scales[s] & 15) * q - dmin * (scales[s] >> 4), q in [0, 3], 16 sub-blocks of 16.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];  // low nibble: scale, high nibble: min, per sub-block
  uint8_t qs[kQK_K / 4];       // 2-bit level planes
  uint16_t d;                  // super-block scale for the scales (f16)
  uint16_t dmin;               // super-block scale for the mins (f16)
  static constexpr DType kType = DType::Q2_K;
};

// q3_K: x = d * (sc[s] - 32) * (q - 4), q in [0, 7], 16 sub-blocks of 16 with 6-bit scales sc.
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];  // bit 2 of the levels: element 32 b + l at bit b of hmask[l]
  uint8_t qs[kQK_K / 4];     // low 2 bits of the levels (2-bit planes)
  uint8_t scales[12];        // 16 x 6 bits: low nibbles in [0, 8), high 2 bits in [8, 12)
  uint16_t d;                // super-block scale (f16)
  static constexpr DType kType = DType::Q3_K;
};

// q4_K: x = d * sc[s] * q - dmin * m[s], q in [0, 15], 8 sub-blocks of 32 with 6-bit sc and m.
struct BlockQ4_K {
  uint16_t d;               // super-block scale for the scales (f16)
  uint16_t dmin;            // super-block scale for the mins (f16)
  uint8_t scales[12];       // 8 scales and 8 mins, 6 bits each (see kquant_helpers.h)
  uint8_t qs[kQK_K / 2];    // 4-bit planes
  static constexpr DType kType = DType::Q4_K;
};

// q5_K: as q4_K with a fifth level bit, q in [0, 31].
struct BlockQ5_K {
  uint16_t d;               // super-block scale for the scales (f16)
  uint16_t dmin;            // super-block scale for the mins (f16)
  uint8_t scales[12];       // 8 scales and 8 mins, 6 bits each
  uint8_t qh[kQK_K / 8];    // bit 4 of the levels: element 32 b + l at bit b of qh[l]
  uint8_t qs[kQK_K / 2];    // low 4 bits (4-bit planes)
  static constexpr DType kType = DType::Q5_K;
};

// q6_K: x = d * scales[s] * (q - 32), q in [0, 63], 16 sub-blocks of 16 with int8 scales.
// In half h (128 elements), element 128 h + 32 s + l has its low nibble in
// ql[64 h + l + 32 (s & 1)] (low nibble for s < 2, high nibble for s >= 2) and its high
// 2 bits at bits 2 s of qh[32 h + l].
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];       // low 4 bits of the levels
  uint8_t qh[kQK_K / 4];       // high 2 bits of the levels
  int8_t scales[kQK_K / 16];   // signed 8-bit sub-block scales
  uint16_t d;                  // super-block scale (f16)
  static constexpr DType kType = DType::Q6_K;
};

// q8_K: x = d * q, q in [-128, 127]; the activation format of the K-quant dot products.
struct BlockQ8_K {
  float d;                      // scale (f32)
  int8_t qs[kQK_K];             // signed levels, element order
  int16_t bsums[kQK_K / 16];    // sum of qs over each group of 16
  static constexpr DType kType = DType::Q8_K;
};

#pragma pack(pop)

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

}  // namespace nibble::formats
