// Hostile input: truncations, byte flips, garbage, huge and deeply nested text. The parser must
// throw nibble::Error (never crash or throw anything else), and whatever parses must print and
// parse back to the same text.
#include <chrono>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ir_test_util.h"

namespace nibble {
namespace {

const char* kModule = R"(module @m attributes {eps = 1e-05, name = "a\"b\x01"} {
  weight @w : q4_0[8, 64] {offset = 0}
  state @c : f16[4, 2, 4]
  func @f(%x: f32[n, 64], %p: i32[n]) -> (f32[n, 8], f16[4, 2, 4]) {
    %0 = weight() {ref = @w} : q4_0[8, 64]
    %1 = qmatmul(%x, %0) : f32[n, 8]
    %2 = permute(%1) {perm = [1, 0]} : f32[8, n]
    %3 = reshape(%1) : f32[n, 2, 4]
    %4 = state() {ref = @c} : f16[4, 2, 4]
    %5 = kv_write(%4, %3, %p) : f16[4, 2, 4]
    return %1, %5
  }
}
)";

// Parses `text`; when it parses, checks that verification, printing and re-parsing all work.
// Returns whether it parsed. Any exception other than nibble::Error fails the test.
bool parse_checked(std::string_view text) {
  std::unique_ptr<Module> m;
  try {
    m = parse_module(text, "t.nir");
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-nibble::Error " << e.what() << " on:\n" << text;
    return false;
  }
  size_t problems = verify(*m).size();
  std::string printed = print_module(*m);
  std::unique_ptr<Module> back;
  EXPECT_NO_THROW(back = parse_module(printed, "printed.nir")) << printed;
  if (back) {
    EXPECT_EQ(print_module(*back), printed);
    EXPECT_EQ(verify(*back).size(), problems) << printed;
  }
  return true;
}

TEST(IrParserRobustness, EveryTruncationThrowsError) {
  std::string text = kModule;
  ASSERT_TRUE(parse_checked(text));
  size_t last_brace = text.rfind('}');
  for (size_t n = 0; n < text.size(); ++n) {
    bool parsed = parse_checked(std::string_view(text).substr(0, n));
    EXPECT_EQ(parsed, n > last_brace) << "prefix of " << n << " bytes";
  }
}

TEST(IrParserRobustness, ByteFlipsAndDeletions) {
  std::string text = kModule;
  std::mt19937 rng(1234);
  const char interesting[] = "{}[]()%@\":=,-0123456789e.x\\\n\x00\xff q";
  for (int i = 0; i < 3000; ++i) {
    std::string t = text;
    int edits = 1 + int(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % t.size();
      switch (rng() % 3) {
        case 0: t[at] = interesting[rng() % (sizeof interesting - 1)]; break;
        case 1: t.erase(at, 1 + rng() % 4); break;
        default: t.insert(at, 1, interesting[rng() % (sizeof interesting - 1)]); break;
      }
      if (t.empty()) t = "m";
    }
    parse_checked(t);
  }
}

TEST(IrParserRobustness, BinaryGarbage) {
  std::mt19937 rng(99);
  for (int i = 0; i < 2000; ++i) {
    std::string t(rng() % 200, '\0');
    for (char& c : t) c = char(rng());
    if (i % 2) t = "module @m {\n" + t;  // get past the first token half of the time
    EXPECT_FALSE(parse_checked(t));
  }
  EXPECT_FALSE(parse_checked(std::string("module @m {\0}", 13)));
  EXPECT_FALSE(parse_checked(std::string(1 << 16, '\0')));
}

