// Building blocks shared by the K-quant codecs and dot products: rounding, the per-sub-block scale
// searches of ggml's reference quantizers, and the packing of 6-bit sub-block scales.
#pragma once
#include <cstdint>
#include <cstring>

namespace nibble::formats::kquant {

// Round to nearest, ties to even, for |x| <= 4194303 (ggml's nearest_int: the magic-number add).
inline int nearest_int(float x) {
  const float v = x + 12582912.0f;  // 1.5 * 2^23: the integer part lands in the low mantissa bits
  int32_t bits;
  std::memcpy(&bits, &v, 4);
  return (bits & 0x007FFFFF) - 0x00400000;
}

// Symmetric levels for a group: finds a scale s and levels L[i] in [0, 2 nmax) such that
// x[i] ~ s * (L[i] - nmax), minimizing sum w[i] (x[i] - s (L[i] - nmax))^2 with w = x^2 (or qw when
// given) over 19 candidate inverse scales -(nmax + 0.1 k) / max, k = -9..9, each refitted by least
// squares. Returns s (0 and all L = 0 for an all-zero group). ggml: make_qx_quants, rmse_type 1.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* qw);

// Symmetric levels for q3_K's 16-element groups: start from the max-magnitude scale, then up to five
// rounds of coordinate descent moving single levels while the weighted (w = x^2) fit improves.
// Levels L[i] in [0, 2 nmax). ggml: make_q3_quants with do_rmse.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L);

// Affine levels for a group: x[i] ~ scale * L[i] - the_min, L[i] in [0, nmax], the_min >= 0.
// Tries the inverse scales (nmax + rmin + rdelta k) / (max - min), k = 0..nstep, refits scale and
// min by weighted least squares for each, keeps the best by weighted squared (or absolute, use_mad)
// error. Returns the scale and writes the min (as a positive offset). ggml: make_qkx2_quants.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       float rmin, float rdelta, int nstep, bool use_mad);

// ---- q4_K / q5_K: 8 scales and 8 mins of 6 bits in 12 bytes. Sub-blocks 0-3 keep their scale in
// the low 6 bits of bytes 0-3 and their min in bytes 4-7; sub-blocks 4-7 keep the low nibbles in
// bytes 8-11 (scale low, min high) and their top 2 bits in bits 6-7 of bytes 0-3 (scale) and 4-7 (min).
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = uint8_t((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Inverse of get_scale_min_k4 for all 8 sub-blocks; sc[j], m[j] must be < 64.
inline void pack_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* q) {
  for (int j = 0; j < 12; ++j) q[j] = 0;
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      q[j] = sc[j];
      q[j + 4] = m[j];
    } else {
      q[j + 4] = uint8_t((sc[j] & 0x0F) | ((m[j] & 0x0F) << 4));
      q[j - 4] |= uint8_t((sc[j] >> 4) << 6);
      q[j] |= uint8_t((m[j] >> 4) << 6);
    }
  }
}

// ---- q3_K: 16 scales of 6 bits in 12 bytes. Scale j keeps its low nibble in byte j (j < 8) or in
// the high nibble of byte j - 8 (j >= 8), and its top 2 bits at bits 2 (j / 4) of byte 8 + j % 4.
// Stored values are biased by 32: the signed scale is value - 32.
inline int q3k_scale(const uint8_t* q, int j) {
  const int low = j < 8 ? (q[j] & 0x0F) : (q[j - 8] >> 4);
  const int high = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Packs 16 biased 6-bit values (signed scale + 32, in [0, 64)).
inline void pack_q3k_scales(const uint8_t* biased, uint8_t* q) {
  for (int j = 0; j < 12; ++j) q[j] = 0;
  for (int j = 0; j < 16; ++j) {
    const int l = biased[j];
    if (j < 8) q[j] = uint8_t(l & 0x0F);
    else q[j - 8] |= uint8_t((l & 0x0F) << 4);
    q[8 + j % 4] |= uint8_t((l >> 4) << (2 * (j / 4)));
  }
}

}  // namespace nibble::formats::kquant
