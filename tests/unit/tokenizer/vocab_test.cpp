// vocab_from_gguf on small written files: llama.cpp's defaults, and errors that name the file and key.
#include <gtest/gtest.h>

#include "frontends/gguf/gguf.h"
#include "frontends/tokenizer/tokenizer.h"
#include "support/error.h"

namespace nibble {
namespace {

using gguf::Value;
using gguf::ValueType;

Value array_of(ValueType t, std::vector<Value> elems) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = t;
  v.array = std::move(elems);
  return v;
}
Value f32(double x) {
  Value v;
  v.type = ValueType::F32;
  v.f = x;
  return v;
}
Value i32(int64_t x) {
  Value v;
  v.type = ValueType::I32;
  v.i = x;
  return v;
}

// A tiny SPM vocabulary: unk, bos, eos, the byte tokens, then a few pieces.
gguf::Writer spm_writer() {
  std::vector<std::string> toks = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    toks.push_back(buf);
    types.push_back(6);
  }
  for (const char* t : {"\xE2\x96\x81", "a", "b", "ab", "\xE2\x96\x81" "ab", "\xE2\x96\x81" "a"}) {
    toks.push_back(t);
    types.push_back(1);
  }
  std::vector<Value> scores, tys;
  for (size_t i = 0; i < toks.size(); ++i) {
    scores.push_back(f32(i >= 259 ? -double(i - 259) : 0.0));
    tys.push_back(i32(types[i]));
  }
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", toks);
  w.set("tokenizer.ggml.scores", array_of(ValueType::F32, scores));
  w.set("tokenizer.ggml.token_type", array_of(ValueType::I32, tys));
  return w;
}

gguf::Writer bpe_writer() {
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "ab", "\xC4\xA0", "\xC4\xA0" "ab"});
  w.set_string_array("tokenizer.ggml.merges", {"a b", "\xC4\xA0 ab"});
  return w;
}

std::string write(const gguf::Writer& w, const std::string& name) {
  std::string path = ::testing::TempDir() + "nibble_tok_" + name + ".gguf";
  w.write(path);
  return path;
}

Vocab load(const gguf::Writer& w, const std::string& name) {
  return vocab_from_gguf(*gguf::File::open(write(w, name)));
}

// Runs vocab_from_gguf and checks the error names the file and the key.
void expect_error(const gguf::Writer& w, const std::string& name, const std::string& key) {
  std::string path = write(w, name);
  try {
    vocab_from_gguf(*gguf::File::open(path));
    ADD_FAILURE() << name << ": no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
  }
}

TEST(Vocab, SpmDefaults) {
  Vocab v = load(spm_writer(), "spm_defaults");
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.tokens.size(), 265u);
  EXPECT_EQ(v.bos, 1);
  EXPECT_EQ(v.eos, 2);
  EXPECT_EQ(v.unk, 0);
  EXPECT_EQ(v.pad, -1);
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_TRUE(v.add_space_prefix);
  EXPECT_FALSE(v.clean_spaces);
  EXPECT_EQ(v.types[1], 3);
  EXPECT_FLOAT_EQ(v.scores[262], -3.0f);

  auto t = Tokenizer::create(v);
  // "▁ab▁ab": "ab" (-3) beats "▁a" (-5), then "▁" + "ab" gives "▁ab".
  std::vector<int32_t> ids = t->encode("ab ab", true, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 263, 263}));
  EXPECT_EQ(t->decode(ids), " ab ab");  // BOS takes the first-space strip (llama.cpp)
  EXPECT_EQ(t->decode({263, 263}), "ab ab");
  // Unknown characters fall back to byte tokens.
  EXPECT_EQ(t->encode("c", false, false), (std::vector<int32_t>{259, 3 + 'c'}));
}

TEST(Vocab, SpmKeys) {
  gguf::Writer w = spm_writer();
  w.set_u32("tokenizer.ggml.bos_token_id", 2);
  w.set_u32("tokenizer.ggml.eos_token_id", 100000);  // out of range: the default stays (llama.cpp)
  w.set_u32("tokenizer.ggml.padding_token_id", 0xFFFFFFFFu);
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_bool("tokenizer.ggml.add_eos_token", true);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  Vocab v = load(w, "spm_keys");
  EXPECT_EQ(v.bos, 2);
  EXPECT_EQ(v.eos, 2);
  EXPECT_EQ(v.pad, -1);
  EXPECT_FALSE(v.add_bos);
  EXPECT_TRUE(v.add_eos);
  EXPECT_FALSE(v.add_space_prefix);
  auto t = Tokenizer::create(v);
  EXPECT_EQ(t->encode("ab", true, false), (std::vector<int32_t>{262, 2}));
}