TEST(IrParserRobustness, NumbersAtTheLimits) {
  auto with_dims = [](const std::string& dims) {
    return "module @m {\n  func @f(%x: f32[" + dims + "]) -> (f32[" + dims + "]) {\n    return %x\n  }\n}\n";
  };
  EXPECT_TRUE(parse_checked(with_dims("1099511627776")));  // 2^40 exactly
  EXPECT_TRUE(parse_checked(with_dims("0, 1099511627776")));
  EXPECT_TRUE(parse_checked(with_dims("1024, 1024, 1024, 1024")));
  EXPECT_TRUE(parse_checked(with_dims("0, 0, 0, 0, 0, 0, 0, 0")));
  EXPECT_TRUE(parse_checked(with_dims("+5")));
  // Products past 2^40 used to be accepted dim by dim and overflow int64 in the reshape rule
  // (2^40 * 2^40 wrapped to 0, so reshaping it to f32[0] verified).
  EXPECT_THAT(testing::parse_error(with_dims("1099511627776, 1099511627776")),
              ::testing::HasSubstr("type has more than 2^40 elements"));
  EXPECT_THAT(testing::parse_error(with_dims("1099511627776, 1099511627776, 0")),
              ::testing::HasSubstr("type has more than 2^40 elements"));
  EXPECT_THAT(testing::parse_error(with_dims("65536, 65536, 65536, 65536, 65536, 65536, 65536, 65536")),
              ::testing::HasSubstr("type has more than 2^40 elements"));
  for (const char* dim : {"1099511627777", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                          "18446744073709551616", "340282366920938463463374607431768211456"})
    EXPECT_FALSE(parse_checked(with_dims(dim))) << dim;
  auto attr = [](const std::string& v) { return "module @m attributes {k = " + v + "} {\n}\n"; };
  EXPECT_TRUE(parse_checked(attr("9223372036854775807")));
  EXPECT_TRUE(parse_checked(attr("-9223372036854775808")));
  EXPECT_TRUE(parse_checked(attr("[9223372036854775807, -9223372036854775808]")));
  EXPECT_TRUE(parse_checked(attr("1.7976931348623157e308")));
  EXPECT_TRUE(parse_checked(attr("4.9e-324")));
  EXPECT_TRUE(parse_checked(attr("1e-320")));  // subnormal
  EXPECT_THAT(testing::parse_error(attr("1e-400")), ::testing::HasSubstr("float 1e-400 is out of range"));
  EXPECT_FALSE(parse_checked(attr(std::string(5000, '9'))));
  EXPECT_FALSE(parse_checked(attr("0." + std::string(5000, '0') + "1e99999")));
}

TEST(IrParserRobustness, DeepAndLongInputs) {
  auto start = std::chrono::steady_clock::now();
  // The grammar has no recursion, so nesting fails at the first extra bracket.
  EXPECT_FALSE(parse_checked("module @m attributes {k = " + std::string(100000, '[') + "} {}"));
  EXPECT_FALSE(parse_checked("module @m " + std::string(100000, '{')));
  EXPECT_FALSE(parse_checked("module @m {\n  weight @w : f32" + std::string(100000, '[')));
  // Long names, strings, comments and symbols.
  std::string big(1 << 20, 'a');
  EXPECT_TRUE(parse_checked("// " + big + "\nmodule @" + big + " attributes {" + big + " = \"" + big + "\"} {\n}\n"));
  EXPECT_FALSE(parse_checked("module @m attributes {k = \"" + big));
  // A long chain of ops, and a wide op.
  std::string text = "module @m {\n  func @f(%x: f32[4]) -> (f32[4]) {\n    %v0 = silu(%x) : f32[4]\n";
  const int n = 20000;
  for (int i = 1; i < n; ++i)
    text += "    %v" + std::to_string(i) + " = add(%v" + std::to_string(i - 1) + ", %x) : f32[4]\n";
  text += "    return %v" + std::to_string(n - 1) + "\n  }\n}\n";
  auto m = parse_module(text, "long.nir");
  EXPECT_EQ(m->functions[0]->ops.size(), size_t(n));
  EXPECT_THAT(verify(*m), ::testing::IsEmpty());
  EXPECT_TRUE(parse_checked(text));
  std::string wide = "module @m {\n  func @f(%x: f32[1]) -> (f32[10001]) {\n    %0 = concat(%x";
  for (int i = 0; i < 10000; ++i) wide += ", %x";
  wide += ") {axis = 0} : f32[10001]\n    return %0\n  }\n}\n";
  EXPECT_THAT(verify(*parse_module(wide, "wide.nir")), ::testing::IsEmpty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace nibble
