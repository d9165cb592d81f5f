// Internal to nibble_tokenizer: the tokenizer models behind Tokenizer::create, and what they share.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "frontends/tokenizer/pretokenize.h"
#include "frontends/tokenizer/tokenizer.h"

namespace nibble::detail {

// Token types as stored in tokenizer.ggml.token_type (llama.cpp's llama_token_type).
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// Text -> id, looked up with string_views without building strings.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Throws nibble::Error on a duplicate token text (llama.cpp refuses such vocabularies too).
TokenMap build_token_map(const Vocab& v);

inline int32_t find_token(const TokenMap& m, std::string_view text) {
  auto it = m.find(text);
  return it == m.end() ? -1 : it->second;
}

// The byte a "<0xNN>" token stands for, read as llama.cpp reads it (two hex digits at offset 3).
uint8_t byte_of_token(const std::string& text);

std::unique_ptr<Tokenizer> make_spm(Vocab v);
std::unique_ptr<Tokenizer> make_bpe(Vocab v, pretok::Pre pre);

}  // namespace nibble::detail
