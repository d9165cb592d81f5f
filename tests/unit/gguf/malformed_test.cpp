// Malformed inputs: every one must throw nibble::Error naming the file and the offset, never crash,
// hang or allocate in proportion to a corrupt count.
#include <gtest/gtest.h>

#include "gguf_test_util.h"

namespace nibble::gguf {
namespace {

using test::Bytes;
using test::expect_error;
using test::expect_parse_error;
using test::parse_copy;

constexpr uint64_t kHuge = uint64_t(1) << 60;

// A small file with a bit of everything, written by our writer.
std::vector<uint8_t> small_file() {
  Writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_bool("flag", true);
  w.set("big", Value::of_uint(ValueType::U64, 1234567890123ull));
  w.set_string_array("tokens", {"<unk>", "a", "bc"});
  w.set("nested", Value::of_array(ValueType::ARRAY, {Value::of_array(ValueType::I16, {Value::of_int(ValueType::I16, -2)}),
                                                     Value::of_array(ValueType::STRING, {Value::of_string("s")})}));
  w.set("scores", Value::of_array(ValueType::F32, {Value::of_float(ValueType::F32, 0.5)}));
  w.add_tensor("a", DType::F32, {8}, std::vector<uint8_t>(32, 1));
  w.add_tensor("b", DType::Q4_0, {32, 2}, std::vector<uint8_t>(36, 2));
  w.add_tensor("c", DType::F16, {3}, std::vector<uint8_t>(6, 3));
  return w.to_bytes();
}

// Checks a parsed file against its buffer: every view lies inside it.
void check_views(const File& f, const std::vector<uint8_t>& buf) {
  for (const TensorInfo& t : f.tensors()) {
    ASSERT_GE(t.data, buf.data());
    ASSERT_LE(t.data + t.nbytes, buf.data() + buf.size());
  }
}

TEST(GgufMalformed, TruncationAtEveryOffset) {
  std::vector<uint8_t> full = small_file();
  std::vector<uint8_t> keep;
  ASSERT_EQ(parse_copy(full, full.size(), keep, "trunc.gguf")->tensors().size(), 3u);
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    std::string msg = expect_error([&] { parse_copy(full, n, keep, "trunc.gguf"); }, {"trunc.gguf: offset "});
    // The offset named lies within the truncated file (or at its end).
    size_t at = std::stoull(msg.substr(std::string("trunc.gguf: offset ").size()));
    EXPECT_LE(at, n) << msg;
  }
}

TEST(GgufMalformed, EveryByteCorrupted) {
  std::vector<uint8_t> full = small_file();
  std::vector<uint8_t> keep;
  for (size_t p = 0; p < full.size(); ++p) {
    for (int mode = 0; mode < 4; ++mode) {
      std::vector<uint8_t> b = full;
      b[p] = mode == 0 ? 0x00 : mode == 1 ? 0xff : mode == 2 ? uint8_t(b[p] ^ 0x80) : uint8_t(b[p] + 1);
      try {
        auto f = parse_copy(b, b.size(), keep, "flip.gguf");
        check_views(*f, keep);
      } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("flip.gguf: offset ", 0), 0u) << e.what();
      }
    }
  }
}

TEST(GgufMalformed, Header) {
  expect_parse_error(Bytes{}, {"mem.gguf: offset 0: header: unexpected end of file reading magic"});
  Bytes magic;
  magic.u32(0x46554746).u32(3).u64(0).u64(0);
  expect_parse_error(magic, {"mem.gguf: offset 0: header: bad magic 46 47 55 46", "expected \"GGUF\""});
  expect_parse_error(Bytes::header(0, 0, 1), {"mem.gguf: offset 4:", "version 1 is not supported"});
  expect_parse_error(Bytes::header(0, 0, 4), {"mem.gguf: offset 4:", "unsupported GGUF version 4 (expected version 2 or 3)"});
  expect_parse_error(Bytes::header(0, 0, 0x03000000), {"offset 4:", "big-endian"});
  Bytes v2 = Bytes::header(0, 0, 2);
  std::vector<uint8_t> keep;
  EXPECT_EQ(parse_copy(v2.b, v2.size(), keep)->version(), 2u);
  Bytes partial = Bytes::header(0, 0);
  partial.b.resize(20);
  expect_parse_error(partial, {"offset 16:", "unexpected end of file reading metadata count (need 8 bytes, 4 left)"});
}

