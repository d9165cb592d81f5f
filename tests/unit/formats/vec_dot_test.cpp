// The reference dot products against dequantize-then-dot in double.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ir/formats/block_layouts.h"
#include "ir/formats/vec_dot.h"
#include "support/fp16.h"
#include "support/error.h"
#include "test_util.h"

namespace nibble::test {
namespace {

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}
double abs_dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::fabs(double(a[i]) * double(b[i]));
  return s;
}
double norm(const std::vector<float>& a) { return std::sqrt(dot(a, a)); }

// Bound on |vec_dot - dot(dequant(w), x)| / (|dequant(w)| rms(x)): the activation's quantization
// error, which sums over the elements with random signs (so the normalization does not depend on n).
// Worst measured values in the comments; the bounds leave about 2x.
double activation_error_bound(DType vec_dot_type) {
  switch (vec_dot_type) {
    case DType::F32: return 2e-7;   // 7e-8: f32 rounding of the products and the result only
    case DType::F16: return 6e-4;   // 2.7e-4
    case DType::BF16: return 8e-3;  // 3.9e-3
    default: return 3.5e-2;         // q8_0 / q8_1 / q8_K: 1.7e-2
  }
}

// q8_1 keeps each block's activation sum as s = f16(d * sum(q)), and q4_1/q5_1 multiply their min by
// that s, not by the sum of the decoded activations: allow the f16 rounding of s (half an ulp,
// relative 2^-11), times |m|, per block.
template <class W>
double affine_min_slack(const std::vector<uint8_t>& wq, const std::vector<uint8_t>& xq, int64_t n) {
  const auto* w = reinterpret_cast<const W*>(wq.data());
  const auto* a = reinterpret_cast<const formats::BlockQ8_1*>(xq.data());
  double slack = 0;
  for (int64_t i = 0; i < n / 32; ++i)
    slack += std::fabs(double(fp16_to_f32(w[i].m))) * (std::fabs(double(fp16_to_f32(a[i].s))) * 0x1p-11 + 0x1p-25);
  return slack;
}
double activation_sum_slack(DType type, const std::vector<uint8_t>& wq, const std::vector<uint8_t>& xq, int64_t n) {
  if (type == DType::Q4_1) return affine_min_slack<formats::BlockQ4_1>(wq, xq, n);
  if (type == DType::Q5_1) return affine_min_slack<formats::BlockQ5_1>(wq, xq, n);
  return 0;
}

struct Case {
  DType type;
  int64_t n;
  float act_mean;  // a non-zero mean exercises the min / block-sum terms
};

class VecDot : public ::testing::TestWithParam<Case> {};

TEST_P(VecDot, MatchesDequantizedDotProducts) {
  const auto [type, n, act_mean] = GetParam();
  const DType act_type = dtype_info(type).vec_dot_type;
  double worst_exact = 0, worst_act = 0;  // the errors as fractions of their bounds
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE(fmt::format("{} x {}, n {}, seed {}", dtype_name(type), dtype_name(act_type), n, seed));
    const std::vector<float> w = gaussian(size_t(n), seed * 7919u);
    std::vector<float> x = gaussian(size_t(n), seed * 104729u);
    for (float& v : x) v += act_mean;
    const std::vector<uint8_t> wq = quantize(type, w), xq = quantize(act_type, x);
    const std::vector<float> wd = dequantize(type, wq, n), xd = dequantize(act_type, xq, n);

    const double got = vec_dot(type, wq.data(), xq.data(), n);
    // 1. Against the two operands as they decode: only the f32 combination of the exact integer block
    //    sums with the scales rounds, so the error is a few ulps of each block's contribution (plus
    //    the f16 rounding of q8_1's stored block sums).
    const double exact = dot(wd, xd);
    const double bound = abs_dot(wd, xd) * 1e-6 + activation_sum_slack(type, wq, xq, n);
    EXPECT_LE(std::fabs(got - exact), bound) << "got " << got << ", dequantized " << exact;
    worst_exact = std::max(worst_exact, std::fabs(got - exact) / bound);
    // 2. Against the unquantized activations: adds the activation's quantization error.
    const double with_f32_act = dot(wd, x);
    const double act_bound = norm(wd) * norm(x) / std::sqrt(double(n)) * activation_error_bound(act_type);
    EXPECT_LE(std::fabs(got - with_f32_act), act_bound) << "got " << got << ", with f32 activations " << with_f32_act;
    worst_act = std::max(worst_act, std::fabs(got - with_f32_act) / act_bound);
  }
  RecordProperty("worst_error_vs_dequantized_over_bound", fmt::format("{:.3g}", worst_exact));
  RecordProperty("worst_error_vs_f32_activations_over_bound", fmt::format("{:.3g}", worst_act));
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                         DType::Q5_1, DType::Q8_0, DType::Q8_1, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                         DType::Q5_K, DType::Q6_K, DType::Q8_K};
  for (DType t : types)
    for (int64_t n : {256, 512, 4096})
      for (float mean : {0.0f, 0.75f}) cases.push_back({t, n, mean});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(All, VecDot, ::testing::ValuesIn(all_cases()), [](const ::testing::TestParamInfo<Case>& info) {
  return fmt::format("{}_n{}_{}", dtype_name(info.param.type), info.param.n,
                     info.param.act_mean == 0.0f ? "centered" : "shifted");
});

