// Builds the IR of a llama-family decoder (llama, mistral, qwen2) from a GGUF file.
// The graph is written at the level of the model: dequant + matmul, separate norm scales;
// passes fuse it.
#pragma once
#include <memory>

#include "frontends/llama/hparams.h"
#include "ir/ir.h"

namespace nibble::gguf { class File; }

namespace nibble {

struct ModelBuildOptions {
  int64_t n_ctx = 0;          // KV cache rows; 0: min(training context, 2048)
  DType kv_type = DType::F16;  // f16 as llama.cpp's default, or f32
};

// @forward(%tokens: i32[n_tokens], %pos: i32[n_tokens]) -> f32[n_tokens, n_vocab].
// Weights are bound to the file's mapping; `file` is kept alive by the module.
std::unique_ptr<Module> build_llama_module(std::shared_ptr<const gguf::File> file, const ModelBuildOptions& opts);

}  // namespace nibble