TEST(GgufMalformed, HugeCounts) {
  expect_parse_error(Bytes::header(0, kHuge), {"offset 16:", "metadata count 1152921504606846976"});
  expect_parse_error(Bytes::header(kHuge, 0), {"offset 8:", "tensor count 1152921504606846976"});
  expect_parse_error(Bytes::header(~uint64_t(0), ~uint64_t(0)), {"offset 16:", "metadata count"});
  Bytes two = Bytes::header(2, 0);
  two.zeros(40);  // room for one minimal tensor info, not two
  expect_parse_error(two, {"offset 8:", "tensor count 2"});

  Bytes key = Bytes::header(0, 1);
  key.u64(kHuge).zeros(16);
  expect_parse_error(key, {"mem.gguf: offset 24: metadata entry 0: key length 1152921504606846976 exceeds the 16 bytes left"});

  Bytes str = Bytes::header(0, 1);
  str.str("k").u32(8).u64(kHuge);
  expect_parse_error(str, {"offset 37: metadata key 'k': string value length 1152921504606846976 exceeds"});

  for (uint32_t et : {0u, 8u, 9u, 10u}) {
    Bytes arr = Bytes::header(0, 1);
    arr.str("k").u32(9).u32(et).u64(kHuge).zeros(64);
    expect_parse_error(arr, {"offset 37: metadata key 'k': array of 1152921504606846976"});
  }
  Bytes arr = Bytes::header(0, 1);
  arr.str("k").u32(9).u32(8).u64(9).zeros(64);  // 9 strings need 72 bytes
  expect_parse_error(arr, {"array of 9 string elements needs at least 8 bytes each, only 64 bytes left"});

  // Enough bytes, but more elements than the per-file budget.
  Bytes many = Bytes::header(0, 1);
  many.str("k").u32(9).u32(0).u64(kMaxMetadataValues + 1).zeros(kMaxMetadataValues + 1);
  expect_parse_error(many, {"offset 37:", "exceeds the limit"});
}

TEST(GgufMalformed, Values) {
  Bytes t = Bytes::header(0, 1);
  t.str("k").u32(13).u32(0);
  expect_parse_error(t, {"offset 33: metadata key 'k': value type 13 is not a GGUF value type (expected 0..12)"});
  Bytes et = Bytes::header(0, 1);
  et.str("k").u32(9).u32(99).u64(0);
  expect_parse_error(et, {"offset 37:", "array element type 99 is not a GGUF value type"});
  Bytes b = Bytes::header(0, 1);
  b.str("k").u32(7).u8(2);
  expect_parse_error(b, {"offset 37: metadata key 'k': bool value 2 (expected 0 or 1)"});
  Bytes dup = Bytes::header(0, 2);
  dup.kv_u32("a", 1).kv_u32("a", 2);
  expect_parse_error(dup, {"offset 41: metadata entry 1: duplicate metadata key 'a'"});

  // Arrays nested to the limit parse; one level more does not.
  for (int depth : {kMaxArrayDepth, kMaxArrayDepth + 1}) {
    Bytes n = Bytes::header(0, 1);
    n.str("k").u32(9);
    for (int d = 1; d < depth; ++d) n.u32(9).u64(1);
    n.u32(0).u64(0);
    if (depth <= kMaxArrayDepth) {
      std::vector<uint8_t> keep;
      EXPECT_EQ(parse_copy(n.b, n.size(), keep)->metadata().size(), 1u);
    } else {
      expect_parse_error(n, {"offset " + std::to_string(37 + 12 * kMaxArrayDepth), "nested deeper than 16"});
    }
  }
}

TEST(GgufMalformed, Alignment) {
  for (uint32_t a : {0u, 3u, 48u}) {
    Bytes b = Bytes::header(0, 1);
    b.kv_u32("general.alignment", a);
    expect_parse_error(b, {"offset 53: metadata key 'general.alignment': alignment " + std::to_string(a) +
                           " is not a nonzero power of two"});
  }
  Bytes b = Bytes::header(0, 1);
  b.str("general.alignment").u32(10).u64(32);
  expect_parse_error(b, {"offset 53:", "general.alignment", "expected u32, got u64"});
  Bytes ok = Bytes::header(0, 1);
  ok.kv_u32("general.alignment", 64);
  std::vector<uint8_t> keep;
  EXPECT_EQ(parse_copy(ok.b, ok.size(), keep)->alignment(), 64u);
}

// One tensor info, padding, and `data` bytes of data.
Bytes one_tensor(std::vector<uint64_t> ne, uint32_t type, uint64_t offset = 0, size_t data = 64) {
  Bytes b = Bytes::header(1, 0);
  b.tensor("w", std::move(ne), type, offset).pad(32).zeros(data);
  return b;
}

