// Each ISA level of the f16 routines against support/fp16.h and plain loops: conversions bit-exact
// (NaN, inf, subnormals, rounding ties), products within float rounding.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "runtime/cpu/f16_ops.h"
#include "support/fp16.h"
#include "tests/unit/runtime_cpu/test_util.h"

namespace nibble::rt {
namespace {

std::vector<float> tricky_floats(size_t n) {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e9f, INFINITY,
                          -INFINITY, NAN, -NAN, 5.96e-8f, 2.98e-8f, 2.9802322e-8f, 8.9e-8f, 6.1e-5f, 6.097e-5f,
                          1e-40f, -1e-30f, 1.00048828125f /* tie */, 1.00146484375f /* tie */};
  std::mt19937 rng(99);
  while (v.size() < n) {  // random bit patterns, and random floats in f16 range
    uint32_t u = rng();
    float f;
    std::memcpy(&f, &u, 4);
    v.push_back(f);
    v.push_back(std::ldexp(float(int32_t(rng()) % 4096) / 2048.0f, int(rng() % 40) - 28));
  }
  v.resize(n);
  return v;
}

class F16Ops : public testing::TestWithParam<F16Level> {};

TEST_P(F16Ops, ConversionsAreBitExact) {
  const rt::F16Ops& ops = f16_ops_at(GetParam());
  SCOPED_TRACE(ops.name);
  for (size_t n : {size_t(1), size_t(7), size_t(16), size_t(37), size_t(4099)}) {
    std::vector<float> x = tricky_floats(n);
    std::vector<uint16_t> h(n + 1, 0x1234);
    ops.to_f16(x.data(), h.data(), int64_t(n));
    std::vector<float> r(n + 1, 123.0f);
    ops.round_f16(x.data(), r.data(), int64_t(n));
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(h[i], f32_to_fp16(x[i])) << "x=" << x[i] << " i=" << i;
      const float want = round_to_fp16(x[i]);
      ASSERT_EQ(std::memcmp(&r[i], &want, 4), 0) << "x=" << x[i] << " got " << r[i] << " want " << want;
    }
    EXPECT_EQ(h[n], 0x1234);  // no write past the end
    EXPECT_EQ(r[n], 123.0f);
  }
}

TEST_P(F16Ops, ScoresAndWeightedSum) {
  const rt::F16Ops& ops = f16_ops_at(GetParam());
  SCOPED_TRACE(ops.name);
  for (int64_t d : {1, 7, 8, 16, 24, 64, 80, 128, 136, 200, 256, 300})
    for (int64_t n : {0, 1, 3, 4, 9}) {
      SCOPED_TRACE(testing::Message() << "d=" << d << " n=" << n);
      const int64_t stride = d + 5;
      auto q = test::random_floats(size_t(d), 1), p = test::random_floats(size_t(n), 2, 0.0f, 1.0f);
      auto kf = test::random_floats(size_t(n * stride + 1), 3);
      std::vector<uint16_t> k(kf.size());
      for (size_t i = 0; i < k.size(); ++i) k[i] = f32_to_fp16(kf[i]);
      std::vector<float> s(size_t(n) + 1, NAN), acc(size_t(d) + 1, NAN);
      s[n] = 77.0f, acc[d] = 77.0f;
      ops.scores(q.data(), k.data(), stride, d, n, s.data());
      ops.weighted_sum(p.data(), k.data(), stride, d, n, acc.data());
      for (int64_t c = 0; c < n; ++c) {
        double want = 0, mag = 0;
        for (int64_t j = 0; j < d; ++j) {
          want += double(q[j]) * fp16_to_f32(k[c * stride + j]);
          mag += std::abs(double(q[j]) * fp16_to_f32(k[c * stride + j]));
        }
        EXPECT_NEAR(s[c], want, 1e-6 * mag + 1e-30) << c;
      }
      for (int64_t j = 0; j < d; ++j) {
        double want = 0, mag = 0;
        for (int64_t c = 0; c < n; ++c) {
          want += double(p[c]) * fp16_to_f32(k[c * stride + j]);
          mag += std::abs(double(p[c]) * fp16_to_f32(k[c * stride + j]));
        }
        EXPECT_NEAR(acc[j], want, 1e-6 * mag + 1e-30) << j;
      }
      EXPECT_EQ(s[n], 77.0f);
      EXPECT_EQ(acc[d], 77.0f);
    }
}

INSTANTIATE_TEST_SUITE_P(Levels, F16Ops, testing::Values(F16Level::Portable, F16Level::Avx2, F16Level::Avx512),
                         [](const testing::TestParamInfo<F16Level>& i) {
                           return std::string(i.param == F16Level::Portable ? "Portable"
                                              : i.param == F16Level::Avx2   ? "Avx2"
                                                                            : "Avx512");
                         });

TEST(F16OpsSelection, BestLevelIsUsed) {
  // Informational: which implementation this machine runs.
  std::printf("f16 ops: %s\n", f16_ops().name);
  EXPECT_NE(f16_ops().scores, nullptr);
}

}  // namespace
}  // namespace nibble::rt
