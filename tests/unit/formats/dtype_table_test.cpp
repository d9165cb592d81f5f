// Facts of the DType table.
#include <gtest/gtest.h>

#include <cctype>
#include <string>

#include "ir/dtype.h"
#include "support/error.h"

namespace nibble {
namespace {

struct Expected {
  DType type;
  const char* name;
  int block_size, bytes_per_block;
  bool quantized;
  int ggml_type;
  DType vec_dot_type;
};

constexpr Expected kExpected[] = {
    {DType::F32, "f32", 1, 4, false, 0, DType::F32},
    {DType::F16, "f16", 1, 2, false, 1, DType::F16},
    {DType::BF16, "bf16", 1, 2, false, 30, DType::BF16},
    {DType::I32, "i32", 1, 4, false, 26, DType::F32},
    {DType::I8, "i8", 1, 1, false, 24, DType::F32},
    {DType::U8, "u8", 1, 1, false, -1, DType::F32},
    {DType::Q4_0, "q4_0", 32, 18, true, 2, DType::Q8_0},
    {DType::Q4_1, "q4_1", 32, 20, true, 3, DType::Q8_1},
    {DType::Q5_0, "q5_0", 32, 22, true, 6, DType::Q8_0},
    {DType::Q5_1, "q5_1", 32, 24, true, 7, DType::Q8_1},
    {DType::Q8_0, "q8_0", 32, 34, true, 8, DType::Q8_0},
    {DType::Q8_1, "q8_1", 32, 36, true, 9, DType::Q8_1},
    {DType::Q2_K, "q2_k", 256, 84, true, 10, DType::Q8_K},
    {DType::Q3_K, "q3_k", 256, 110, true, 11, DType::Q8_K},
    {DType::Q4_K, "q4_k", 256, 144, true, 12, DType::Q8_K},
    {DType::Q5_K, "q5_k", 256, 176, true, 13, DType::Q8_K},
    {DType::Q6_K, "q6_k", 256, 210, true, 14, DType::Q8_K},
    {DType::Q8_K, "q8_k", 256, 292, true, 15, DType::Q8_K},
};
static_assert(std::size(kExpected) == size_t(DType::Count));

TEST(DTypeTable, Facts) {
  for (const Expected& e : kExpected) {
    SCOPED_TRACE(e.name);
    const DTypeInfo& info = dtype_info(e.type);
    EXPECT_EQ(info.type, e.type);
    EXPECT_STREQ(info.name, e.name);
    EXPECT_STREQ(dtype_name(e.type), e.name);
    EXPECT_EQ(info.block_size, e.block_size);
    EXPECT_EQ(info.bytes_per_block, e.bytes_per_block);
    EXPECT_EQ(info.quantized, e.quantized);
    EXPECT_EQ(is_quantized(e.type), e.quantized);
    EXPECT_EQ(info.ggml_type, e.ggml_type);
    EXPECT_EQ(info.vec_dot_type, e.vec_dot_type);
  }
}

TEST(DTypeTable, CodecsPresentExactlyForFloatAndQuantizedTypes) {
  for (const Expected& e : kExpected) {
    SCOPED_TRACE(e.name);
    const bool integer = e.type == DType::I32 || e.type == DType::I8 || e.type == DType::U8;
    EXPECT_EQ(dtype_info(e.type).dequantize_row == nullptr, integer);
    EXPECT_EQ(dtype_info(e.type).quantize_row == nullptr, integer);
  }
}

TEST(DTypeTable, NamesRoundTripCaseInsensitively) {
  for (const Expected& e : kExpected) {
    EXPECT_EQ(dtype_from_name(e.name), e.type) << e.name;
    std::string upper = e.name;
    for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(dtype_from_name(upper), e.type) << upper;
  }
  // ggml's spelling of the K-quants.
  EXPECT_EQ(dtype_from_name("q4_K"), DType::Q4_K);
  EXPECT_EQ(dtype_from_name("Q6_K"), DType::Q6_K);
  EXPECT_EQ(dtype_from_name("q8_K"), DType::Q8_K);
  EXPECT_EQ(dtype_from_name("BF16"), DType::BF16);
  EXPECT_FALSE(dtype_from_name(""));
  EXPECT_FALSE(dtype_from_name("q4"));
  EXPECT_FALSE(dtype_from_name("q4_k_m"));
  EXPECT_FALSE(dtype_from_name("f64"));
}

TEST(DTypeTable, GgmlIdsRoundTrip) {
  for (const Expected& e : kExpected) {
    if (e.ggml_type < 0) continue;
    EXPECT_EQ(dtype_from_ggml(uint32_t(e.ggml_type)), e.type) << e.name;
  }
  for (uint32_t id : {4u, 5u, 16u, 23u, 25u, 27u, 28u, 29u, 31u, 39u, 1000u, 0xFFFFFFFFu})
    EXPECT_FALSE(dtype_from_ggml(id)) << id;
}

TEST(DTypeTable, RowBytes) {
  EXPECT_EQ(row_bytes(DType::F32, 7), 28);
  EXPECT_EQ(row_bytes(DType::BF16, 3), 6);
  EXPECT_EQ(row_bytes(DType::I8, 5), 5);
  EXPECT_EQ(row_bytes(DType::Q4_0, 4096), 4096 / 32 * 18);
  EXPECT_EQ(row_bytes(DType::Q4_K, 4096), 16 * 144);
  EXPECT_EQ(row_bytes(DType::Q8_K, 256), 292);
  EXPECT_EQ(row_bytes(DType::Q6_K, 0), 0);
  EXPECT_THROW(row_bytes(DType::Q4_0, 33), Error);
  EXPECT_THROW(row_bytes(DType::Q2_K, 128), Error);
  EXPECT_THROW(row_bytes(DType::F32, -1), Error);
  EXPECT_THROW(dtype_info(DType::Count), Error);
}

}  // namespace
}  // namespace nibble
