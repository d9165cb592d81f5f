// Edge cases on the real vocabularies: empty and blank input, invalid UTF-8, long input, special-token
// text with parse_special on and off, and every id's piece.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include "support/error.h"
#include "tests/unit/tokenizer/tok_test_util.h"

namespace nibble::test {
namespace {

const char* const kVocabs[] = {"reference/tokenizer/ggml-vocab-llama-spm.gguf",
                               "reference/tokenizer/ggml-vocab-phi-3.gguf",
                               "reference/tokenizer/ggml-vocab-gpt-2.gguf",
                               "reference/tokenizer/ggml-vocab-falcon.gguf", "models/stories260K.gguf"};

const Tokenizer& spm() { return tokenizer_for("reference/tokenizer/ggml-vocab-llama-spm.gguf"); }
const Tokenizer& phi3() { return tokenizer_for("reference/tokenizer/ggml-vocab-phi-3.gguf"); }
const Tokenizer& gpt2() { return tokenizer_for("reference/tokenizer/ggml-vocab-gpt-2.gguf"); }
const Tokenizer& falcon() { return tokenizer_for("reference/tokenizer/ggml-vocab-falcon.gguf"); }

std::vector<int32_t> cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(TokenizerEdge, EmptyInput) {
  for (const char* path : kVocabs) {
    const Tokenizer& t = tokenizer_for(path);
    SCOPED_TRACE(path);
    EXPECT_TRUE(t.encode("", false, false).empty());
    EXPECT_TRUE(t.encode("", false, true).empty());
    std::vector<int32_t> with_special = t.encode("", true, true);
    EXPECT_EQ(with_special, t.vocab().add_bos ? std::vector<int32_t>{t.vocab().bos} : std::vector<int32_t>{});
    EXPECT_EQ(t.decode({}), "");
  }
}

TEST(TokenizerEdge, OnlySpacesRoundTrip) {
  for (const char* path : kVocabs) {
    const Tokenizer& t = tokenizer_for(path);
    SCOPED_TRACE(path);
    for (std::string s : {" ", "  ", "      ", "\t \n ", "\n\n\n"}) {
      std::vector<int32_t> ids = t.encode(s, false, false);
      EXPECT_FALSE(ids.empty());
      EXPECT_EQ(t.decode(ids), s);
    }
  }
}

TEST(TokenizerEdge, InvalidUtf8) {
  const std::string bad = "ok \xFF\xFE x\xC3(\xE2\x82 \xF4\x90\x80\x80 end\xC3";
  // SPM falls back to byte tokens, so the bytes come back unchanged...
  const std::string bytes = "ok \x80\xBF x\xC3( \xFF";
  for (const Tokenizer* t : {&spm(), &phi3(), &tokenizer_for("models/stories260K.gguf")}) {
    EXPECT_EQ(t->decode(t->encode(bytes, false, false)), bytes);
    // ...except that, as in llama.cpp, a bad lead byte claims the bytes its high bits announce, which
    // may be part of an escaped space (U+2581): those then come back as raw bytes, not as a space.
    EXPECT_EQ(t->decode(t->encode("\xFE x", false, false)), "\xFE\xE2\x96\x81x");
    EXPECT_FALSE(t->encode(bad, false, false).empty());
  }
  // BPE decodes the text to codepoints first: invalid bytes become U+FFFD, as in llama.cpp.
  const std::string fffd = "\xEF\xBF\xBD";
  const std::string want = "ok " + fffd + fffd + " x" + fffd + "(" + fffd + fffd + " " + fffd + " end" + fffd;
  for (const Tokenizer* t : {&gpt2(), &falcon()}) {
    std::vector<int32_t> ids = t->encode(bad, false, false);
    EXPECT_EQ(t->decode(ids), want);
  }
  // Lone bytes of every value, each alone and all together.
  std::string all;
  for (int b = 1; b < 256; ++b) all += char(b);
  for (const char* path : kVocabs) {
    const Tokenizer& t = tokenizer_for(path);
    for (int b = 0; b < 256; ++b) (void)t.encode(std::string(1, char(b)), true, true);
    std::vector<int32_t> ids = t.encode(all, false, false);
    EXPECT_FALSE(ids.empty()) << path;
  }
  EXPECT_EQ(spm().decode(spm().encode(all, false, false)), all);
}

TEST(TokenizerEdge, LongInput) {
  std::string text;
  const std::string para =
      "Once upon a time, in a land far away (really far: 12345 km!), there lived a dragon named "
      "\xC3\x89milie \xE6\x88\x91 \xF0\x9F\x90\x89.\n\t  It's   tired\r\n";
  while (text.size() < 400000) text += para;
  std::string one_word(100000, 'a');  // one pre-token, many merges
  for (const char* path : kVocabs) {
    const Tokenizer& t = tokenizer_for(path);
    SCOPED_TRACE(path);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<int32_t> ids = t.encode(text, false, false);
    std::vector<int32_t> ids2 = t.encode(one_word, false, false);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(secs, 30.0);
    EXPECT_GT(ids.size(), text.size() / 16);
    EXPECT_EQ(t.decode(ids2), one_word);
    // Tokenization of repeated paragraphs is periodic when they split at the same boundaries.
    std::vector<int32_t> first = t.encode(para, false, false);
    if (!t.vocab().add_space_prefix) {
      EXPECT_TRUE(std::equal(first.begin(), first.end(), ids.begin()));
    }
  }
}

TEST(TokenizerEdge, SpmControlTokens) {
  const std::string text = "<s>Hello</s> world";
  std::vector<int32_t> parsed = spm().encode(text, false, true);
  // Each text fragment after a special token gets the SPM space prefix, as in llama.cpp.
  EXPECT_EQ(parsed, cat({{1}, spm().encode("Hello", false, false), {2}, spm().encode(" world", false, false)}));
  std::vector<int32_t> literal = spm().encode(text, false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 1), 0);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 2), 0);
  EXPECT_EQ(spm().decode(literal), text);
  // Control tokens print nothing.
  EXPECT_EQ(spm().token_to_piece(1), "");
  EXPECT_EQ(spm().token_to_piece(2), "");
  EXPECT_EQ(spm().token_to_piece(0), "");  // unknown
  // llama.cpp's detokenize: BOS takes the first-space strip, and " world" got a second space prefix.
  EXPECT_EQ(spm().decode(parsed), " Hello  world");
  // add_special: BOS only (add_eos is false), then the text as is.
  EXPECT_EQ(spm().encode("Hi", true, false), cat({{1}, spm().encode("Hi", false, false)}));
}

