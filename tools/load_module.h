// Loads a model for the CLI: IR text (.nir) directly, or GGUF through the model builders with its
// tokenizer.
#pragma once
#include <memory>
#include <string>

#include "frontends/gguf/gguf.h"
#include "frontends/tokenizer/tokenizer.h"
#include "ir/ir.h"

namespace nibble::tools {

struct LoadOptions {
  int64_t n_ctx = 0;          // KV cache length; 0: min(model context, 2048)
  std::string kv_type = "f16";  // f16 (llama.cpp's default) or f32
};

struct LoadedModel {
  std::unique_ptr<Module> module;
  std::unique_ptr<Tokenizer> tokenizer;      // null for IR text
  std::shared_ptr<const gguf::File> gguf;    // the source of a GGUF model (metadata for plans); else null
};

bool is_gguf_file(const std::string& path);
LoadedModel load_model(const std::string& path, const LoadOptions& opts);
std::unique_ptr<Module> load_module(const std::string& path, const LoadOptions& opts);

}  // namespace nibble::tools
