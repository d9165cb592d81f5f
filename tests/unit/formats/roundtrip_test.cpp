// Quantize -> dequantize round trips of every format on random and awkward inputs.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "ir/formats/block_layouts.h"
#include "support/fp16.h"
#include "test_util.h"

namespace nibble::test {
namespace {

// Bound on RMSE(dequantized - x) / RMS(x) for 16384 N(0, 1) values, per format: the measured value
// (in the comment) plus 25%.
double relative_rmse_bound(DType t) {
  switch (t) {
    case DType::F32: return 0.0;
    case DType::F16: return 2.6e-4;   // 2.07e-4
    case DType::BF16: return 2.1e-3;  // 1.67e-3
    case DType::Q8_0: return 6.7e-3;  // 5.36e-3
    case DType::Q8_1: return 6.7e-3;  // 5.36e-3
    case DType::Q8_K: return 8.5e-3;  // 6.80e-3 (one scale per 256)
    case DType::Q6_K: return 2.2e-2;  // 1.76e-2
    case DType::Q5_K: return 4.5e-2;  // 3.61e-2
    case DType::Q5_0: return 5.3e-2;  // 4.26e-2
    case DType::Q5_1: return 4.8e-2;  // 3.81e-2
    case DType::Q4_K: return 8.9e-2;  // 7.12e-2
    case DType::Q4_0: return 1.07e-1; // 8.58e-2
    case DType::Q4_1: return 9.7e-2;  // 7.78e-2
    case DType::Q3_K: return 1.9e-1;  // 1.51e-1
    case DType::Q2_K: return 3.7e-1;  // 2.97e-1
    default: return 0.0;
  }
}

double relative_rmse(const std::vector<float>& y, const std::vector<float>& x) {
  return rmse(y, x) / rmse(x, std::vector<float>(x.size(), 0.0f));
}

class RoundTrip : public ::testing::TestWithParam<DType> {
 protected:
  DType t() const { return GetParam(); }
  int64_t block() const { return dtype_info(t()).block_size; }
  std::vector<float> round_trip(const std::vector<float>& x) const {
    return dequantize(t(), quantize(t(), x), int64_t(x.size()));
  }
};

TEST_P(RoundTrip, GaussianDataWithinFormatBound) {
  const std::vector<float> x = gaussian(16384, 42);
  const std::vector<float> y = round_trip(x);
  const double rel = relative_rmse(y, x);
  RecordProperty("relative_rmse", fmt::format("{:.3g}", rel));
  EXPECT_LE(rel, relative_rmse_bound(t()));
}

// Scaling the input by a power of two scales every intermediate exactly (while f16 scales stay
// normal), so the decoded values scale exactly too.
TEST_P(RoundTrip, PowerOfTwoScalingIsExact) {
  const std::vector<float> x = gaussian(4096, 43);
  const std::vector<float> y = round_trip(x);
  std::vector<float> xs = x;
  for (float& v : xs) v *= 64.0f;
  const std::vector<float> ys = round_trip(xs);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(bits_of(ys[i]), bits_of(y[i] * 64.0f)) << dtype_name(t()) << " " << i;
}

TEST_P(RoundTrip, QuantizationIsDeterministic) {
  const std::vector<float> x = gaussian(2048, 7);
  EXPECT_EQ(quantize(t(), x), quantize(t(), x));
}

TEST_P(RoundTrip, AllZerosDecodeToZero) {
  const std::vector<float> x(1024, 0.0f);
  for (float v : round_trip(x)) ASSERT_EQ(v, 0.0f) << dtype_name(t());
}

TEST_P(RoundTrip, ZeroBlockInsideDataStaysZero) {
  std::vector<float> x = gaussian(1024, 3);
  const int64_t b = block();
  const int64_t start = b == 256 ? 256 : 64;  // one whole block (a super-block for the K-quants)
  std::fill(x.begin() + start, x.begin() + start + b, 0.0f);
  const std::vector<float> y = round_trip(x);
  for (int64_t i = start; i < start + b; ++i) ASSERT_EQ(y[size_t(i)], 0.0f) << dtype_name(t()) << " element " << i;
  // The zeros lower RMS(x) by up to 1/sqrt(0.75) for the K-quants.
  EXPECT_LE(relative_rmse(y, x), relative_rmse_bound(t()) * 1.3);
}

TEST_P(RoundTrip, HugeOutliers) {
  std::vector<float> x = gaussian(4096, 11);
  const int64_t outliers[] = {5, 100, 333, 517, 700, 1000, 2049, 4095};
  for (int64_t i : outliers) x[size_t(i)] *= 1000.0f;
  x[3000] = -30000.0f;  // within f16 range even after dividing by the smallest level
  const std::vector<float> y = round_trip(x);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_TRUE(std::isfinite(y[i])) << dtype_name(t()) << " element " << i;
  // The outliers themselves set the block scales, so they come back nearly exactly.
  for (int64_t i : outliers) {
    const float v = x[size_t(i)];
    if (std::fabs(v) < 500.0f) continue;  // a small Gaussian draw times 1000 need not dominate its block
    EXPECT_NEAR(y[size_t(i)], v, std::fabs(v) * 0.2) << dtype_name(t()) << " element " << i;
  }
  EXPECT_NEAR(y[3000], -30000.0f, 30000.0f * 0.1) << dtype_name(t());
}

TEST_P(RoundTrip, ConstantAndTinyInputsStayFinite) {
  for (float c : {0.25f, -1.5f, 1e-20f, -3e-30f, 1e4f}) {
    const std::vector<float> x(512, c);
    const std::vector<float> y = round_trip(x);
    for (float v : y) {
      ASSERT_TRUE(std::isfinite(v)) << dtype_name(t()) << " constant " << c;
      // Never further from the input than the input is from zero (a scale that underflowed in f16
      // decodes to zero), and close for values an f16 scale can carry.
      ASSERT_LE(std::fabs(v - c), std::fabs(c) * 1.0001f) << dtype_name(t()) << " constant " << c;
      if (std::fabs(c) > 1e-3f) {
        ASSERT_NEAR(v, c, std::fabs(c) * 0.2) << dtype_name(t()) << " constant " << c;
      }
    }
  }
}

TEST_P(RoundTrip, SizeMismatchesAreRejectedByRowBytes) {
  EXPECT_EQ(row_bytes(t(), 4 * block()), 4 * dtype_info(t()).bytes_per_block);
}

INSTANTIATE_TEST_SUITE_P(All, RoundTrip, ::testing::ValuesIn(codec_types()),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

// ---- Format-specific facts.

TEST(Q8Activations, Q8_1MatchesQ8_0AndStoresScaledSum) {
  const std::vector<float> x = gaussian(1024, 5);
  const std::vector<uint8_t> a = quantize(DType::Q8_0, x), b = quantize(DType::Q8_1, x);
  const auto* q0 = reinterpret_cast<const formats::BlockQ8_0*>(a.data());
  const auto* q1 = reinterpret_cast<const formats::BlockQ8_1*>(b.data());
  for (int i = 0; i < 1024 / 32; ++i) {
    EXPECT_EQ(q0[i].d, q1[i].d);
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      EXPECT_EQ(q0[i].qs[j], q1[i].qs[j]);
      sum += q1[i].qs[j];
    }
    EXPECT_EQ(q1[i].s, f32_to_fp16(float(sum) * (std::fabs(*std::max_element(x.begin() + 32 * i, x.begin() + 32 * i + 32,
                                                                              [](float u, float v) { return std::fabs(u) < std::fabs(v); })) /
                                                        127.0f)));
  }
}

TEST(Q8Activations, Q8_KBlockSumsAndScale) {
  std::vector<float> x = gaussian(1024, 6);
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);
  const std::vector<uint8_t> q = quantize(DType::Q8_K, x);
  const auto* b = reinterpret_cast<const formats::BlockQ8_K*>(q.data());
  for (int i = 0; i < 4; ++i) {
    bool hit_extreme = false;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += b[i].qs[16 * g + j];
      EXPECT_EQ(b[i].bsums[g], sum) << "block " << i << " group " << g;
    }
    for (int j = 0; j < 256; ++j) hit_extreme |= b[i].qs[j] == -127 || b[i].qs[j] == 127;
    EXPECT_EQ(hit_extreme, i != 1) << "block " << i;
  }
  EXPECT_EQ(b[1].d, 0.0f);
}

TEST(HalfTypes, ConversionsMatchFp16Header) {
  const std::vector<float> x = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 1e-7f, 3.14159f, 1e30f, -1e-30f};
  const std::vector<uint8_t> h = quantize(DType::F16, x), b = quantize(DType::BF16, x);
  const std::vector<float> hy = dequantize(DType::F16, h, int64_t(x.size()));
  const std::vector<float> by = dequantize(DType::BF16, b, int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(bits_of(hy[i]), bits_of(fp16_to_f32(f32_to_fp16(x[i])))) << x[i];
    EXPECT_EQ(bits_of(by[i]), bits_of(bf16_to_f32(f32_to_bf16(x[i])))) << x[i];
  }
  EXPECT_EQ(hy[4], 65504.0f);
  EXPECT_TRUE(std::isinf(hy[7]));
  EXPECT_EQ(bits_of(hy[1]), 0x80000000u);
}

}  // namespace
}  // namespace nibble::test
