// Writer round trips: every value type (extremes included), nested arrays, a tensor of every type with a
// ggml id, custom alignment; and the checks the writer and the accessors make.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "gguf_test_util.h"

namespace nibble::gguf {
namespace {

using test::expect_error;
using VT = ValueType;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> r(n);
  for (auto& b : r) b = static_cast<uint8_t>(rng());
  return r;
}

// Every DType that ggml can store in a file.
std::vector<DType> file_types() {
  std::vector<DType> r;
  for (int t = 0; t < static_cast<int>(DType::Count); ++t)
    if (dtype_info(static_cast<DType>(t)).ggml_type >= 0) r.push_back(static_cast<DType>(t));
  return r;
}

Writer full_writer() {
  Writer w;
  w.set("u8", Value::of_uint(VT::U8, 255));
  w.set("i8", Value::of_int(VT::I8, -128));
  w.set("u16", Value::of_uint(VT::U16, 65535));
  w.set("i16", Value::of_int(VT::I16, -32768));
  w.set("u32", Value::of_uint(VT::U32, 4294967295u));
  w.set("i32", Value::of_int(VT::I32, std::numeric_limits<int32_t>::min()));
  w.set("f32", Value::of_float(VT::F32, -0.0));
  w.set("bool", Value::of_bool(true));
  w.set("string", Value::of_string(std::string("a\0b\xe2\x96\x81", 6)));
  w.set("empty", Value::of_string(""));
  w.set("u64", Value::of_uint(VT::U64, std::numeric_limits<uint64_t>::max()));
  w.set("i64", Value::of_int(VT::I64, std::numeric_limits<int64_t>::min()));
  w.set("f64", Value::of_float(VT::F64, 1.0 / 3));
  w.set("f32nan", Value::of_float(VT::F32, std::numeric_limits<double>::quiet_NaN()));
  w.set("f64inf", Value::of_float(VT::F64, -std::numeric_limits<double>::infinity()));
  w.set_u32("set_u32", 7);
  w.set_i32("set_i32", -7);
  w.set_f32("set_f32", 1.5f);
  w.set_bool("set_bool", false);
  w.set_string("set_string", "hello");
  w.set_string_array("strings", {"a", "", "ccc"});
  // One array of each element type.
  for (VT t : {VT::U8, VT::I8, VT::U16, VT::I16, VT::U32, VT::I32, VT::U64, VT::I64}) {
    std::vector<Value> e;
    for (int k = 0; k < 3; ++k)
      e.push_back(static_cast<int>(t) % 2 ? Value::of_int(t, -k) : Value::of_uint(t, static_cast<uint64_t>(k) * 100));
    w.set(fmt::format("arr.{}", value_type_name(t)), Value::of_array(t, e));
  }
  w.set("arr.f32", Value::of_array(VT::F32, {Value::of_float(VT::F32, 0.1), Value::of_float(VT::F32, 1e30)}));
  w.set("arr.f64", Value::of_array(VT::F64, {Value::of_float(VT::F64, 0.1)}));
  w.set("arr.bool", Value::of_array(VT::BOOL, {Value::of_bool(true), Value::of_bool(false)}));
  w.set("arr.empty", Value::of_array(VT::U32, {}));
  // Arrays of arrays, three deep, with differing inner element types.
  Value inner1 = Value::of_array(VT::STRING, {Value::of_string("x"), Value::of_string("yz")});
  Value inner2 = Value::of_array(VT::I32, {Value::of_int(VT::I32, -1)});
  Value inner3 = Value::of_array(VT::U8, {});
  w.set("arr.arr", Value::of_array(VT::ARRAY, {inner1, inner2, inner3}));
  w.set("arr.arr.arr", Value::of_array(VT::ARRAY, {Value::of_array(VT::ARRAY, {inner1}), Value::of_array(VT::ARRAY, {})}));

  uint32_t seed = 1;
  for (DType t : file_types()) {
    const DTypeInfo& info = dtype_info(t);
    std::vector<int64_t> ne = {info.block_size * 2, 3};
    if (seed % 2) ne.push_back(2);
    size_t n = static_cast<size_t>(row_bytes(t, ne[0]) * 3 * (ne.size() == 3 ? 2 : 1));
    w.add_tensor(fmt::format("t.{}", info.name), t, ne, random_bytes(n, seed++));
  }
  w.add_tensor("t.4d", DType::F32, {1, 2, 3, 5}, random_bytes(4 * 30, 99));
  return w;
}

TEST(GgufWriter, RoundTripEveryValueTypeAndTensorType) {
  Writer w = full_writer();
  std::vector<uint8_t> bytes = w.to_bytes();
  auto f = File::parse(bytes.data(), bytes.size(), "full.gguf");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(bytes.size() % 32, 0u);

  EXPECT_EQ(f->find("u8")->u, 255u);
  EXPECT_EQ(f->find("i8")->i, -128);
  EXPECT_EQ(f->find("u16")->u, 65535u);
  EXPECT_EQ(f->find("i16")->i, -32768);
  EXPECT_EQ(f->find("u32")->u, 4294967295u);
  EXPECT_EQ(f->get_int("i32"), std::numeric_limits<int32_t>::min());
  EXPECT_TRUE(std::signbit(f->get_float("f32")));
  EXPECT_EQ(f->find("f32")->type, VT::F32);
  EXPECT_TRUE(f->get_bool("bool"));
  EXPECT_EQ(f->get_string("string"), std::string("a\0b\xe2\x96\x81", 6));
  EXPECT_EQ(f->get_string("empty"), "");
  EXPECT_EQ(f->find("u64")->u, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f->get_int("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f->get_float("f64"), 1.0 / 3);
  EXPECT_TRUE(std::isnan(f->get_float("f32nan")));
  EXPECT_EQ(f->get_float("f64inf"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(f->get_int("set_u32"), 7);
  EXPECT_EQ(f->get_int("set_i32"), -7);
  EXPECT_EQ(f->get_float("set_f32"), 1.5);
  EXPECT_FALSE(f->get_bool("set_bool"));
  EXPECT_EQ(f->get_string("set_string"), "hello");
  ASSERT_EQ(f->get_array("strings").size(), 3u);
  EXPECT_EQ(f->get_array("strings")[2].s, "ccc");
  EXPECT_EQ(f->get_array("arr.i16")[2].i, -2);
  EXPECT_EQ(f->get_array("arr.u64")[2].u, 200u);
  const Value* aa = f->find("arr.arr");
  ASSERT_EQ(aa->elem_type, VT::ARRAY);
  ASSERT_EQ(aa->array.size(), 3u);
  EXPECT_EQ(aa->array[0].elem_type, VT::STRING);
  EXPECT_EQ(aa->array[0].array[1].s, "yz");
  EXPECT_EQ(aa->array[1].array[0].i, -1);
  EXPECT_TRUE(aa->array[2].array.empty());
  EXPECT_EQ(f->find("arr.arr.arr")->array[0].array[0].array[1].s, "yz");

  // Metadata equals what was set, in order.
  Writer copy = Writer::copy_of(*f);
  std::vector<uint8_t> again = copy.to_bytes();
  EXPECT_EQ(again, bytes);

  // Tensors: every type, data aligned and intact.
  EXPECT_EQ(f->tensors().size(), file_types().size() + 1);
  uint32_t seed = 1;
  for (DType t : file_types()) {
    const TensorInfo& ti = f->tensor(fmt::format("t.{}", dtype_name(t)));
    EXPECT_EQ(ti.dtype, t);
    EXPECT_EQ(ti.offset % 32, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(ti.data) - reinterpret_cast<uintptr_t>(bytes.data()), ti.file_offset);
    EXPECT_EQ(std::vector<uint8_t>(ti.data, ti.data + ti.nbytes), random_bytes(ti.nbytes, seed++)) << dtype_name(t);
  }
  EXPECT_EQ(f->tensor("t.4d").ne, (std::vector<int64_t>{1, 2, 3, 5}));
  EXPECT_EQ(f->tensor("t.4d").n_elements(), 30);
}

TEST(GgufWriter, TypesCoverTheBrief) {
  std::vector<DType> types = file_types();
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K, DType::I8,
                  DType::I32})
    EXPECT_NE(std::find(types.begin(), types.end(), t), types.end()) << dtype_name(t);
}

TEST(GgufWriter, CustomAlignment) {
  for (uint32_t align : {1u, 8u, 64u, 4096u}) {
    SCOPED_TRACE(align);
    Writer w;
    w.set_u32("general.alignment", align);
    w.add_tensor("a", DType::Q8_0, {32}, random_bytes(34, 1));
    w.add_tensor("b", DType::F16, {3}, random_bytes(6, 2));
    w.add_tensor("c", DType::F32, {1}, random_bytes(4, 3));
    std::vector<uint8_t> bytes = w.to_bytes();
    auto f = File::parse(bytes.data(), bytes.size(), "aligned.gguf");
    EXPECT_EQ(f->alignment(), align);
    EXPECT_EQ(f->data_offset() % align, 0u);
    for (const TensorInfo& t : f->tensors()) EXPECT_EQ(t.file_offset % align, 0u);
    EXPECT_EQ(bytes.size() % align, 0u);
    EXPECT_EQ(f->tensor("b").data[5], random_bytes(6, 2)[5]);
  }
}

TEST(GgufWriter, NoTensorsNoPadding) {
  Writer w;
  w.set_string("general.architecture", "llama");
  std::vector<uint8_t> bytes = w.to_bytes();
  EXPECT_EQ(bytes.size(), 24u + 8 + 20 + 4 + 8 + 5);
  auto f = File::parse(bytes.data(), bytes.size(), "meta.gguf");
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(Writer().to_bytes().size(), 24u);
  std::vector<uint8_t> empty = Writer().to_bytes();
  EXPECT_EQ(File::parse(empty.data(), empty.size(), "empty.gguf")->metadata().size(), 0u);
}

TEST(GgufWriter, SetReplacesInPlace) {
  Writer w;
  w.set_u32("a", 1);
  w.set_u32("b", 2);
  w.set_string("a", "now a string");
  std::vector<uint8_t> bytes = w.to_bytes();
  auto f = File::parse(bytes.data(), bytes.size(), "m.gguf");
  ASSERT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata()[0].first, "a");
  EXPECT_EQ(f->get_string("a"), "now a string");
}

TEST(GgufWriter, RejectsBadInput) {
  Writer w;
  w.add_tensor("a", DType::F32, {4}, std::vector<uint8_t>(16));
  expect_error([&] { w.add_tensor("a", DType::F32, {4}, std::vector<uint8_t>(16)); }, {"duplicate tensor name 'a'"});
  expect_error([&] { w.add_tensor("b", DType::F32, {4}, std::vector<uint8_t>(15)); }, {"'b'", "15 bytes", "expected 16"});
  expect_error([&] { w.add_tensor("c", DType::Q4_0, {48}, std::vector<uint8_t>(27)); }, {"not a multiple", "32"});
  expect_error([&] { w.add_tensor("d", DType::F32, {}, {}); }, {"dimensions"});
  expect_error([&] { w.add_tensor("e", DType::F32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4)); }, {"dimensions"});
  expect_error([&] { w.add_tensor("f", DType::F32, {0}, {}); }, {"not positive"});
  expect_error([&] { w.add_tensor("g", DType::U8, {4}, std::vector<uint8_t>(4)); }, {"no ggml id"});
  expect_error([&] { w.add_tensor("", DType::F32, {1}, std::vector<uint8_t>(4)); }, {"empty tensor name"});
  expect_error([&] { w.add_tensor("h", DType::F32, {INT64_MAX / 2, 4}, {}); }, {"overflowing"});

  expect_error([] { Value::of_uint(VT::U8, 256); }, {"does not fit"});
  expect_error([] { Value::of_int(VT::I16, 40000); }, {"does not fit"});
  expect_error([] { Value::of_uint(VT::I32, 1); }, {"not an unsigned"});
  expect_error([] { Value::of_array(VT::U8, {Value::of_string("x")}); }, {"element 0"});

  Value bad;
  bad.type = VT::U8;
  bad.u = 1000;
  expect_error([&] { w.set("k", bad); }, {"'k'", "does not fit"});
  Value arr = Value::of_array(VT::U32, {});
  arr.array.push_back(Value::of_string("x"));
  expect_error([&] { w.set("k", arr); }, {"'k'", "array element 0"});
  Value deep = Value::of_array(VT::U8, {});
  for (int d = 1; d < kMaxArrayDepth; ++d) deep = Value::of_array(VT::ARRAY, {deep});
  Writer ok;
  ok.set("deep", deep);  // exactly the limit
  std::vector<uint8_t> bytes = ok.to_bytes();
  EXPECT_EQ(File::parse(bytes.data(), bytes.size(), "deep.gguf")->metadata().size(), 1u);
  expect_error([&] { w.set("k", Value::of_array(VT::ARRAY, {deep})); }, {"nested deeper"});

  Writer a;
  a.set("general.alignment", Value::of_uint(VT::U64, 32));
  expect_error([&] { a.to_bytes(); }, {"general.alignment"});
  a.set_u32("general.alignment", 48);
  expect_error([&] { a.to_bytes(); }, {"power of two"});
  expect_error([&] { Writer().write("/nonexistent/dir/x.gguf"); }, {"/nonexistent/dir/x.gguf"});
}

TEST(GgufValue, Accessors) {
  EXPECT_EQ(Value::of_uint(VT::U64, INT64_MAX).as_int("k"), INT64_MAX);
  expect_error([] { Value::of_uint(VT::U64, uint64_t(INT64_MAX) + 1).as_int("k"); }, {"'k'", "does not fit"});
  expect_error([] { Value::of_string("1").as_int("k"); }, {"'k'", "expected an integer, got string"});
  expect_error([] { Value::of_bool(true).as_int("k"); }, {"expected an integer, got bool"});
  EXPECT_EQ(Value::of_int(VT::I8, -3).as_float("k"), -3.0);
  EXPECT_EQ(Value::of_uint(VT::U16, 3).as_float("k"), 3.0);
  expect_error([] { Value::of_string("x").as_float("k"); }, {"expected a number"});
  expect_error([] { Value::of_uint(VT::U8, 1).as_bool("k"); }, {"expected a bool, got u8"});
  expect_error([] { Value::of_uint(VT::U8, 1).as_string("k"); }, {"expected a string, got u8"});
  EXPECT_TRUE(Value::of_uint(VT::U8, 1).is_integer());
  EXPECT_FALSE(Value::of_bool(true).is_integer());
  EXPECT_FALSE(Value::of_uint(VT::U8, 1) == Value::of_uint(VT::U16, 1));
  EXPECT_TRUE(Value::of_float(VT::F32, NAN) == Value::of_float(VT::F32, NAN));
  EXPECT_STREQ(ggml_type_name(23), "iq4_xs");
  EXPECT_STREQ(ggml_type_name(16), "iq2_xxs");
  EXPECT_STREQ(ggml_type_name(30), "bf16");
  EXPECT_EQ(ggml_type_name(1000), nullptr);
}

TEST(GgufFile, TypedGetters) {
  Writer w;
  w.set_u32("n", 5);
  w.set_string("s", "x");
  w.set_f32("f", 0.5f);
  w.set_bool("b", true);
  std::vector<uint8_t> bytes = w.to_bytes();
  auto f = File::parse(bytes.data(), bytes.size(), "getters.gguf");
  EXPECT_EQ(f->get_int("missing", -1), -1);
  EXPECT_EQ(f->get_float("missing", 2.5), 2.5);
  EXPECT_TRUE(f->get_bool("missing", true));
  EXPECT_EQ(f->get_string("missing", "def"), "def");
  EXPECT_EQ(f->get_int("n", -1), 5);
  EXPECT_EQ(f->get_float("n"), 5.0);
  EXPECT_EQ(f->get_float("f", 1.0), 0.5);
  EXPECT_TRUE(f->get_bool("b", false));
  EXPECT_EQ(f->get_string("s", "def"), "x");
  EXPECT_TRUE(f->has("n"));
  EXPECT_FALSE(f->has("missing"));
  expect_error([&] { f->get_int("missing"); }, {"getters.gguf: metadata key 'missing': missing"});
  expect_error([&] { f->get_string("n"); }, {"getters.gguf: metadata key 'n': expected a string, got u32"});
  expect_error([&] { f->get_int("s", 0); }, {"getters.gguf: metadata key 's': expected an integer"});
  expect_error([&] { f->get_bool("n", false); }, {"getters.gguf:", "expected a bool"});
  expect_error([&] { f->get_array("n"); }, {"getters.gguf: metadata key 'n': expected an array"});
  expect_error([&] { f->get_array("missing"); }, {"missing"});
  expect_error([&] { f->tensor("w"); }, {"getters.gguf: no tensor named 'w'"});
}

}  // namespace
}  // namespace nibble::gguf
