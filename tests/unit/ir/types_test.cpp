// DType geometry, dims and TensorType printing.
#include <gtest/gtest.h>

#include "ir/dtype.h"
#include "ir/types.h"
#include "support/error.h"

namespace nibble {
namespace {

struct Geometry {
  DType type;
  const char* name;
  int block_size;
  int bytes_per_block;
  bool quantized;
};

// GGML's block layouts (ggml-common.h): the bytes of one block and the elements it holds.
const Geometry kGeometry[] = {
    {DType::F32, "f32", 1, 4, false},      {DType::F16, "f16", 1, 2, false},
    {DType::BF16, "bf16", 1, 2, false},    {DType::I32, "i32", 1, 4, false},
    {DType::I8, "i8", 1, 1, false},        {DType::U8, "u8", 1, 1, false},
    {DType::Q4_0, "q4_0", 32, 18, true},   {DType::Q4_1, "q4_1", 32, 20, true},
    {DType::Q5_0, "q5_0", 32, 22, true},   {DType::Q5_1, "q5_1", 32, 24, true},
    {DType::Q8_0, "q8_0", 32, 34, true},   {DType::Q8_1, "q8_1", 32, 36, true},
    {DType::Q2_K, "q2_k", 256, 84, true},  {DType::Q3_K, "q3_k", 256, 110, true},
    {DType::Q4_K, "q4_k", 256, 144, true}, {DType::Q5_K, "q5_k", 256, 176, true},
    {DType::Q6_K, "q6_k", 256, 210, true}, {DType::Q8_K, "q8_k", 256, 292, true},
};

TEST(IrTypes, EveryDTypeHasGgmlBlockGeometry) {
  ASSERT_EQ(std::size(kGeometry), size_t(DType::Count));
  for (const Geometry& g : kGeometry) {
    SCOPED_TRACE(g.name);
    const DTypeInfo& info = dtype_info(g.type);
    EXPECT_EQ(info.type, g.type);
    EXPECT_STREQ(info.name, g.name);
    EXPECT_STREQ(dtype_name(g.type), g.name);
    EXPECT_EQ(info.block_size, g.block_size);
    EXPECT_EQ(info.bytes_per_block, g.bytes_per_block);
    EXPECT_EQ(is_quantized(g.type), g.quantized);
    EXPECT_EQ(row_bytes(g.type, 0), 0);
    EXPECT_EQ(row_bytes(g.type, 4 * g.block_size), 4 * g.bytes_per_block);
    if (g.block_size > 1) {
      EXPECT_THROW(row_bytes(g.type, g.block_size + 1), Error);
    }
  }
}

TEST(IrTypes, DTypeNamesParseCaseInsensitively) {
  for (const Geometry& g : kGeometry) {
    EXPECT_EQ(dtype_from_name(g.name), g.type);
    std::string upper = g.name;
    for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(dtype_from_name(upper), g.type) << upper;
  }
  EXPECT_EQ(dtype_from_name("q4_K"), DType::Q4_K);
  EXPECT_FALSE(dtype_from_name("f33"));
  EXPECT_FALSE(dtype_from_name(""));
  EXPECT_FALSE(dtype_from_name("q4_"));
  EXPECT_THROW(dtype_info(DType::Count), Error);
  EXPECT_THROW(row_bytes(DType::F32, -1), Error);
}

TEST(IrTypes, Dims) {
  Dim s = 64;
  EXPECT_TRUE(s.is_static());
  EXPECT_EQ(s.value, 64);
  Dim n = Dim::sym("n_tokens");
  EXPECT_FALSE(n.is_static());
  EXPECT_EQ(dim_str(s), "64");
  EXPECT_EQ(dim_str(n), "n_tokens");
  EXPECT_EQ(n, Dim::sym("n_tokens"));
  EXPECT_NE(n, Dim::sym("n"));
  EXPECT_NE(Dim(0), Dim::sym("n"));  // a symbolic dim's value is 0, but it is not the static 0
  EXPECT_NE(Dim(1), Dim(2));
}

TEST(IrTypes, TensorTypeStrAndCounts) {
  TensorType t(DType::Q4_K, {Dim::sym("n"), 4, 256});
  EXPECT_EQ(t.str(), "q4_k[n, 4, 256]");
  EXPECT_EQ(t.rank(), 3);
  EXPECT_FALSE(t.is_static());
  EXPECT_EQ(t.static_elements(), 1024);
  EXPECT_EQ(t.dim(-1), Dim(256));
  EXPECT_EQ(t.dim(0), Dim::sym("n"));

  TensorType scalar(DType::F32, {});
  EXPECT_EQ(scalar.str(), "f32[]");
  EXPECT_TRUE(scalar.is_static());
  EXPECT_EQ(scalar.num_elements(), 1);

  TensorType s(DType::BF16, {2, 3, 7});
  EXPECT_EQ(s.str(), "bf16[2, 3, 7]");
  EXPECT_EQ(s.num_elements(), 42);
  EXPECT_EQ(s, TensorType(DType::BF16, {2, 3, 7}));
  EXPECT_NE(s, TensorType(DType::F16, {2, 3, 7}));
  EXPECT_NE(s, TensorType(DType::BF16, {2, 3}));
  EXPECT_EQ(TensorType(DType::F32, {0, 5}).num_elements(), 0);
}

}  // namespace
}  // namespace nibble
