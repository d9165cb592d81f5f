// The codecs against llama.cpp's own outputs on the shared quantization test vectors.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "nqv1.h"
#include "support/error.h"
#include "test_util.h"

namespace nibble::test {
namespace {

struct Case {
  const char* file;        // ggml type name
  double summary_rmse;     // RMSE of llama.cpp's dequantized data vs the input, from quant/summary.json
};

class ReferenceVectors : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { v_ = read_quant_vectors(quant_vector_path(GetParam().file)); }
  QuantVectors v_;
};

TEST_P(ReferenceVectors, DequantizeIsBitExact) {
  const int64_t n = v_.n_rows * v_.n_cols;
  std::vector<float> y(static_cast<size_t>(n));
  dtype_info(v_.type).dequantize_row(v_.quantized.data(), y.data(), n);
  int mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (bits_of(y[size_t(i)]) != bits_of(v_.dequantized[size_t(i)]) && ++mismatches <= 5)
      ADD_FAILURE() << fmt::format("{} element {} (row {}, col {}): got {} ({:#010x}), llama.cpp {} ({:#010x})",
                                   v_.type_name, i, i / v_.n_cols, i % v_.n_cols, y[size_t(i)], bits_of(y[size_t(i)]),
                                   v_.dequantized[size_t(i)], bits_of(v_.dequantized[size_t(i)]));
  }
  EXPECT_EQ(mismatches, 0) << v_.type_name;
}

// The reader and the RMSE computation agree with llama.cpp's own summary.
TEST_P(ReferenceVectors, ReferenceRmseMatchesSummary) {
  EXPECT_NEAR(rmse(v_.dequantized, v_.input), GetParam().summary_rmse, 1e-8);
}

// Quantized row by row, since each row is an independent call in a model. Every format matches
// llama.cpp's reference quantizer byte for byte; the RMSE checks (overall and per row) document that
// nothing is lost where that would ever stop being true for the K-quants, whose searches are long
// chains of f32 arithmetic.
TEST_P(ReferenceVectors, QuantizeMatchesLlamaCpp) {
  const DTypeInfo& info = dtype_info(v_.type);
  const int64_t rb = v_.row_bytes();
  std::vector<uint8_t> q(size_t(v_.n_rows * rb));
  for (int64_t r = 0; r < v_.n_rows; ++r)
    info.quantize_row(v_.input.data() + r * v_.n_cols, q.data() + r * rb, v_.n_cols);

  const size_t bpb = size_t(v_.bytes_per_block);
  int differing_blocks = 0;
  for (size_t b = 0; b < q.size() / bpb; ++b) {
    if (std::memcmp(q.data() + b * bpb, v_.quantized.data() + b * bpb, bpb) != 0 && ++differing_blocks <= 3)
      ADD_FAILURE() << fmt::format("{} block {} (row {}) differs from llama.cpp's", v_.type_name, b,
                                   b / size_t(v_.n_cols / v_.block_size));
  }
  EXPECT_EQ(differing_blocks, 0) << v_.type_name;

  const std::vector<float> ours = dequantize(v_.type, q, v_.n_rows * v_.n_cols);
  const double rmse_ours = rmse(ours, v_.input), rmse_ref = rmse(v_.dequantized, v_.input);
  RecordProperty("rmse", fmt::format("{:.9g}", rmse_ours));
  RecordProperty("rmse_llama_cpp", fmt::format("{:.9g}", rmse_ref));
  EXPECT_LE(rmse_ours, rmse_ref * (1 + 1e-12)) << v_.type_name;
  for (int64_t r = 0; r < v_.n_rows; ++r) {
    const auto row = [&](const std::vector<float>& a) {
      return std::vector<float>(a.begin() + r * v_.n_cols, a.begin() + (r + 1) * v_.n_cols);
    };
    EXPECT_LE(rmse(row(ours), row(v_.input)), rmse(row(v_.dequantized), row(v_.input)) * (1 + 1e-12))
        << v_.type_name << " row " << r;
  }
}

constexpr Case kCases[] = {
    {"q4_0", 0.143524025}, {"q4_1", 0.187338919}, {"q5_0", 0.10941355},  {"q5_1", 0.0800815211},
    {"q8_0", 0.0189758292}, {"q8_K", 0.0408538287}, {"q2_K", 0.307082573}, {"q3_K", 0.172328452},
    {"q4_K", 0.123113543}, {"q5_K", 0.0746756118}, {"q6_K", 0.0450382632},
};

INSTANTIATE_TEST_SUITE_P(Llama, ReferenceVectors, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.file); });

TEST(QuantVectorReader, RejectsMissingAndMalformedFiles) {
  EXPECT_THROW(read_quant_vectors("/nonexistent/q4_0.bin"), Error);
  const std::string path = ::testing::TempDir() + "/bad.bin";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite("NQV2", 1, 4, f);
    std::fclose(f);
  }
  EXPECT_THROW(read_quant_vectors(path), Error);
}

TEST(QuantVectorReader, RejectsTruncatedFile) {
  const QuantVectors v = read_quant_vectors(quant_vector_path("q4_0"));
  std::ifstream in(quant_vector_path("q4_0"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string path = ::testing::TempDir() + "/truncated.bin";
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() - 1));
  try {
    read_quant_vectors(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected"), std::string::npos) << e.what();
  }
  EXPECT_EQ(v.n_rows, 8);
  EXPECT_EQ(v.n_cols, 1024);
}

}  // namespace
}  // namespace nibble::test
