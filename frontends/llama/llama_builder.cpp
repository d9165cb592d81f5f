#include "frontends/llama/llama_builder.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "frontends/gguf/gguf.h"
#include "ir/builder.h"
#include "support/error.h"

namespace nibble {

namespace {

class LlamaGraph {
 public:
  LlamaGraph(const gguf::File& f, Module& m, const LlamaHParams& hp) : file_(f), m_(m), hp_(hp), b_(m, *m.add_function("forward")) {}

  void build(const ModelBuildOptions& opts) {
    int64_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : std::min<int64_t>(hp_.n_ctx_train, 2048);
    set_module_attrs(n_ctx);
    Dim n = Dim::sym("n_tokens");
    Function& fn = b_.function();
    Value* tokens = fn.add_arg("tokens", {DType::I32, {n}});
    Value* pos = fn.add_arg("pos", {DType::I32, {n}});

    Value* x = b_.create("embedding", {weight("token_embd.weight"), tokens}, {}, "embd");
    for (int64_t l = 0; l < hp_.n_layer; ++l) x = layer(x, pos, l, n_ctx, opts.kv_type);
    x = norm(x, "output_norm.weight");
    // Tied embeddings: the output head reuses token_embd when output.weight is absent.
    const char* head = file_.find_tensor("output.weight") ? "output.weight" : "token_embd.weight";
    fn.results.push_back(linear(x, head, "logits"));
  }

 private:
  void set_module_attrs(int64_t n_ctx) {
    m_.attrs.set("arch", hp_.arch);
    m_.attrs.set("n_vocab", hp_.n_vocab);
    m_.attrs.set("n_embd", hp_.n_embd);
    m_.attrs.set("n_layer", hp_.n_layer);
    m_.attrs.set("n_head", hp_.n_head);
    m_.attrs.set("n_head_kv", hp_.n_head_kv);
    m_.attrs.set("n_ctx", n_ctx);
  }

  // Declares the GGUF tensor as a weight (once) and reads it.
  Value* weight(const std::string& name) {
    if (!m_.find_weight(name)) {
      const gguf::TensorInfo& t = file_.tensor(name);
      std::vector<Dim> dims(t.ne.rbegin(), t.ne.rend());  // GGML ne[0] is innermost: reverse
      Attrs a;
      a.set("file", file_.path());
      a.set("offset", int64_t(t.file_offset));
      WeightDecl& w = b_.declare_weight(name, {t.dtype, dims}, std::move(a));
      w.data = t.data;
    }
    return b_.weight(name);
  }

  Value* linear(Value* x, const std::string& name, const std::string& result_name = {}) {
    Value* w = weight(name);
    if (w->type.dtype != DType::F32) w = b_.dequant(w);
    Attrs a;
    a.set("transpose_b", true);
    return b_.create("matmul", {x, w}, std::move(a), result_name);
  }

  Value* norm(Value* x, const std::string& scale) {
    return b_.mul(b_.rms_norm(x, hp_.rms_eps), weight(scale));
  }

  Value* rope(Value* x, Value* pos) {
    Attrs a;
    a.set("mode", hp_.rope_mode);
    a.set("n_dims", hp_.n_rot);
    a.set("freq_base", hp_.rope_freq_base);
    a.set("freq_scale", hp_.rope_freq_scale);
    return b_.create("rope", {x, pos}, std::move(a));
  }

  // x [n, heads * head_dim] -> [n, heads, head_dim]
  Value* split_heads(Value* x, int64_t heads) {
    return b_.reshape(x, {x->type.dims[0], heads, hp_.head_dim});
  }

  Value* projection(Value* h, const std::string& blk, const char* name) {
    Value* y = linear(h, blk + name + ".weight");
    if (hp_.qkv_bias) y = b_.add(y, weight(blk + name + ".bias"));
    return y;
  }

  Value* layer(Value* x, Value* pos, int64_t l, int64_t n_ctx, DType kv_type) {
    const std::string blk = fmt::format("blk.{}.", l);
    Value* h = norm(x, blk + "attn_norm.weight");
    Value* q = rope(split_heads(projection(h, blk, "attn_q"), hp_.n_head), pos);
    Value* k = rope(split_heads(projection(h, blk, "attn_k"), hp_.n_head_kv), pos);
    Value* v = split_heads(projection(h, blk, "attn_v"), hp_.n_head_kv);

    TensorType cache{kv_type, {n_ctx, hp_.n_head_kv, hp_.head_dim}};
    std::string kname = fmt::format("cache_k.{}", l), vname = fmt::format("cache_v.{}", l);
    b_.declare_state(kname, cache);
    b_.declare_state(vname, cache);
    Value* kc = b_.create("kv_write", {b_.state(kname), k, pos});
    Value* vc = b_.create("kv_write", {b_.state(vname), v, pos});
    Attrs a;
    a.set("scale", 1.0 / std::sqrt(double(hp_.head_dim)));
    Value* att = b_.create("attention", {q, kc, vc, pos}, std::move(a));
    att = b_.reshape(att, {att->type.dims[0], hp_.n_head * hp_.head_dim});
    x = b_.add(x, linear(att, blk + "attn_output.weight"));

    h = norm(x, blk + "ffn_norm.weight");
    Value* gate = linear(h, blk + "ffn_gate.weight");
    Value* up = linear(h, blk + "ffn_up.weight");
    Value* ff = linear(b_.create("swiglu", {gate, up}), blk + "ffn_down.weight");
    return b_.create("add", {x, ff}, {}, fmt::format("layer.{}", l));
  }

  const gguf::File& file_;
  Module& m_;
  const LlamaHParams& hp_;
  Builder b_;
};

}  // namespace

std::unique_ptr<Module> build_llama_module(std::shared_ptr<const gguf::File> file, const ModelBuildOptions& opts) {
  LlamaHParams hp = read_llama_hparams(*file);
  auto m = std::make_unique<Module>();
  std::string base = file->path();
  base = base.substr(base.find_last_of('/') + 1);
  m->name = base.substr(0, base.rfind(".gguf"));
  try {
    LlamaGraph(*file, *m, hp).build(opts);
  } catch (const Error& e) {
    fail("{}: cannot build the {} graph: {}", file->path(), hp.arch, e.what());
  }
  m->keep_alive.push_back(std::move(file));
  return m;
}

}  // namespace nibble
