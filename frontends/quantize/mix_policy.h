// Which type each tensor of a model gets when quantizing: llama.cpp's quantization "file types"
// (llama-quantize's Q4_K_M, Q8_0, ...) and its per-tensor choice, llama_tensor_get_type, as of
// llama.cpp commit c392e5094 (Feb 2025), for the file types nibble can write (no i-quants, no imatrix).
#pragma once
#include <cstdint>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ir/dtype.h"

namespace nibble::gguf { class File; }

namespace nibble::quant {

// llama.cpp's llama_ftype values, as written to general.file_type.
enum class FileType : uint32_t {
  AllF32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 7, Q5_0 = 8, Q5_1 = 9,
  Q2_K = 10, Q3_K_S = 11, Q3_K_M = 12, Q3_K_L = 13, Q4_K_S = 14, Q4_K_M = 15,
  Q5_K_S = 16, Q5_K_M = 17, Q6_K = 18, BF16 = 32,
};

// What `--type NAME` asks for: a llama.cpp file type and the base tensor type it starts from.
struct QuantTarget {
  std::string name;   // canonical lowercase name ("q4_k_m")
  FileType ftype;
  DType base;         // the default type of a quantized tensor (Q4_K for q4_k_m)
};
// Case-insensitive. q3_k, q4_k and q5_k are llama-quantize's aliases of q3_k_m, q4_k_m and q5_k_m.
std::optional<QuantTarget> parse_target(std::string_view name);
// Every accepted name, space-separated, for error messages and --help.
std::string target_names();

// `--tensor-type PATTERN=TYPE`: tensors whose name the regular expression PATTERN matches (anywhere in the
// name, like llama-quantize's --tensor-type) get TYPE (a single format, not a mix); the last match wins.
struct TypeOverride {
  std::string text;   // as given
  std::string pattern;
  DType type = DType::F32;
  bool matches(const std::string& tensor_name) const;
  struct Regex;  // the compiled pattern (std::regex, kept out of this header)
  std::shared_ptr<const Regex> regex;
};
// Throws nibble::Error: "--tensor-type 'X': expected PATTERN=TYPE", "... unknown type 'T'", "... bad pattern: ...".
TypeOverride parse_override(const std::string& spec);
// Single formats a tensor may be set to: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k.
std::optional<DType> parse_tensor_type(std::string_view name);

// What llama_tensor_get_type reads from the model.
struct ModelShape {
  std::string arch = "llama";
  int64_t n_layer = 0, n_head = 0, n_head_kv = 0, n_expert = 0;
  bool has_output = true;     // output.weight exists (else the output is tied to token_embd)
  int n_attention_wv = 0;     // attn_v / attn_qkv / attn_kv_b tensors
  bool is_70b = false;        // llama.cpp's LLM_TYPE_70B (llama, 80 layers, grouped-query attention)
  int64_t n_gqa() const { return n_head_kv > 0 ? n_head / n_head_kv : 0; }
};
// From GGUF metadata (<arch>.block_count, head counts, expert_count) and tensor names.
ModelShape model_shape_of(const gguf::File& f);
// For a file under construction: counts attention-value tensors and looks for output.weight in `names`.
void count_tensors(ModelShape& shape, const std::vector<std::string>& names);

// Whether llama-quantize quantizes a tensor at all: names ending in "weight" with at least two dimensions
// (trailing 1s not counted), except norms and a few small tensors of other architectures.
bool is_quantizable(const std::string& name, const std::vector<int64_t>& ne);
// llama.cpp's tensor order when quantizing (llama_model_loader's weight_name_comparer): by layer number
// (tensors outside blk.N first), then by name. The mix depends on it (layer counters).
bool tensor_order_less(const std::string& a, const std::string& b);

struct TypeChoice {
  DType type;              // what the tensor gets
  DType wanted;            // what the mix (or an override) asked for, before any fallback
  bool fallback = false;   // the row length did not fit `wanted`'s block
  bool overridden = false; // a --tensor-type pattern decided it
  std::string note;        // why, for a fallback (printable)
};

// The per-tensor choice, stateful like llama.cpp's (layer counters): call choose() once for each
// quantizable tensor, in tensor_order_less order.
class MixPolicy {
 public:
  MixPolicy(ModelShape shape, QuantTarget target, bool pure = false, std::vector<TypeOverride> overrides = {});
  TypeChoice choose(const std::string& name, const std::vector<int64_t>& ne);
  const QuantTarget& target() const { return target_; }
  int n_fallback() const { return n_fallback_; }
  int n_fitting() const { return n_fitting_; }  // llama.cpp's n_k_quantized: mix choices that fit

 private:
  DType mix_type(const std::string& name, const std::vector<int64_t>& ne);
  ModelShape shape_;
  QuantTarget target_;
  bool pure_;
  std::vector<TypeOverride> overrides_;
  int i_attention_wv_ = 0, i_ffn_down_ = 0, i_ffn_gate_ = 0, i_ffn_up_ = 0;
  int n_fallback_ = 0, n_fitting_ = 0;
};

// llama.cpp's fallback for a type whose block does not divide the row length `ncols` (q4_k -> q5_0,
// q5_k -> q5_1, q6_k -> q8_0, then f16 if that does not fit either). q2_k/q3_k fall back to iq4_nl in
// llama.cpp, which nibble does not implement: q4_0 (the same size) instead. Where llama.cpp gives up
// (q4_0 .. q8_0 rows that do not fit), f16. Sets *why to a printable reason.
DType fallback_type(DType wanted, int64_t ncols, std::string* why);

}  // namespace nibble::quant
