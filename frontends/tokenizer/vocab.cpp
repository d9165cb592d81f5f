// vocab_from_gguf: the tokenizer.ggml.* metadata with llama.cpp's defaults (llama_vocab::impl::load).
#include <algorithm>
#include <cctype>

#include "frontends/gguf/gguf.h"
#include "frontends/tokenizer/models.h"
#include "support/error.h"

namespace nibble {
namespace {

using gguf::Value;
using gguf::ValueType;

constexpr const char* kModel = "tokenizer.ggml.model";
constexpr const char* kPre = "tokenizer.ggml.pre";
constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTypes = "tokenizer.ggml.token_type";
constexpr const char* kMerges = "tokenizer.ggml.merges";
constexpr const char* kAddBos = "tokenizer.ggml.add_bos_token";
constexpr const char* kAddEos = "tokenizer.ggml.add_eos_token";
constexpr const char* kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";

[[noreturn]] void bad(const gguf::File& f, std::string_view key, std::string_view what) {
  fail("{}: metadata key {}: {}", f.path(), key, what);
}

bool is_int_type(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16:
    case ValueType::U32: case ValueType::I32: case ValueType::U64: case ValueType::I64:
      return true;
    default:
      return false;
  }
}
bool is_signed_type(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

// The array under `key` (null when absent), checked to hold at least `min_count` elements accepted by `ok`.
template <class Ok>
const Value* array_of(const gguf::File& f, std::string_view key, size_t min_count, std::string_view what, Ok ok) {
  const Value* v = f.find(key);
  if (!v) return nullptr;
  if (v->type != ValueType::ARRAY || !ok(v->elem_type))
    bad(f, key, fmt::format("expected an array of {}, got {}{}{}", what, gguf::value_type_name(v->type),
                            v->type == ValueType::ARRAY ? " of " : "",
                            v->type == ValueType::ARRAY ? gguf::value_type_name(v->elem_type) : ""));
  if (v->array.size() < min_count)
    bad(f, key, fmt::format("{} elements for {} tokens", v->array.size(), min_count));
  return v;
}

std::vector<std::string> strings_of(const gguf::File& f, std::string_view key, const Value& v) {
  std::vector<std::string> out;
  out.reserve(v.array.size());
  for (const Value& e : v.array) {
    if (e.type != ValueType::STRING) bad(f, key, "array element is not a string");
    out.push_back(e.s);
  }
  return out;
}

// Texts llama.cpp treats as end-of-generation and so forces to control type whatever the file says.
constexpr std::string_view kEogTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                          "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>"};

}  // namespace

