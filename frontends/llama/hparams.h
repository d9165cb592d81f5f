// Hyperparameters of a llama-family model, read from GGUF metadata as llama.cpp reads them.
#pragma once
#include <cstdint>
#include <string>

namespace nibble::gguf { class File; }

namespace nibble {

struct LlamaHParams {
  std::string arch;  // llama, mistral, qwen2
  int64_t n_vocab = 0, n_embd = 0, n_ff = 0, n_layer = 0;
  int64_t n_head = 0, n_head_kv = 0, head_dim = 0, n_rot = 0;
  int64_t n_ctx_train = 0;
  double rms_eps = 1e-5;
  double rope_freq_base = 10000.0;
  double rope_freq_scale = 1.0;
  std::string rope_mode = "norm";  // "norm": adjacent pairs (llama); "neox": halves (qwen2)
  bool qkv_bias = false;           // qwen2
};

// Throws nibble::Error naming the file and key for missing or inconsistent values, and for
// architectures other than llama, mistral and qwen2.
LlamaHParams read_llama_hparams(const gguf::File& f);

}  // namespace nibble
