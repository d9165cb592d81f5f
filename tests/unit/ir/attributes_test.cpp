// Attribute printing: floats, strings and symbols must read back exactly through the lexer/parser.
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ir/attributes.h"
#include "ir/lexer.h"
#include "ir_test_util.h"

namespace nibble {
namespace {

uint64_t bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

// The double a printed float attribute parses back to.
double reparse(double v) {
  auto m = testing::parse("module @m attributes {x = " + float_str(v) + "} {\n}\n");
  auto f = m->attrs.get_float("x");
  EXPECT_TRUE(f.has_value());
  EXPECT_TRUE(std::holds_alternative<double>(*m->attrs.find("x"))) << float_str(v);
  return f.value_or(0);
}

TEST(IrAttributes, FloatStrSpellings) {
  EXPECT_EQ(float_str(1e-5), "1e-05");
  EXPECT_EQ(float_str(1e6), "1e+06");
  EXPECT_EQ(float_str(1.0), "1.0");
  EXPECT_EQ(float_str(0.0), "0.0");
  EXPECT_EQ(float_str(-0.0), "-0.0");
  EXPECT_EQ(float_str(100.0), "100.0");
  EXPECT_EQ(float_str(0.1), "0.1");
  EXPECT_EQ(float_str(-2.5), "-2.5");
  EXPECT_EQ(float_str(10000.0), "10000.0");
  EXPECT_EQ(float_str(5e-324), "5e-324");
  EXPECT_EQ(float_str(NAN), "nan");
  EXPECT_EQ(float_str(INFINITY), "inf");
  EXPECT_EQ(float_str(-INFINITY), "-inf");
}

TEST(IrAttributes, FloatStrRoundTripsThroughTheParser) {
  const double cases[] = {1e-5, 1e6, 0.0, 1.0, -1.0, 0.1, 1.0 / 3, 2.0 / 3, 1e300, -1e-300, 123456789.0,
                          9007199254740993.0, 1e21, 1e22, 1.5e-7, 500000.0, 10000.0, 1e-6, 3.14159265358979,
                          DBL_MAX, -DBL_MAX, DBL_MIN, DBL_EPSILON, DBL_TRUE_MIN, 4.9e-324, 2.225e-308,
                          1e-310, -1e-315, std::nextafter(1.0, 2.0), std::nextafter(0.0, 1.0), 0.5, 0.25};
  for (double v : cases) {
    SCOPED_TRACE(float_str(v));
    EXPECT_EQ(bits(reparse(v)), bits(v));
  }
  EXPECT_EQ(bits(reparse(-0.0)), bits(-0.0));
  EXPECT_TRUE(std::signbit(reparse(-0.0)));
  EXPECT_EQ(reparse(INFINITY), INFINITY);
  EXPECT_EQ(reparse(-INFINITY), -INFINITY);
  EXPECT_TRUE(std::isnan(reparse(NAN)));
}

TEST(IrAttributes, FloatStrRoundTripsRandomBitPatterns) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 20000; ++i) {
    uint64_t b = rng();
    double v;
    std::memcpy(&v, &b, sizeof v);
    if (std::isnan(v)) continue;
    std::string s = float_str(v);
    ASSERT_NE(s.find_first_of(".ein"), std::string::npos) << s;  // never reads back as an integer
    ASSERT_EQ(bits(std::strtod(s.c_str(), nullptr)), b) << s;
    if (i % 40 == 0) {
      ASSERT_EQ(bits(reparse(v)), b) << s;  // the parser too, on a sample
    }
  }
}

TEST(IrAttributes, QuoteString) {
  EXPECT_EQ(quote_string(""), "\"\"");
  EXPECT_EQ(quote_string("abc"), "\"abc\"");
  EXPECT_EQ(quote_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quote_string("l1\nl2\tx"), "\"l1\\nl2\\tx\"");
  EXPECT_EQ(quote_string(std::string("\x01\x1f\x7f\x80\xff", 5)), "\"\\x01\\x1f\\x7f\\x80\\xff\"");
  EXPECT_EQ(quote_string(std::string(1, '\0')), "\"\\x00\"");
}

TEST(IrAttributes, EveryByteRoundTripsThroughTheLexer) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += char(c);
  for (const std::string& s : {all, std::string("plain"), std::string(), std::string("\\x41")}) {
    std::string quoted = quote_string(s);  // the lexer views its text: keep it alive
    Lexer lex(quoted, "t");
    Token t = lex.next();
    EXPECT_EQ(t.kind, Tok::String);
    EXPECT_EQ(t.text, s);
    EXPECT_EQ(lex.next().kind, Tok::End);
  }
}