TEST(GgufMalformed, TensorInfos) {
  // Offsets: info at 24, name "w" ends at 33, n_dims at 33, ne at 37.
  expect_parse_error(one_tensor({}, 0), {"mem.gguf: offset 33: tensor 'w': n_dims 0 (expected 1..4)"});
  expect_parse_error(one_tensor({1, 1, 1, 1, 1}, 0), {"offset 33:", "n_dims 5"});
  Bytes nd = Bytes::header(1, 0);
  nd.str("w").u32(0x80000000u).zeros(64);
  expect_parse_error(nd, {"offset 33: tensor 'w': n_dims 2147483648"});
  expect_parse_error(one_tensor({4, 0}, 0), {"offset 45: tensor 'w': ne[1] = 0"});
  expect_parse_error(one_tensor({uint64_t(1) << 63}, 0), {"offset 37:", "ne[0] = 9223372036854775808"});
  expect_parse_error(one_tensor({uint64_t(1) << 32, uint64_t(1) << 32}, 0), {"offset 37:", "element count overflows"});
  expect_parse_error(one_tensor({uint64_t(1) << 62}, 0), {"offset 37:", "data size overflows"});
  expect_parse_error(one_tensor({48}, 2), {"offset 37: tensor 'w': row length 48 is not a multiple of the q4_0 block size 32"});
  expect_parse_error(one_tensor({256}, 23), {"offset 45: tensor 'w': unsupported ggml type 23 (iq4_xs)"});
  expect_parse_error(one_tensor({256}, 16), {"unsupported ggml type 16 (iq2_xxs)"});
  expect_parse_error(one_tensor({32}, 4), {"unsupported ggml type 4 (q4_2)"});
  expect_parse_error(one_tensor({32}, 1000), {"offset 45:", "unknown ggml type 1000"});

  Bytes empty = Bytes::header(1, 0);
  empty.tensor("", {1}, 0, 0).pad(32).zeros(32);
  expect_parse_error(empty, {"offset 24: tensor info 0: empty tensor name"});
  Bytes dup = Bytes::header(2, 0);
  dup.tensor("w", {1}, 0, 0).tensor("w", {1}, 0, 32).pad(32).zeros(64);
  expect_parse_error(dup, {"offset 57: tensor info 1: duplicate tensor name 'w'"});
}

TEST(GgufMalformed, TensorData) {
  {  // valid: 8 floats at offset 0, 32 bytes of data
    Bytes ok = one_tensor({8}, 0, 0, 32);
    std::vector<uint8_t> keep;
    auto f = parse_copy(ok.b, ok.size(), keep);
    EXPECT_EQ(f->data_offset(), 64u);
    EXPECT_EQ(f->tensor("w").file_offset, 64u);
  }
  expect_parse_error(one_tensor({8}, 0, 4), {"offset 49: tensor 'w': data offset 4 is not a multiple of the alignment 32"});
  expect_parse_error(one_tensor({8}, 0, 32, 32), {"offset 49: tensor 'w': data [96, 128) padded to 128 extends past the end of the file (96 bytes)"});
  expect_parse_error(one_tensor({16}, 0, 0, 32), {"extends past the end of the file"});
  expect_parse_error(one_tensor({4}, 0, 0, 16), {"data [64, 80) padded to 96 extends past"});  // trailing padding missing
  expect_parse_error(one_tensor({8}, 0, ~uint64_t(31)), {"offset 49:", "overflows"});

  Bytes same = Bytes::header(2, 0);
  same.tensor("a", {8}, 0, 0).tensor("b", {8}, 0, 0).pad(32).zeros(64);
  expect_parse_error(same, {"tensor 'b': data [", "overlaps tensor 'a'"});
  Bytes partial = Bytes::header(2, 0);
  partial.tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad(32).zeros(96);
  expect_parse_error(partial, {"offset 82: tensor 'b': data [128, 160) overlaps tensor 'a' at [96, 160)"});
  Bytes reversed = Bytes::header(2, 0);  // out of order but disjoint is fine
  reversed.tensor("a", {8}, 0, 32).tensor("b", {8}, 0, 0).pad(32).zeros(64);
  std::vector<uint8_t> keep;
  EXPECT_EQ(parse_copy(reversed.b, reversed.size(), keep)->tensor("a").offset, 32u);
}

}  // namespace
}  // namespace nibble::gguf