TEST(TokenizerEdge, Phi3SpecialTokens) {
  // "</s>" is user-defined in phi-3, so it splits the text even without parse_special; llama.cpp's
  // Phi-3 rule strips whitespace after it and after most control tokens.
  EXPECT_EQ(phi3().encode("a</s>  b", false, false),
            cat({phi3().encode("a", false, false), {2}, phi3().encode("b", false, false)}));
  EXPECT_EQ(phi3().encode("<|user|>\nHi<|end|>\n", false, true),
            cat({{32010}, phi3().encode("Hi", false, false), {32007}}));
  std::vector<int32_t> literal = phi3().encode("<|user|>\nHi<|end|>\n", false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 32010), 0);
  EXPECT_EQ(phi3().token_to_piece(2), "</s>");  // user-defined tokens print their text
  EXPECT_EQ(phi3().token_to_piece(32010), "");
}

TEST(TokenizerEdge, BpeControlTokens) {
  const std::string text = "Hello<|endoftext|> world";
  EXPECT_EQ(gpt2().encode(text, false, true),
            cat({gpt2().encode("Hello", false, false), {50256}, gpt2().encode(" world", false, false)}));
  std::vector<int32_t> literal = gpt2().encode(text, false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 50256), 0);
  EXPECT_EQ(gpt2().decode(literal), text);
  EXPECT_EQ(falcon().encode(">>TITLE<<x", false, true), cat({{0}, falcon().encode("x", false, false)}));
  // gpt2 vocabs add no BOS unless they say so.
  EXPECT_FALSE(gpt2().vocab().add_bos);
  EXPECT_EQ(gpt2().encode("Hi", true, true), gpt2().encode("Hi", false, false));
}

TEST(TokenizerEdge, BpeDecodeCleansSpaces) {
  // llama.cpp's clean_up_tokenization_spaces applies to BPE vocabularies.
  EXPECT_EQ(gpt2().decode(gpt2().encode("Hello , world ! I 'm here . ok ' yes", false, false)),
            "Hello, world! I'm here. ok'yes");
  EXPECT_EQ(gpt2().decode(gpt2().encode("don 't", false, false)), "don 't");
}

TEST(TokenizerEdge, EveryPiece) {
  for (const char* path : kVocabs) {
    const Tokenizer& t = tokenizer_for(path);
    SCOPED_TRACE(path);
    size_t total = 0;
    for (int32_t id = 0; id < t.n_vocab(); ++id) total += t.token_to_piece(id).size();
    EXPECT_GT(total, size_t(t.n_vocab()));
    EXPECT_THROW(t.token_to_piece(-1), Error);
    EXPECT_THROW(t.token_to_piece(t.n_vocab()), Error);
  }
  // SPM byte tokens give their raw byte; U+2581 prints as a space.
  EXPECT_EQ(spm().token_to_piece(3 + 0x41), "A");
  EXPECT_EQ(spm().token_to_piece(3 + 0xE2), "\xE2");
  EXPECT_EQ(spm().token_to_piece(spm().encode("Hello", false, false)[0]), " Hello");
  // GPT-2 byte-level pieces decode to bytes: "\u0120the" is " the".
  EXPECT_EQ(gpt2().decode(gpt2().encode(" the", false, false)), " the");
}

}  // namespace
}  // namespace nibble::test
