// support/fp16.h against independent IEEE round-to-nearest-even conversions (what ggml's F16C
// instructions compute), since every f16 scale of every format goes through it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "support/fp16.h"

namespace nibble {
namespace {

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Decode by definition: (-1)^s 2^(e-15) (1 + m/1024), subnormals 2^-14 (m/1024).
float ref_half_to_float(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 31) return m ? std::nanf("") : float(sign * INFINITY);
  if (e == 0) return float(sign * std::ldexp(double(m), -24));
  return float(sign * std::ldexp(1024.0 + m, e - 25));
}

// Encode by definition, rounding to nearest even in double (all steps exact). Not for NaN.
uint16_t ref_float_to_half(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(double(f));
  if (a >= 65520.0) return sign | 0x7C00;  // 65520 is halfway to 2^16 and rounds to even: infinity
  if (a < std::ldexp(1.0, -14)) return uint16_t(sign | uint16_t(std::nearbyint(std::ldexp(a, 24))));
  int exp;
  std::frexp(a, &exp);  // a = m 2^exp, m in [0.5, 1)
  int e = exp - 1;      // a = 1.f 2^e
  double mant = std::nearbyint((std::ldexp(a, -e) - 1.0) * 1024.0);
  if (mant == 1024.0) {
    mant = 0;
    ++e;
  }
  if (e + 15 >= 31) return sign | 0x7C00;
  return uint16_t(sign | (e + 15) << 10 | int(mant));
}

TEST(Fp16, DecodesEveryHalfExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = fp16_to_f32(uint16_t(h)), want = ref_half_to_float(uint16_t(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << h;
      continue;
    }
    ASSERT_EQ(f32_to_bits(got), f32_to_bits(want)) << "half " << h;
  }
}

TEST(Fp16, EncodesRoundToNearestEven) {
  // Every half value, the floats next to it, and the midpoints to its neighbours and around them.
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    const float v = fp16_to_f32(uint16_t(h));
    const float next = h + 1 < 0x7C00 ? fp16_to_f32(uint16_t(h + 1)) : 65536.0f;
    const float mid = float((double(v) + double(next)) / 2);  // exact in f32
    for (float x : {v, std::nextafter(v, 0.0f), std::nextafter(v, INFINITY), mid, std::nextafter(mid, 0.0f),
                    std::nextafter(mid, INFINITY)}) {
      ASSERT_EQ(f32_to_fp16(x), ref_float_to_half(x)) << x;
      ASSERT_EQ(f32_to_fp16(-x), ref_float_to_half(-x)) << -x;
    }
  }
  // A spread of arbitrary bit patterns, NaN excepted.
  for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 4099) {
    const float x = float_of(uint32_t(u));
    if (std::isnan(x)) {
      ASSERT_EQ(f32_to_fp16(x) & 0x7E00, 0x7E00) << u;  // a quiet NaN
      continue;
    }
    ASSERT_EQ(f32_to_fp16(x), ref_float_to_half(x)) << "bits " << u;
  }
}

TEST(Bf16, RoundsToNearestEvenWithoutFlushingSubnormals) {
  for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 65521) {
    const float x = float_of(uint32_t(u));
    if (std::isnan(x)) continue;
    // Reference: the nearest bf16 in double arithmetic (ties to even mantissa).
    const uint16_t lo = uint16_t(u >> 16);
    const double below = double(float_of(uint32_t(lo) << 16));
    double above = double(float_of(uint32_t(uint16_t(lo + 1)) << 16));
    if (std::isinf(above)) above = std::copysign(std::ldexp(1.0, 128), above);  // rounding up overflows
    const double dx = double(x);
    uint16_t want;
    if ((u & 0xFFFF) == 0) want = lo;
    else if (std::fabs(dx - below) < std::fabs(above - dx)) want = lo;
    else if (std::fabs(dx - below) > std::fabs(above - dx)) want = uint16_t(lo + 1);
    else want = (lo & 1) ? uint16_t(lo + 1) : lo;
    ASSERT_EQ(f32_to_bf16(x), want) << "bits " << u;
    ASSERT_EQ(f32_to_bits(bf16_to_f32(want)) >> 16, want);
  }
  EXPECT_EQ(f32_to_bf16(float_of(0x00000001u)), 0x0000);  // the smallest subnormal rounds to +0
  EXPECT_EQ(f32_to_bf16(float_of(0x00018000u)), 0x0002);  // a subnormal tie, kept (not flushed), even
  EXPECT_EQ(f32_to_bf16(float_of(0x7FC00001u)) & 0x7FC0, 0x7FC0);
}

}  // namespace
}  // namespace nibble
