// llama.cpp's quantization mixes (llama-quant.cpp: llama_tensor_get_type), restricted to the file types
// nibble writes. Branches for i-quants, imatrix and MoE-only cases that cannot apply are left out;
// what remains follows the original's order, so the same model gets the same types.
#include "frontends/quantize/mix_policy.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

// GCC 12 reports false -Wmaybe-uninitialized inside libstdc++'s regex compiler under the sanitizers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop

#include <fmt/format.h>

#include "frontends/gguf/gguf.h"
#include "support/error.h"

namespace nibble::quant {

struct TypeOverride::Regex {
  std::regex re;
};

namespace {

struct TargetRow {
  const char* name;
  FileType ftype;
  DType base;
};

// llama-quantize's names (lowercased), in its order.
constexpr TargetRow kTargets[] = {
    {"q4_0", FileType::Q4_0, DType::Q4_0},       {"q4_1", FileType::Q4_1, DType::Q4_1},
    {"q5_0", FileType::Q5_0, DType::Q5_0},       {"q5_1", FileType::Q5_1, DType::Q5_1},
    {"q2_k", FileType::Q2_K, DType::Q2_K},       {"q3_k_s", FileType::Q3_K_S, DType::Q3_K},
    {"q3_k_m", FileType::Q3_K_M, DType::Q3_K},   {"q3_k_l", FileType::Q3_K_L, DType::Q3_K},
    {"q4_k_s", FileType::Q4_K_S, DType::Q4_K},   {"q4_k_m", FileType::Q4_K_M, DType::Q4_K},
    {"q5_k_s", FileType::Q5_K_S, DType::Q5_K},   {"q5_k_m", FileType::Q5_K_M, DType::Q5_K},
    {"q6_k", FileType::Q6_K, DType::Q6_K},       {"q8_0", FileType::Q8_0, DType::Q8_0},
    {"f16", FileType::F16, DType::F16},          {"bf16", FileType::BF16, DType::BF16},
    {"f32", FileType::AllF32, DType::F32},
};
// llama-quantize's aliases.
constexpr std::pair<const char*, const char*> kAliases[] = {
    {"q3_k", "q3_k_m"}, {"q4_k", "q4_k_m"}, {"q5_k", "q5_k_m"},
};
constexpr DType kTensorTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                                  DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K,
                                  DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = char(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

// llama.cpp: more bits for the first and last eighth of the layers and every third one between.
bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

int64_t block_of(DType t) { return dtype_info(t).block_size; }

}  // namespace

std::optional<QuantTarget> parse_target(std::string_view name) {
  std::string n = lower(name);
  for (const auto& [alias, real] : kAliases)
    if (n == alias) n = real;
  for (const TargetRow& r : kTargets)
    if (n == r.name) return QuantTarget{r.name, r.ftype, r.base};
  return std::nullopt;
}

std::string target_names() {
  std::string r;
  for (const TargetRow& t : kTargets) r += fmt::format("{}{}", r.empty() ? "" : " ", t.name);
  for (const auto& [alias, real] : kAliases) r += fmt::format(" {}", alias);
  return r;
}

std::optional<DType> parse_tensor_type(std::string_view name) {
  std::optional<DType> t = dtype_from_name(lower(name));
  if (!t) return std::nullopt;
  for (DType ok : kTensorTypes)
    if (*t == ok) return t;
  return std::nullopt;
}

TypeOverride parse_override(const std::string& spec) {
  size_t eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    fail("--tensor-type '{}': expected PATTERN=TYPE, e.g. 'attn_v=q8_0'", spec);
  std::string pattern = spec.substr(0, eq), type = spec.substr(eq + 1);
  std::optional<DType> t = parse_tensor_type(type);
  if (!t) {
    std::string names;
    for (DType d : kTensorTypes) names += fmt::format("{}{}", names.empty() ? "" : " ", dtype_name(d));
    fail("--tensor-type '{}': unknown type '{}' (expected one of: {})", spec, type, names);
  }
  TypeOverride o;
  o.text = spec;
  o.pattern = pattern;
  o.type = *t;
  try {
    o.regex = std::make_shared<const TypeOverride::Regex>(TypeOverride::Regex{std::regex(pattern, std::regex::ECMAScript)});
  } catch (const std::regex_error& e) {
    fail("--tensor-type '{}': bad pattern '{}': {}", spec, pattern, e.what());
  }
  return o;
}

bool TypeOverride::matches(const std::string& tensor_name) const {
  return regex && std::regex_search(tensor_name, regex->re);
}

void count_tensors(ModelShape& shape, const std::vector<std::string>& names) {
  shape.n_attention_wv = 0;
  shape.has_output = false;
  for (const std::string& n : names) {
    if (contains(n, "attn_v.weight") || contains(n, "attn_qkv.weight") || contains(n, "attn_kv_b.weight"))
      ++shape.n_attention_wv;
    else if (n == "output.weight")
      shape.has_output = true;
  }
}

ModelShape model_shape_of(const gguf::File& f) {
  ModelShape s;
  s.arch = f.get_string("general.architecture");
  const std::string p = s.arch + ".";
  s.n_layer = f.get_int(p + "block_count");
  s.n_head = f.get_int(p + "attention.head_count", 0);
  s.n_head_kv = f.get_int(p + "attention.head_count_kv", s.n_head);
  s.n_expert = f.get_int(p + "expert_count", 0);
  if (s.n_layer <= 0) fail("{}: metadata key {}block_count: {} layers", f.path(), p, s.n_layer);
  std::vector<std::string> names;
  for (const gguf::TensorInfo& t : f.tensors()) names.push_back(t.name);
  count_tensors(s, names);
  // llama.cpp (llama-model.cpp) calls an 80-layer llama with grouped-query attention 70B.
  s.is_70b = s.arch == "llama" && s.n_layer == 80 && s.n_head != s.n_head_kv;
  // llama-quantize asserts one attention-value tensor per layer.
  if (s.n_attention_wv != 0 && s.n_attention_wv != s.n_layer)
    fail("{}: {} attention value tensors for {} layers", f.path(), s.n_attention_wv, s.n_layer);
  return s;
}

bool is_quantizable(const std::string& name, const std::vector<int64_t>& ne) {
  int n_dims = 1;  // ggml_n_dims: trailing dimensions of 1 do not count
  for (size_t d = 1; d < ne.size(); ++d)
    if (ne[d] > 1) n_dims = int(d) + 1;
  if (!ends_with(name, "weight") || n_dims < 2) return false;
  for (std::string_view skip : {"_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d.weight", "time_mix_first.weight",
                                "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_decay_w1.weight",
                                "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight"})
    if (contains(name, skip)) return false;
  return name != "position_embd.weight" && name != "token_types.weight";
}

bool tensor_order_less(const std::string& a, const std::string& b) {
  int la = layer_of(a), lb = layer_of(b);
  if (la != lb) return la < lb;
  return a < b;
}

DType fallback_type(DType wanted, int64_t ncols, std::string* why) {
  DType t;
  std::string how;
  switch (wanted) {
    case DType::Q2_K:
    case DType::Q3_K:
      t = DType::Q4_0;
      how = "; llama.cpp would use iq4_nl, which nibble does not implement: q4_0, of the same size";
      break;
    case DType::Q4_K: t = DType::Q5_0; break;
    case DType::Q5_K: t = DType::Q5_1; break;
    case DType::Q6_K: t = DType::Q8_0; break;
    default:
      t = DType::F16;
      how = "; llama-quantize refuses such a tensor";
      break;
  }
  if (ncols % block_of(t) != 0) t = DType::F16;
  if (why)
    *why = fmt::format("{} columns are not a multiple of {}'s block of {}{}: using {}", ncols, dtype_name(wanted),
                       block_of(wanted), how, dtype_name(t));
  return t;
}

MixPolicy::MixPolicy(ModelShape shape, QuantTarget target, bool pure, std::vector<TypeOverride> overrides)
    : shape_(std::move(shape)), target_(std::move(target)), pure_(pure), overrides_(std::move(overrides)) {}

TypeChoice MixPolicy::choose(const std::string& name, const std::vector<int64_t>& ne) {
  TypeChoice c;
  DType t = target_.base;
  // The mix applies to quantized file types only; f16/bf16/f32 convert every quantizable tensor.
  if (!pure_ && is_quantized(t)) t = mix_type(name, ne);
  for (const TypeOverride& o : overrides_) {
    if (o.matches(name)) {
      t = o.type;
      c.overridden = true;
    }
  }
  c.wanted = t;
  c.type = t;
  if (ne.empty() || ne[0] % block_of(t) == 0) {
    if (is_quantized(t)) ++n_fitting_;
    return c;
  }
  c.type = fallback_type(t, ne[0], &c.note);
  c.fallback = true;
  ++n_fallback_;
  return c;
}

// llama_tensor_get_type without its final fit check (done in choose()).
DType MixPolicy::mix_type(const std::string& name, const std::vector<int64_t>& ne) {
  using F = FileType;
  const F ftype = target_.ftype;
  const bool falcon = shape_.arch == "falcon";
  const int64_t nx = ne.empty() ? 0 : ne[0];
  DType t = target_.base;

  // Per-layer index: llama.cpp counts tensors in order, except for MoE models where it parses the name.
  auto layer_info = [&](int counter, int64_t n_layer) {
    int i_layer = counter;
    if (shape_.n_expert > 1) {
      i_layer = layer_of(name);
      if (i_layer < 0 || i_layer >= n_layer) fail("tensor {}: cannot determine its layer", name);
    }
    return std::pair<int, int>(i_layer, int(n_layer));
  };

  if (name == "output.weight" || (!shape_.has_output && name == "token_embd.weight")) {
    // The output (or the token embedding it is tied to) gets more bits.
    if (falcon || nx % block_of(t) != 0) t = DType::Q8_0;
    else if (t != DType::Q8_0) t = DType::Q6_K;
  } else if (name == "token_embd.weight") {
    // Only i-quant file types change it.
  } else if (contains(name, "attn_v.weight")) {
    const int i = i_attention_wv_, n = shape_.n_attention_wv;
    if (ftype == F::Q2_K) t = shape_.n_gqa() >= 4 ? DType::Q4_K : DType::Q3_K;
    else if (ftype == F::Q3_K_M) t = i < 2 ? DType::Q5_K : DType::Q4_K;
    else if (ftype == F::Q3_K_L) t = DType::Q5_K;
    else if ((ftype == F::Q4_K_M || ftype == F::Q5_K_M) && use_more_bits(i, n)) t = DType::Q6_K;
    else if (ftype == F::Q4_K_S && i < 4) t = DType::Q5_K;
    if (shape_.is_70b && (t == DType::Q3_K || t == DType::Q4_K)) t = DType::Q5_K;
    if (shape_.n_expert == 8) t = DType::Q8_0;
    ++i_attention_wv_;
  } else if (contains(name, "attn_k.weight")) {
    if (shape_.n_expert == 8) t = DType::Q8_0;
  } else if (contains(name, "attn_q.weight")) {
    // Only i-quant file types change it.
  } else if (contains(name, "ffn_down")) {
    auto [i, n] = layer_info(i_ffn_down_, shape_.n_layer);
    if (ftype == F::Q2_K) t = DType::Q3_K;
    else if (ftype == F::Q3_K_M)
      t = i < n / 16 ? DType::Q5_K : (!falcon || use_more_bits(i, n)) ? DType::Q4_K : DType::Q3_K;
    else if (ftype == F::Q3_K_L) t = falcon ? DType::Q4_K : DType::Q5_K;
    else if (ftype == F::Q4_K_M) {
      if (falcon) t = i < n / 16 ? DType::Q6_K : use_more_bits(i, n) ? DType::Q5_K : DType::Q4_K;
      else if (use_more_bits(i, n)) t = DType::Q6_K;
    } else if (ftype == F::Q5_K_M && use_more_bits(i, n)) t = DType::Q6_K;
    else if (ftype == F::Q4_K_S && !falcon && i < n / 8) t = DType::Q5_K;
    ++i_ffn_down_;
  } else if (contains(name, "attn_output.weight")) {
    if (!falcon) {
      if (shape_.n_expert == 8) {
        if (ftype == F::Q2_K || ftype == F::Q3_K_S || ftype == F::Q3_K_M || ftype == F::Q4_K_S || ftype == F::Q4_K_M)
          t = DType::Q5_K;
      } else {
        if (ftype == F::Q2_K) t = DType::Q3_K;
        else if (ftype == F::Q3_K_M) t = DType::Q4_K;
        else if (ftype == F::Q3_K_L) t = DType::Q5_K;
      }
    } else if (ftype == F::Q3_K_L) {
      t = DType::Q4_K;
    }
  } else if (contains(name, "attn_qkv.weight")) {
    if (ftype == F::Q3_K_M || ftype == F::Q3_K_L) t = DType::Q4_K;
    else if (ftype == F::Q4_K_M) t = DType::Q5_K;
    else if (ftype == F::Q5_K_M) t = DType::Q6_K;
  } else if (contains(name, "ffn_gate")) {
    layer_info(i_ffn_gate_, shape_.n_layer);  // only i-quants use it; keeps the MoE layer check
    ++i_ffn_gate_;
  } else if (contains(name, "ffn_up")) {
    layer_info(i_ffn_up_, shape_.n_layer);
    ++i_ffn_up_;
  }
  return t;
}

}  // namespace nibble::quant
