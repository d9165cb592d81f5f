// Pre-tokenizer splits and codepoint tables, checked against what the regexes mean (the Llama 3 and
// Qwen2 patterns have no shared vectors, so their cases are worked out by hand from the regex).
#include <gtest/gtest.h>

#include "frontends/tokenizer/pretokenize.h"
#include "frontends/tokenizer/unicode.h"

namespace nibble::pretok {
namespace {

using Words = std::vector<std::string>;

TEST(Unicode, Flags) {
  namespace u = unicode;
  EXPECT_EQ(u::flags('A'), u::LETTER);
  EXPECT_EQ(u::flags('7'), u::NUMBER);
  EXPECT_EQ(u::flags(' '), u::SEPARATOR | u::WHITESPACE);
  EXPECT_EQ(u::flags('\n'), u::CONTROL | u::WHITESPACE);
  EXPECT_EQ(u::flags(0x1C), u::CONTROL);  // not White_Space, though Python's isspace() says so
  EXPECT_EQ(u::flags('$'), u::SYMBOL);
  EXPECT_EQ(u::flags('_'), u::PUNCTUATION);
  EXPECT_EQ(u::flags(0xA0), u::SEPARATOR | u::WHITESPACE);
  EXPECT_EQ(u::flags(0x85), u::CONTROL | u::WHITESPACE);
  EXPECT_EQ(u::flags(0x0301), u::ACCENT_MARK);
  EXPECT_EQ(u::flags(0x0660), u::NUMBER);  // ARABIC-INDIC DIGIT ZERO
  EXPECT_EQ(u::flags(0x4E00), u::LETTER);
  EXPECT_EQ(u::flags(0x3001), u::PUNCTUATION);
  EXPECT_EQ(u::flags(0x1F600), u::SYMBOL);
  EXPECT_EQ(u::flags(0xE000), u::CONTROL);  // private use
  EXPECT_EQ(u::flags(0x0378), u::UNDEFINED);
  EXPECT_EQ(u::flags(0x31350), u::LETTER);  // CJK Ext. H, Unicode 15.0: patched into the tables
  EXPECT_EQ(u::flags(0x10FFFF), u::UNDEFINED);
  EXPECT_EQ(u::flags(0x110000), u::UNDEFINED);
}

TEST(Unicode, DecodeLikeLlamaCpp) {
  using V = std::vector<uint32_t>;
  EXPECT_EQ(unicode::decode_utf8("a\xC3\xA9\xE6\x88\x91\xF0\x9F\x90\x89"), (V{'a', 0xE9, 0x6211, 0x1F409}));
  EXPECT_EQ(unicode::decode_utf8("\xFF"), (V{0xFFFD}));
  EXPECT_EQ(unicode::decode_utf8("\xE2\x82x"), (V{0xFFFD, 0xFFFD, 'x'}));  // one U+FFFD per bad byte
  EXPECT_EQ(unicode::decode_utf8("\x80"), (V{0xFFFD}));
  EXPECT_EQ(unicode::decode_utf8("\xC0\x80"), (V{0}));  // overlong: accepted, as llama.cpp does
  EXPECT_EQ(unicode::decode_utf8("\xF4\x90\x80\x80"), (V{0xFFFD}));  // past U+10FFFF
}

TEST(Unicode, Gpt2Bytes) {
  EXPECT_EQ(unicode::byte_to_unicode(' '), "\xC4\xA0");  // U+0120 'Ġ'
  EXPECT_EQ(unicode::byte_to_unicode('A'), "A");
  EXPECT_EQ(unicode::byte_to_unicode('\n'), "\xC4\x8A");  // U+010A 'Ċ'
  for (int b = 0; b < 256; ++b) {
    std::vector<uint32_t> c = unicode::decode_utf8(unicode::byte_to_unicode(uint8_t(b)));
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(unicode::unicode_to_byte(c[0]), b);
  }
  EXPECT_EQ(unicode::unicode_to_byte(0x4E00), -1);
}

TEST(Pretokenize, Names) {
  EXPECT_EQ(pre_from_name(""), Pre::Default);
  EXPECT_EQ(pre_from_name("gpt-2"), Pre::Gpt2);
  EXPECT_EQ(pre_from_name("falcon"), Pre::Falcon);
  EXPECT_EQ(pre_from_name("llama-bpe"), Pre::Llama3);
  EXPECT_EQ(pre_from_name("qwen2"), Pre::Qwen2);
  EXPECT_EQ(pre_from_name("starcoder"), Pre::StarCoder);
  EXPECT_EQ(pre_from_name("no-such-pre"), std::nullopt);
}

TEST(Pretokenize, Gpt2) {
  EXPECT_EQ(split("Hello world", Pre::Gpt2), (Words{"Hello", " world"}));
  EXPECT_EQ(split("I'm 12345 ok!!  x\n\n", Pre::Gpt2),
            (Words{"I", "'m", " 12345", " ok", "!!", " ", " x", "\n\n"}));
  EXPECT_EQ(split("'S 're", Pre::Gpt2), (Words{"'", "S", " '", "re"}));  // contractions are lower case only
  EXPECT_EQ(split("", Pre::Gpt2), Words{});
}

TEST(Pretokenize, FalconAndDefault) {
  // Punctuation runs split first; digits then go in threes. Default also splits digit runs off.
  EXPECT_EQ(split("a,b 1234567 x`y", Pre::Falcon), (Words{"a", ",", "b", " ", "123", "456", "7", " x", "`", "y"}));
  EXPECT_EQ(split("a,b 1234567 x`y", Pre::Default), (Words{"a", ",", "b", " ", "123", "456", "7", " x", "`", "y"}));
  // The backtick is in falcon's punctuation class, not in default's.
  EXPECT_EQ(split("x`,y", Pre::Falcon), (Words{"x", "`,", "y"}));
  EXPECT_EQ(split("x`,y", Pre::Default), (Words{"x", "`", ",", "y"}));
  EXPECT_EQ(split("x\xE3\x80\x81y", Pre::Falcon), (Words{"x", "\xE3\x80\x81", "y"}));  // U+3001 is \p{P}
}

TEST(Pretokenize, Llama3) {
  EXPECT_EQ(split("I'm 12345 ok\n\n  x", Pre::Llama3),
            (Words{"I", "'m", " ", "123", "45", " ok", "\n\n", " ", " x"}));
  EXPECT_EQ(split("Hello, world!", Pre::Llama3), (Words{"Hello", ",", " world", "!"}));
  EXPECT_EQ(split("'S 'RE", Pre::Llama3), (Words{"'S", " '", "RE"}));  // (?i:...) contractions
  EXPECT_EQ(split("  \t\r\n x", Pre::Llama3), (Words{"  \t\r\n", " x"}));
  EXPECT_EQ(split("a...\n\nb", Pre::Llama3), (Words{"a", "...\n\n", "b"}));
  EXPECT_EQ(split("$x", Pre::Llama3), (Words{"$x"}));  // [^\r\n\p{L}\p{N}]?\p{L}+
  EXPECT_EQ(split("  ", Pre::Llama3), (Words{"  "}));
}

TEST(Pretokenize, Qwen2) {
  EXPECT_EQ(split("I'm 12345 ok", Pre::Qwen2), (Words{"I", "'m", " ", "1", "2", "3", "4", "5", " ok"}));
}

TEST(Pretokenize, StarCoder) {
  EXPECT_EQ(split("ab 12c", Pre::StarCoder), (Words{"ab", " ", "1", "2", "c"}));
}

TEST(Pretokenize, InvalidBytesBecomeReplacement) {
  EXPECT_EQ(split("a\xFF", Pre::Gpt2), (Words{"a", "\xEF\xBF\xBD"}));
}

}  // namespace
}  // namespace nibble::pretok
