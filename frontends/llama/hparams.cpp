#include "frontends/llama/hparams.h"

#include "frontends/gguf/gguf.h"
#include "support/error.h"

namespace nibble {

namespace {

// How an architecture differs from llama: one row each, so variants share the builder.
struct ArchTraits {
  const char* name;
  const char* rope_mode;
  bool qkv_bias;
};
constexpr ArchTraits kArchs[] = {
    {"llama", "norm", false},
    {"mistral", "norm", false},
    {"qwen2", "neox", true},
};

}  // namespace

LlamaHParams read_llama_hparams(const gguf::File& f) {
  LlamaHParams hp;
  hp.arch = f.get_string("general.architecture");
  const ArchTraits* traits = nullptr;
  for (const ArchTraits& a : kArchs)
    if (hp.arch == a.name) traits = &a;
  if (!traits) fail("{}: unsupported architecture '{}' (supported: llama, mistral, qwen2)", f.path(), hp.arch);
  const std::string p = hp.arch + ".";
  hp.n_embd = f.get_int(p + "embedding_length");
  hp.n_ff = f.get_int(p + "feed_forward_length");
  hp.n_layer = f.get_int(p + "block_count");
  hp.n_head = f.get_int(p + "attention.head_count");
  hp.n_head_kv = f.get_int(p + "attention.head_count_kv", hp.n_head);
  hp.n_ctx_train = f.get_int(p + "context_length", 2048);
  hp.rms_eps = f.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5);
  hp.rope_freq_base = f.get_float(p + "rope.freq_base", 10000.0);
  if (f.has(p + "rope.scale_linear")) hp.rope_freq_scale = 1.0 / f.get_float(p + "rope.scale_linear");
  if (f.has(p + "rope.scaling.factor")) {
    std::string type = f.get_string(p + "rope.scaling.type", "linear");
    if (type != "linear" && type != "none")
      fail("{}: rope scaling type '{}' is not supported (only linear)", f.path(), type);
    double factor = f.get_float(p + "rope.scaling.factor");
    if (type == "linear" && factor > 0) hp.rope_freq_scale = 1.0 / factor;
  }
  hp.rope_mode = traits->rope_mode;
  hp.qkv_bias = traits->qkv_bias;

  if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0 || hp.n_ff <= 0)
    fail("{}: non-positive model dimensions (embedding {}, layers {}, heads {}/{}, ff {})", f.path(), hp.n_embd,
         hp.n_layer, hp.n_head, hp.n_head_kv, hp.n_ff);
  if (hp.n_embd % hp.n_head != 0)
    fail("{}: embedding length {} is not a multiple of the head count {}", f.path(), hp.n_embd, hp.n_head);
  if (hp.n_head % hp.n_head_kv != 0)
    fail("{}: head count {} is not a multiple of the KV head count {}", f.path(), hp.n_head, hp.n_head_kv);
  hp.head_dim = f.get_int(p + "attention.key_length", hp.n_embd / hp.n_head);
  hp.n_rot = f.get_int(p + "rope.dimension_count", hp.head_dim);
  if (hp.n_rot <= 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2)
    fail("{}: rope dimension count {} must be even and at most the head size {}", f.path(), hp.n_rot, hp.head_dim);
  if (hp.rope_freq_base <= 0 || hp.rms_eps < 0)
    fail("{}: rope freq base {} and rms epsilon {} must be positive", f.path(), hp.rope_freq_base, hp.rms_eps);

  const gguf::TensorInfo& embd = f.tensor("token_embd.weight");
  if (embd.ne.size() != 2 || embd.ne[0] != hp.n_embd)
    fail("{}: token_embd.weight must be [{} x vocab]", f.path(), hp.n_embd);
  hp.n_vocab = embd.ne[1];
  return hp;
}

}  // namespace nibble