Vocab vocab_from_gguf(const gguf::File& f) {
  Vocab v;
  v.model = f.get_string(kModel);
  v.pre = f.get_string(kPre, "");

  // Defaults per model, as llama.cpp sets them before reading the keys.
  if (v.model == "llama") {
    v.bos = 1, v.eos = 2, v.unk = 0, v.pad = -1;
    v.add_bos = true, v.add_eos = false;
    v.add_space_prefix = true;
    v.clean_spaces = false;
  } else if (v.model == "gpt2") {
    v.bos = 11, v.eos = 11, v.unk = -1, v.pad = -1;
    v.add_bos = false, v.add_eos = false;
    v.add_space_prefix = false;
    v.clean_spaces = true;
    for (std::string_view p : {"llama3", "llama-v3", "llama-bpe", "falcon3"})
      if (v.pre == p) v.ignore_merges = true, v.add_bos = true;
    for (std::string_view p : {"qwen2", "deepseek-r1-qwen", "command-r", "smollm"})
      if (v.pre == p) v.clean_spaces = false;
  } else {
    // Not a model this library tokenizes (Tokenizer::create refuses it); read the common keys only.
    v.add_space_prefix = false;
  }
  v.add_space_prefix = f.get_bool(kAddSpacePrefix, v.add_space_prefix);

  const Value* tokens = array_of(f, kTokens, 0, "strings", [](ValueType t) { return t == ValueType::STRING; });
  if (!tokens) bad(f, kTokens, "missing (no tokenizer vocabulary)");
  v.tokens = strings_of(f, kTokens, *tokens);
  const size_t n = v.tokens.size();
  if (n == 0) bad(f, kTokens, "empty vocabulary");
  if (n > size_t(INT32_MAX)) bad(f, kTokens, "too many tokens");

  v.scores.assign(n, 0.0f);
  if (const Value* s = array_of(f, kScores, n, "f32 or i32",
                                [](ValueType t) { return t == ValueType::F32 || t == ValueType::I32; })) {
    for (size_t i = 0; i < n; ++i) {
      const Value& e = s->array[i];
      v.scores[i] = e.type == ValueType::F32 ? float(e.f) : float(e.i);
    }
  }

  v.types.assign(n, detail::kNormal);
  if (const Value* t = array_of(f, kTypes, n, "integers", is_int_type)) {
    for (size_t i = 0; i < n; ++i) {
      const Value& e = t->array[i];
      int64_t x = is_signed_type(e.type) ? e.i : int64_t(std::min<uint64_t>(e.u, INT32_MAX));
      v.types[i] = int32_t(std::clamp<int64_t>(x, INT32_MIN, INT32_MAX));
    }
  }

  if (const Value* m = array_of(f, kMerges, 0, "strings", [](ValueType t) { return t == ValueType::STRING; }))
    v.merges = strings_of(f, kMerges, *m);
  else if (v.model == "gpt2")
    bad(f, kMerges, "missing (a gpt2 tokenizer needs its merges)");

  // Special ids: a default outside the vocabulary is dropped; a stored id outside it is ignored
  // (stories260K stores 0xFFFFFFFF for "none"), as llama.cpp does.
  struct Special {
    const char* key;
    int32_t* id;
  };
  for (Special s : {Special{"tokenizer.ggml.bos_token_id", &v.bos}, Special{"tokenizer.ggml.eos_token_id", &v.eos},
                    Special{"tokenizer.ggml.unknown_token_id", &v.unk},
                    Special{"tokenizer.ggml.padding_token_id", &v.pad}}) {
    if (*s.id >= int64_t(n)) *s.id = -1;
    if (!f.has(s.key)) continue;
    int64_t id = f.get_int(s.key);
    if (id >= 0 && id < int64_t(n)) *s.id = int32_t(id);
  }

  v.add_bos = f.get_bool(kAddBos, v.add_bos);
  v.add_eos = f.get_bool(kAddEos, v.add_eos);
  if (v.add_bos && v.bos < 0) bad(f, kAddBos, "true, but there is no BOS token id");
  if (v.add_eos && v.eos < 0) bad(f, kAddEos, "true, but there is no EOS token id");

  for (size_t i = 0; i < n; ++i) {
    if (v.tokens[i].empty()) v.tokens[i] = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp
    if (std::find(std::begin(kEogTexts), std::end(kEogTexts), v.tokens[i]) != std::end(kEogTexts))
      v.types[i] = detail::kControl;
  }
  try {
    (void)detail::build_token_map(v);
  } catch (const Error& e) {
    bad(f, kTokens, e.what());
  }

  // llama.cpp's per-model attributes: Phi-3 strips whitespace after most special tokens.
  std::string name = f.get_string("general.name", "");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    v.strip.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
      int32_t t = v.types[i];
      if (t == detail::kControl || t == detail::kUserDefined || t == detail::kUnknown || v.tokens[i] == "</s>")
        v.strip[i] = Vocab::kStripRight;
      if (v.tokens[i] == "<unk>" || v.tokens[i] == "<s>" || v.tokens[i] == "<|endoftext|>") v.strip[i] = 0;
    }
  }
  return v;
}

}  // namespace nibble
