#include "frontends/synth/synth.h"

#include <algorithm>

#include <fmt/format.h>

#include "frontends/gguf/gguf.h"
#include "frontends/quantize/convert.h"
#include "frontends/synth/vocab_gen.h"
#include "frontends/synth/weights.h"
#include "support/error.h"

namespace nibble::synth {

namespace {

using gguf::Value;
using gguf::ValueType;

// The tensors of a llama model, GGML shapes (ne[0] = row length).
std::vector<std::pair<std::string, std::vector<int64_t>>> llama_tensors(const SynthPreset& p) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> t;
  t.push_back({"token_embd.weight", {p.n_embd, p.n_vocab}});
  for (int64_t l = 0; l < p.n_layer; ++l) {
    const std::string b = fmt::format("blk.{}.", l);
    t.push_back({b + "attn_norm.weight", {p.n_embd}});
    t.push_back({b + "attn_q.weight", {p.n_embd, p.n_embd}});
    t.push_back({b + "attn_k.weight", {p.n_embd, p.n_embd_kv()}});
    t.push_back({b + "attn_v.weight", {p.n_embd, p.n_embd_kv()}});
    t.push_back({b + "attn_output.weight", {p.n_embd, p.n_embd}});
    t.push_back({b + "ffn_norm.weight", {p.n_embd}});
    t.push_back({b + "ffn_gate.weight", {p.n_embd, p.n_ff}});
    t.push_back({b + "ffn_up.weight", {p.n_embd, p.n_ff}});
    t.push_back({b + "ffn_down.weight", {p.n_ff, p.n_embd}});
  }
  t.push_back({"output_norm.weight", {p.n_embd}});
  t.push_back({"output.weight", {p.n_embd, p.n_vocab}});
  return t;
}

uint64_t tensor_bytes(DType t, const std::vector<int64_t>& ne) {
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  return uint64_t(row_bytes(t, ne[0]) * rows);
}

void set_metadata(gguf::Writer& w, const SynthPlan& plan, const SynthOptions& o) {
  const SynthPreset& p = plan.preset;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", "synth-" + p.name);
  w.set_string("general.description",
               fmt::format("nibble synth: random weights of {} shapes, seed {}", p.name, o.seed));
  w.set_u32("llama.vocab_size", uint32_t(p.n_vocab));
  w.set_u32("llama.context_length", uint32_t(p.n_ctx));
  w.set_u32("llama.embedding_length", uint32_t(p.n_embd));
  w.set_u32("llama.feed_forward_length", uint32_t(p.n_ff));
  w.set_u32("llama.block_count", uint32_t(p.n_layer));
  w.set_u32("llama.attention.head_count", uint32_t(p.n_head));
  w.set_u32("llama.attention.head_count_kv", uint32_t(p.n_head_kv));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", float(p.rms_eps));
  w.set_u32("llama.rope.dimension_count", uint32_t(p.head_dim()));
  w.set_f32("llama.rope.freq_base", float(p.rope_freq_base));
  w.set_u32("general.file_type", static_cast<uint32_t>(plan.target.ftype));
  w.set_u32("general.quantization_version", 2);
  w.set("nibble.synth.seed", Value::of_uint(ValueType::U64, o.seed));

  SpmVocab v = make_spm_vocab(p.n_vocab);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  std::vector<Value> scores, types;
  scores.reserve(v.scores.size());
  types.reserve(v.types.size());
  for (float s : v.scores) scores.push_back(Value::of_float(ValueType::F32, s));
  for (int32_t t : v.types) types.push_back(Value::of_int(ValueType::I32, t));
  w.set("tokenizer.ggml.scores", Value::of_array(ValueType::F32, std::move(scores)));
  w.set("tokenizer.ggml.token_type", Value::of_array(ValueType::I32, std::move(types)));
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
}

}  // namespace

uint64_t SynthPlan::bytes() const {
  uint64_t n = 0;
  for (const SynthTensor& t : tensors) n += t.bytes;
  return n;
}

int64_t SynthPlan::n_params() const {
  int64_t n = 0;
  for (const SynthTensor& t : tensors) {
    int64_t e = 1;
    for (int64_t d : t.ne) e *= d;
    n += e;
  }
  return n;
}

SynthPlan plan_synth(const SynthOptions& o) {
  if (o.arch != "llama") fail("synth: unsupported architecture '{}' (supported: llama)", o.arch);
  const SynthPreset* preset = find_preset(o.preset);
  if (!preset) fail("synth: unknown preset '{}' (expected one of: {})", o.preset, preset_names());
  std::optional<quant::QuantTarget> target = quant::parse_target(o.type);
  if (!target) fail("unknown type '{}' (expected one of: {})", o.type, quant::target_names());
  std::vector<quant::TypeOverride> overrides;
  for (const std::string& spec : o.tensor_types) overrides.push_back(quant::parse_override(spec));

  SynthPlan plan;
  plan.preset = *preset;
  plan.target = *target;
  auto tensors = llama_tensors(*preset);
  std::stable_sort(tensors.begin(), tensors.end(),
                   [](const auto& a, const auto& b) { return quant::tensor_order_less(a.first, b.first); });

  quant::ModelShape shape;
  shape.arch = "llama";
  shape.n_layer = preset->n_layer;
  shape.n_head = preset->n_head;
  shape.n_head_kv = preset->n_head_kv;
  std::vector<std::string> names;
  for (const auto& t : tensors) names.push_back(t.first);
  quant::count_tensors(shape, names);
  shape.is_70b = shape.n_layer == 80 && shape.n_head != shape.n_head_kv;
  quant::MixPolicy policy(shape, *target, o.pure, std::move(overrides));

  for (auto& [name, ne] : tensors) {
    SynthTensor t;
    t.name = name;
    t.ne = ne;
    t.quantizable = quant::is_quantizable(name, ne);
    if (t.quantizable) {
      t.choice = policy.choose(name, ne);
      t.type = t.choice.type;
    }
    t.bytes = tensor_bytes(t.type, t.ne);
    plan.tensors.push_back(std::move(t));
  }
  plan.n_fallback = policy.n_fallback();
  return plan;
}

void write_synth(const SynthPlan& plan, const SynthOptions& o, const std::string& out_path,
                 const std::function<void(const SynthTensor&, size_t)>& on_tensor) {
  gguf::Writer w;
  set_metadata(w, plan, o);
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const SynthTensor& t = plan.tensors[i];
    w.add_tensor_stream(t.name, t.type, t.ne, [&plan, &o, &t, i, &on_tensor](const gguf::Writer::ByteSink& out) {
      const CounterRng rng(o.seed, t.name);
      const WeightInit init = weight_init(plan.preset, t.name);
      const int64_t ncols = t.ne[0];
      int64_t nrows = 1;
      for (size_t d = 1; d < t.ne.size(); ++d) nrows *= t.ne[d];
      quant::convert_rows(
          nrows, ncols, t.type, [&](int64_t r, float* row) { weight_row(rng, init, r, ncols, row); }, out, o.threads);
      if (on_tensor) on_tensor(t, i);
    });
  }
  w.write(out_path);
}

}  // namespace nibble::synth
