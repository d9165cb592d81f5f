// Where the K-quant formats keep the level of each element: the bit-plane layouts of block_layouts.h
// as unpack (block -> levels in element order) and pack (levels -> block) functions. The decoders,
// encoders and dot products all go through these, so each layout is written down once.
#pragma once
#include <cstdint>

#include "ir/formats/block_layouts.h"
#include "ir/formats/kquant_helpers.h"

namespace nibble::formats::kquant {

// 2-bit planes (q2_K, low bits of q3_K): qs[32 h + l] holds element 128 h + 32 s + l at bits 2 s.
inline void unpack_2bit_planes(const uint8_t* qs, uint8_t* q) {
  for (int e = 0; e < kQK_K; ++e) {
    const int h = e / 128, s = (e % 128) / 32, l = e % 32;
    q[e] = (qs[32 * h + l] >> (2 * s)) & 3;
  }
}
inline void pack_2bit_planes(const uint8_t* q, uint8_t* qs) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* e = q + 128 * h + l;
      qs[32 * h + l] = uint8_t((e[0] & 3) | (e[32] & 3) << 2 | (e[64] & 3) << 4 | (e[96] & 3) << 6);
    }
}

// 4-bit planes (q4_K, low bits of q5_K): qs[32 c + l] holds element 64 c + l (low nibble) and
// 64 c + 32 + l (high nibble).
inline void unpack_4bit_planes(const uint8_t* qs, uint8_t* q) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = qs[32 * c + l] & 0x0F;
      q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
    }
}
inline void pack_4bit_planes(const uint8_t* q, uint8_t* qs) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) qs[32 * c + l] = uint8_t((q[64 * c + l] & 0x0F) | (q[64 * c + 32 + l] & 0x0F) << 4);
}

// One extra level bit per element (q3_K hmask, q5_K qh): element 32 b + l at bit b of mask[l].
inline bool high_bit(const uint8_t* mask, int e) { return (mask[e % 32] >> (e / 32)) & 1; }
// Sets the mask from bit `bit` of every level.
inline void pack_high_bits(const uint8_t* q, int bit, uint8_t* mask) {
  for (int l = 0; l < 32; ++l) mask[l] = 0;
  for (int e = 0; e < kQK_K; ++e) mask[e % 32] |= uint8_t(((q[e] >> bit) & 1) << (e / 32));
}

// ---- Levels in element order, as the integers the dot products multiply.

// q2_K: levels in [0, 3].
inline void levels(const BlockQ2_K& b, int8_t* q) {
  uint8_t u[kQK_K];
  unpack_2bit_planes(b.qs, u);
  for (int e = 0; e < kQK_K; ++e) q[e] = int8_t(u[e]);
}
// q3_K: signed levels in [-4, 3] (stored level - 4; a clear hmask bit means -4).
inline void levels(const BlockQ3_K& b, int8_t* q) {
  uint8_t u[kQK_K];
  unpack_2bit_planes(b.qs, u);
  for (int e = 0; e < kQK_K; ++e) q[e] = int8_t(u[e] - (high_bit(b.hmask, e) ? 0 : 4));
}
// q4_K: levels in [0, 15].
inline void levels(const BlockQ4_K& b, int8_t* q) {
  uint8_t u[kQK_K];
  unpack_4bit_planes(b.qs, u);
  for (int e = 0; e < kQK_K; ++e) q[e] = int8_t(u[e]);
}
// q5_K: levels in [0, 31].
inline void levels(const BlockQ5_K& b, int8_t* q) {
  uint8_t u[kQK_K];
  unpack_4bit_planes(b.qs, u);
  for (int e = 0; e < kQK_K; ++e) q[e] = int8_t(u[e] | (high_bit(b.qh, e) ? 16 : 0));
}
// q6_K: signed levels in [-32, 31]. See BlockQ6_K for the layout.
inline void levels(const BlockQ6_K& b, int8_t* q) {
  for (int e = 0; e < kQK_K; ++e) {
    const int h = e / 128, s = (e % 128) / 32, l = e % 32;
    const uint8_t lo_byte = b.ql[64 * h + l + 32 * (s & 1)];
    const int lo = s < 2 ? (lo_byte & 0x0F) : (lo_byte >> 4);
    const int hi = (b.qh[32 * h + l] >> (2 * s)) & 3;
    q[e] = int8_t((lo | hi << 4) - 32);
  }
}
// q6_K: stores levels given as unsigned values in [0, 63].
inline void pack_q6k_levels(const uint8_t* q, BlockQ6_K& b) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* e = q + 128 * h + l;
      b.ql[64 * h + l] = uint8_t((e[0] & 0x0F) | (e[64] & 0x0F) << 4);
      b.ql[64 * h + l + 32] = uint8_t((e[32] & 0x0F) | (e[96] & 0x0F) << 4);
      b.qh[32 * h + l] = uint8_t((e[0] >> 4) | (e[32] >> 4) << 2 | (e[64] >> 4) << 4 | (e[96] >> 4) << 6);
    }
}

// ---- Sub-block scales as integers.

// q2_K sub-block s (16 elements): scale and min, 4 bits each.
inline int q2k_scale(const BlockQ2_K& b, int s) { return b.scales[s] & 0x0F; }
inline int q2k_min(const BlockQ2_K& b, int s) { return b.scales[s] >> 4; }

}  // namespace nibble::formats::kquant
