// The DType table: names, block geometry, ggml ids, activation formats and row codecs.
#include "ir/dtype.h"

#include <array>
#include <cctype>

#include "ir/formats/codecs.h"
#include "support/error.h"

namespace nibble {
namespace {

using namespace formats;
constexpr int kNoGgml = -1;

// One row per DType, in enum order (checked below).
constexpr std::array<DTypeInfo, size_t(DType::Count)> kTable = {{
    //  type        name    block bytes quant ggml    vec_dot_type dequantize_row, quantize_row
    {DType::F32,  "f32",  1,   4,   false, 0,       DType::F32,  &dequantize_row_f32, &quantize_row_f32},
    {DType::F16,  "f16",  1,   2,   false, 1,       DType::F16,  &dequantize_row_f16, &quantize_row_f16},
    {DType::BF16, "bf16", 1,   2,   false, 30,      DType::BF16, &dequantize_row_bf16, &quantize_row_bf16},
    {DType::I32,  "i32",  1,   4,   false, 26,      DType::F32,  nullptr, nullptr},
    {DType::I8,   "i8",   1,   1,   false, 24,      DType::F32,  nullptr, nullptr},
    {DType::U8,   "u8",   1,   1,   false, kNoGgml, DType::F32,  nullptr, nullptr},
    {DType::Q4_0, "q4_0", 32,  18,  true,  2,       DType::Q8_0, &dequantize_row_legacy<BlockQ4_0>, &quantize_row_legacy<BlockQ4_0>},
    {DType::Q4_1, "q4_1", 32,  20,  true,  3,       DType::Q8_1, &dequantize_row_legacy<BlockQ4_1>, &quantize_row_legacy<BlockQ4_1>},
    {DType::Q5_0, "q5_0", 32,  22,  true,  6,       DType::Q8_0, &dequantize_row_legacy<BlockQ5_0>, &quantize_row_legacy<BlockQ5_0>},
    {DType::Q5_1, "q5_1", 32,  24,  true,  7,       DType::Q8_1, &dequantize_row_legacy<BlockQ5_1>, &quantize_row_legacy<BlockQ5_1>},
    {DType::Q8_0, "q8_0", 32,  34,  true,  8,       DType::Q8_0, &dequantize_row_legacy<BlockQ8_0>, &quantize_row_legacy<BlockQ8_0>},
    {DType::Q8_1, "q8_1", 32,  36,  true,  9,       DType::Q8_1, &dequantize_row_legacy<BlockQ8_1>, &quantize_row_legacy<BlockQ8_1>},
    {DType::Q2_K, "q2_k", 256, 84,  true,  10,      DType::Q8_K, &dequantize_row_kquant<BlockQ2_K>, &quantize_row_kquant<BlockQ2_K>},
    {DType::Q3_K, "q3_k", 256, 110, true,  11,      DType::Q8_K, &dequantize_row_kquant<BlockQ3_K>, &quantize_row_kquant<BlockQ3_K>},
    {DType::Q4_K, "q4_k", 256, 144, true,  12,      DType::Q8_K, &dequantize_row_kquant<BlockQ4_K>, &quantize_row_kquant<BlockQ4_K>},
    {DType::Q5_K, "q5_k", 256, 176, true,  13,      DType::Q8_K, &dequantize_row_kquant<BlockQ5_K>, &quantize_row_kquant<BlockQ5_K>},
    {DType::Q6_K, "q6_k", 256, 210, true,  14,      DType::Q8_K, &dequantize_row_kquant<BlockQ6_K>, &quantize_row_kquant<BlockQ6_K>},
    {DType::Q8_K, "q8_k", 256, 292, true,  15,      DType::Q8_K, &dequantize_row_kquant<BlockQ8_K>, &quantize_row_kquant<BlockQ8_K>},
}};

constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < kTable.size(); ++i)
    if (size_t(kTable[i].type) != i) return false;
  return true;
}
static_assert(table_in_enum_order(), "kTable rows must follow the DType enum order");

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

const DTypeInfo& dtype_info(DType t) {
  if (size_t(t) >= kTable.size()) fail("dtype_info: invalid DType {}", int(t));
  return kTable[size_t(t)];
}

QuantizeRowFn activation_quantize_row(DType t) {
  switch (t) {
    case DType::Q8_0: return &quantize_row_q8_activation<BlockQ8_0>;
    case DType::Q8_1: return &quantize_row_q8_activation<BlockQ8_1>;
    default: return dtype_info(t).quantize_row;
  }
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const DTypeInfo& info : kTable)
    if (iequals(name, info.name)) return info.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_ggml(uint32_t ggml_type) {
  for (const DTypeInfo& info : kTable)
    if (info.ggml_type >= 0 && uint32_t(info.ggml_type) == ggml_type) return info.type;
  return std::nullopt;
}

int64_t row_bytes(DType t, int64_t n) {
  const DTypeInfo& info = dtype_info(t);
  if (n < 0 || n % info.block_size != 0)
    fail("row_bytes: {} elements is not a multiple of the {} block size {}", n, info.name, info.block_size);
  return n / info.block_size * info.bytes_per_block;
}

}  // namespace nibble
