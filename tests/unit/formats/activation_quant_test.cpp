// activation_quantize_row: what ggml's x86 CPU matmul quantizes activations with. For q8_0 / q8_1 it
// differs from the weight quantizer (ggml's *_ref) in two ways, each pinned here by a block where
// only that rule decides; every other type is its quantize_row.
#include <cmath>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "ir/dtype.h"
#include "ir/formats/block_layouts.h"
#include "support/fp16.h"
#include "tests/unit/formats/test_util.h"

namespace nibble {
namespace {

using formats::BlockQ8_0;
using formats::BlockQ8_1;

template <class Block>
Block activation_block(const std::vector<float>& x, DType t) {
  Block b;
  activation_quantize_row(t)(x.data(), &b, 32);
  return b;
}

template <class Block>
Block weight_block(const std::vector<float>& x, DType t) {
  Block b;
  dtype_info(t).quantize_row(x.data(), &b, 32);
  return b;
}

// amax 127: the scale is 1 both ways, so levels x.5 show the rounding rule alone.
std::vector<float> halves() {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = float(j % 9) - 4.5f;
  x[0] = 127.0f;
  return x;
}

TEST(ActivationQuant, Q8LevelsRoundHalfToEven) {
  const std::vector<float> x = halves();
  const BlockQ8_0 a = activation_block<BlockQ8_0>(x, DType::Q8_0);
  const BlockQ8_0 w = weight_block<BlockQ8_0>(x, DType::Q8_0);
  for (int j = 1; j < 32; ++j) {
    const float v = x[size_t(j)];
    EXPECT_EQ(a.qs[j], int8_t(std::nearbyint(v))) << "activation, element " << j << " = " << v;
    EXPECT_EQ(w.qs[j], int8_t(std::round(v))) << "weight, element " << j << " = " << v;
  }
  EXPECT_NE(std::memcmp(&a, &w, sizeof a), 0);  // -4.5 -> -4 as an activation, -5 as a weight
  const BlockQ8_1 a1 = activation_block<BlockQ8_1>(x, DType::Q8_1);
  int sum = 0;
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(a1.qs[j], a.qs[j]) << j;
    sum += a1.qs[j];
  }
  EXPECT_EQ(a1.s, f32_to_fp16(float(sum) * (127.0f / 127.0f)));
}

// 127 / amax and 1 / (amax / 127) differ in the last bit for some amax; find one where that moves a
// level and check the activation quantizer takes 127 / amax.
TEST(ActivationQuant, Q8ReciprocalScaleIs127OverAmax) {
  int checked = 0;
  for (int i = 1; i < 20000 && checked < 3; ++i) {
    const float amax = 1.0f + float(i) * 1e-4f;
    const float id_act = 127.0f / amax, id_ref = 1.0f / (amax / 127.0f);
    if (id_act == id_ref) continue;
    // An element whose scaled value straddles a rounding boundary between the two reciprocals.
    for (int q = 1; q < 127; ++q) {
      const float x = (float(q) + 0.5f) / id_act;
      if (std::nearbyint(x * id_act) == std::nearbyint(x * id_ref) && std::round(x * id_act) == std::round(x * id_ref))
        continue;
      std::vector<float> v(32, 0.0f);
      v[0] = amax;
      v[1] = x;
      const BlockQ8_0 a = activation_block<BlockQ8_0>(v, DType::Q8_0);
      EXPECT_EQ(a.qs[1], int8_t(std::nearbyint(x * id_act))) << "amax " << amax << " x " << x;
      EXPECT_EQ(a.qs[0], 127);
      ++checked;
      break;
    }
  }
  EXPECT_GT(checked, 0) << "no amax where the two reciprocals move a level: the test lost its teeth";
}

TEST(ActivationQuant, OtherTypesAreTheirQuantizeRow) {
  for (DType t : {DType::F16, DType::BF16, DType::Q8_K, DType::Q4_0, DType::Q4_K})
    EXPECT_EQ(activation_quantize_row(t), dtype_info(t).quantize_row) << dtype_name(t);
  EXPECT_EQ(activation_quantize_row(DType::I32), nullptr);
}

// Zero blocks stay zero (no division by zero), and the scale is stored as f16(amax / 127).
TEST(ActivationQuant, Q8ZeroBlockAndScale) {
  const BlockQ8_0 z = activation_block<BlockQ8_0>(std::vector<float>(32, 0.0f), DType::Q8_0);
  EXPECT_EQ(z.d, 0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(z.qs[j], 0);
  std::vector<float> x = test::gaussian(32, 5);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  EXPECT_EQ(activation_block<BlockQ8_0>(x, DType::Q8_0).d, f32_to_fp16(amax / 127.0f));
}

}  // namespace
}  // namespace nibble