TEST(IrAttributes, SymbolStr) {
  EXPECT_EQ(symbol_str("w"), "@w");
  EXPECT_EQ(symbol_str("blk.0.attn_q.weight"), "@blk.0.attn_q.weight");
  EXPECT_EQ(symbol_str("a-b$c_9"), "@a-b$c_9");
  EXPECT_EQ(symbol_str("0"), "@0");
  EXPECT_EQ(symbol_str("a b"), "@\"a b\"");
  EXPECT_EQ(symbol_str("q\"x"), "@\"q\\\"x\"");
  EXPECT_EQ(symbol_str(""), "@\"\"");
  EXPECT_EQ(symbol_str("caf\xc3\xa9"), "@\"caf\\xc3\\xa9\"");
  // Every non-empty name reads back as the same symbol.
  for (const char* name : {"w", "a b", "q\"x", "a-b$c", "caf\xc3\xa9", "x\ny", "@", "%1", "{}"}) {
    std::string text = symbol_str(name);
    Lexer lex(text, "t");
    Token t = lex.next();
    EXPECT_EQ(t.kind, Tok::Symbol) << name;
    EXPECT_EQ(t.text, name);
    EXPECT_EQ(lex.next().kind, Tok::End) << name;
  }
}

TEST(IrAttributes, AttributeStrAndKinds) {
  EXPECT_EQ(attribute_str(int64_t(-7)), "-7");
  EXPECT_EQ(attribute_str(std::numeric_limits<int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(attribute_str(2.0), "2.0");
  EXPECT_EQ(attribute_str(true), "true");
  EXPECT_EQ(attribute_str(false), "false");
  EXPECT_EQ(attribute_str(std::string("s")), "\"s\"");
  EXPECT_EQ(attribute_str(SymbolRef{"w"}), "@w");
  EXPECT_EQ(attribute_str(std::vector<int64_t>{}), "[]");
  EXPECT_EQ(attribute_str(std::vector<int64_t>{1, -2, 3}), "[1, -2, 3]");
  EXPECT_STREQ(attribute_kind_name(int64_t(1)), "integer");
  EXPECT_STREQ(attribute_kind_name(1.0), "float");
  EXPECT_STREQ(attribute_kind_name(true), "bool");
  EXPECT_STREQ(attribute_kind_name(std::string()), "string");
  EXPECT_STREQ(attribute_kind_name(SymbolRef{"x"}), "symbol");
  EXPECT_STREQ(attribute_kind_name(std::vector<int64_t>{}), "integer array");
}

TEST(IrAttributes, TypedReads) {
  Attrs a;
  a.set("i", int64_t(3));
  a.set("f", 0.5);
  a.set("b", true);
  a.set("s", std::string("x"));
  a.set("y", SymbolRef{"w"});
  a.set("v", std::vector<int64_t>{1, 0});
  EXPECT_EQ(a.get_int("i"), 3);
  EXPECT_EQ(a.get_float("i"), 3.0);  // integers read as floats
  EXPECT_EQ(a.get_float("f"), 0.5);
  EXPECT_FALSE(a.get_int("f"));
  EXPECT_EQ(a.get_bool("b"), true);
  EXPECT_FALSE(a.get_bool("i"));
  EXPECT_EQ(a.get_string("s"), "x");
  EXPECT_FALSE(a.get_string("y"));  // a symbol is not a string
  EXPECT_EQ(a.get_symbol("y"), "w");
  EXPECT_FALSE(a.get_symbol("s"));
  EXPECT_EQ(a.get_ints("v"), (std::vector<int64_t>{1, 0}));
  EXPECT_FALSE(a.get_ints("i"));
  EXPECT_FALSE(a.get_int("missing"));
  EXPECT_EQ(a.int_or("missing", 9), 9);
  EXPECT_EQ(a.int_or("s", 9), 9);
  EXPECT_EQ(a.float_or("missing", 1.5), 1.5);
  EXPECT_EQ(a.bool_or("missing", true), true);
  EXPECT_EQ(a.string_or("missing", "d"), "d");
  EXPECT_TRUE(a.has("i"));
  a.erase("i");
  EXPECT_FALSE(a.has("i"));
  EXPECT_EQ(a.find("i"), nullptr);
  // Sorted by key, so printing is deterministic.
  std::string keys;
  for (const auto& [k, v] : a.entries()) keys += k;
  EXPECT_EQ(keys, "bfsvy");
}

TEST(IrAttributes, AttributesPrintSortedAndParseBack) {
  const std::string text =
      "module @m attributes {a = [], b = false, c = @\"x y\", d = \"q\\\"\\n\", e = -9223372036854775808, "
      "f = -0.0, g = [1, -2]} {\n}\n";
  auto m = testing::parse(text);
  EXPECT_EQ(print_module(*m), text);
  EXPECT_EQ(m->attrs.get_symbol("c"), "x y");
  EXPECT_EQ(m->attrs.get_string("d"), "q\"\n");
  EXPECT_EQ(m->attrs.get_int("e"), std::numeric_limits<int64_t>::min());
}

}  // namespace
}  // namespace nibble
