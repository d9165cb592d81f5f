// Shared helpers for the tokenizer tests: loading the shared vocabularies once per process.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "frontends/gguf/gguf.h"
#include "frontends/tokenizer/tokenizer.h"

namespace nibble::test {

inline std::string shared_path(const std::string& rel) { return std::string(NIBBLE_SHARED_DIR) + "/" + rel; }

// The tokenizer of a shared GGUF file (path relative to the shared dir), built once.
inline const Tokenizer& tokenizer_for(const std::string& rel) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[rel];
  if (!t) t = Tokenizer::create(vocab_from_gguf(*gguf::File::open(shared_path(rel))));
  return *t;
}

}  // namespace nibble::test