TEST(VecDotErrors, RejectsIntegerTypesAndPartialBlocks) {
  std::vector<uint8_t> buf(4096);
  EXPECT_THROW(vec_dot(DType::I8, buf.data(), buf.data(), 16), Error);
  EXPECT_THROW(vec_dot(DType::I32, buf.data(), buf.data(), 16), Error);
  EXPECT_THROW(vec_dot(DType::Q4_0, buf.data(), buf.data(), 48), Error);
  EXPECT_THROW(vec_dot(DType::Q4_K, buf.data(), buf.data(), 128), Error);
  EXPECT_EQ(vec_dot(DType::Q4_K, buf.data(), buf.data(), 0), 0.0f);
}

// Hand-computed single blocks, independent of the quantizers.
TEST(VecDotBlocks, Q4_0TimesQ8_0) {
  std::vector<uint8_t> w(18, 0), a(34, 0);
  const uint16_t two = 0x4000, half = 0x3800;  // f16 2.0 and 0.5
  std::memcpy(w.data(), &two, 2);
  std::memcpy(a.data(), &half, 2);
  for (int j = 0; j < 16; ++j) w[2 + j] = uint8_t(9 | (6 << 4));  // elements 0..15: +1, 16..31: -2
  for (int j = 0; j < 32; ++j) a[2 + j] = uint8_t(int8_t(j - 10));
  int sumi = 0;
  for (int j = 0; j < 32; ++j) sumi += (j < 16 ? 1 : -2) * (j - 10);
  EXPECT_EQ(vec_dot(DType::Q4_0, w.data(), a.data(), 32), float(sumi) * 2.0f * 0.5f);
}

TEST(VecDotBlocks, Q4_KMinsUseActivationBlockSums) {
  // All levels 0, every sub-block min 1, dmin 1: the row decodes to -1 everywhere, so the dot product
  // is minus the sum of the activations, which q4_K takes from q8_K's bsums.
  std::vector<uint8_t> w(144, 0);
  const uint16_t one = 0x3C00;
  std::memcpy(w.data() + 2, &one, 2);                   // dmin
  for (int j = 4; j < 8; ++j) w[4 + j] = 1;             // mins of sub-blocks 0..3
  for (int j = 8; j < 12; ++j) w[4 + j] = uint8_t(1 << 4);  // low nibbles of the mins of 4..7
  std::vector<float> wd(256);
  dtype_info(DType::Q4_K).dequantize_row(w.data(), wd.data(), 256);
  for (float v : wd) ASSERT_EQ(v, -1.0f);
  const std::vector<float> x = gaussian(256, 99);
  const std::vector<uint8_t> xq = quantize(DType::Q8_K, x);
  const std::vector<float> xd = dequantize(DType::Q8_K, xq, 256);
  double sum = 0;
  for (float v : xd) sum += v;
  EXPECT_NEAR(vec_dot(DType::Q4_K, w.data(), xq.data(), 256), -sum, 1e-4);
}

}  // namespace
}  // namespace nibble::test