TEST(Vocab, BpeDefaults) {
  Vocab v = load(bpe_writer(), "bpe_defaults");
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "gpt-2");
  EXPECT_EQ(v.bos, -1);  // llama.cpp's default 11 is outside this vocabulary
  EXPECT_FALSE(v.add_bos);
  EXPECT_FALSE(v.add_space_prefix);
  EXPECT_TRUE(v.clean_spaces);
  EXPECT_EQ(v.merges.size(), 2u);
  auto t = Tokenizer::create(v);
  EXPECT_EQ(t->encode("ab ab", false, false), (std::vector<int32_t>{2, 4}));
  EXPECT_EQ(t->decode({2, 4}), "ab ab");
}

TEST(Vocab, BpeLlama3Defaults) {
  gguf::Writer w = bpe_writer();
  w.set_string("tokenizer.ggml.pre", "llama-bpe");
  w.set_u32("tokenizer.ggml.bos_token_id", 0);
  Vocab v = load(w, "bpe_llama3");
  EXPECT_TRUE(v.add_bos);
  EXPECT_TRUE(v.ignore_merges);
  EXPECT_EQ(Tokenizer::create(v)->encode("ab", true, false), (std::vector<int32_t>{0, 2}));
}

TEST(Vocab, Errors) {
  {
    gguf::Writer w;
    w.set_string_array("tokenizer.ggml.tokens", {"a"});
    expect_error(w, "no_model", "tokenizer.ggml.model");
  }
  {
    gguf::Writer w;
    w.set_string("tokenizer.ggml.model", "llama");
    expect_error(w, "no_tokens", "tokenizer.ggml.tokens");
  }
  {
    gguf::Writer w = spm_writer();
    w.set("tokenizer.ggml.tokens", array_of(ValueType::I32, {i32(1), i32(2)}));
    expect_error(w, "tokens_not_strings", "tokenizer.ggml.tokens");
  }
  {
    gguf::Writer w = spm_writer();
    w.set("tokenizer.ggml.scores", array_of(ValueType::F32, {f32(0)}));
    expect_error(w, "short_scores", "tokenizer.ggml.scores");
  }
  {
    gguf::Writer w = spm_writer();
    w.set_string("tokenizer.ggml.token_type", "control");
    expect_error(w, "types_not_array", "tokenizer.ggml.token_type");
  }
  {
    gguf::Writer w = spm_writer();
    w.set_string("tokenizer.ggml.bos_token_id", "1");
    expect_error(w, "bos_string", "tokenizer.ggml.bos_token_id");
  }
  {
    gguf::Writer w = spm_writer();
    w.set_string("tokenizer.ggml.add_bos_token", "yes");
    expect_error(w, "add_bos_string", "tokenizer.ggml.add_bos_token");
  }
  {
    gguf::Writer w = bpe_writer();
    w.set_bool("tokenizer.ggml.add_bos_token", true);  // default BOS 11 is out of range: none
    expect_error(w, "add_bos_without_bos", "tokenizer.ggml.add_bos_token");
  }
  {
    gguf::Writer w;
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
    expect_error(w, "no_merges", "tokenizer.ggml.merges");
  }
  {
    gguf::Writer w = bpe_writer();
    w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "a"});
    expect_error(w, "duplicate", "tokenizer.ggml.tokens");
  }
}

TEST(Vocab, CreateRefusesUnsupported) {
  gguf::Writer w = bpe_writer();
  w.set_string("tokenizer.ggml.pre", "no-such-pre");
  Vocab v = load(w, "bad_pre");
  EXPECT_THROW(Tokenizer::create(v), Error);
  v.model = "bert";
  EXPECT_THROW(Tokenizer::create(v), Error);
  Vocab empty;
  empty.model = "llama";
  EXPECT_THROW(Tokenizer::create(empty), Error);
}

TEST(Vocab, EogTextsBecomeControl) {
  gguf::Writer w = bpe_writer();
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "ab", "\xC4\xA0", "\xC4\xA0" "ab", "<|im_end|>"});
  Vocab v = load(w, "eog");
  EXPECT_EQ(v.types[5], 3);
  auto t = Tokenizer::create(v);
  EXPECT_EQ(t->token_to_piece(5), "");
  EXPECT_EQ(t->encode("ab<|im_end|>", false, true), (std::vector<int32_t>{2, 5}));
}

TEST(Vocab, EmptyTokenTextIsRenamed) {
  gguf::Writer w = bpe_writer();
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "ab", "\xC4\xA0", "\xC4\xA0" "ab", ""});
  Vocab v = load(w, "empty_token");
  EXPECT_EQ(v.tokens[5], "[EMPTY_5]");
}

}  // namespace
}  // namespace nibble
